"""Promo Balance: store credit for Discord servers.

Layers, each importing only those below it: `bot.domain` (the rules), `bot.app` (units of work),
`bot.store` (persistence), `bot.discordbot` and `cogs` (Discord). The README's Development
section lists every module.
"""

__version__ = "0.1.0"
