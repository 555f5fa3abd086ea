"""Promo Balance: store credit for Discord servers.

`bot.domain` holds the rules (no Discord import), `bot.store` the persistence,
`bot.cli` the command line; the Discord layer lives in `bot.discordbot.client` and `cogs/`.
"""

__version__ = "0.1.0"
