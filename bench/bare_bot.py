"""The floor of bench/interactions.py: a bare discord.py bot answering /balance, /redeem and /buy
(then its Confirm button) with a fixed message, in the same shape as the real bot's answers
(an ephemeral message; Confirm: defer, then edit the preview). No ledger, no database, no cogs.

    DISCORD_TOKEN=… DISCORD_API_BASE=… DISCORD_GATEWAY_URL=… python bench/bare_bot.py

It never syncs commands: the real bot synced the same tree to the fake earlier in the run.
With SHARD_COUNT (and SHARD_IDS, comma-separated) it is an AutoShardedClient serving those shards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import discord
import yarl
from discord import app_commands


class Confirm(discord.ui.View):
    def __init__(self, origin: discord.Interaction) -> None:
        super().__init__(timeout=300)
        self.confirm.custom_id = f"buy:confirm:{origin.id}"

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer()
        self.stop()
        await interaction.edit_original_response(content="Bought 1 × item.", view=None)


def make_client() -> discord.Client:
    shard_count = os.environ.get("SHARD_COUNT")
    shard_ids = os.environ.get("SHARD_IDS")
    intents = discord.Intents.default()
    client: discord.Client
    if shard_count:
        ids = [int(s) for s in shard_ids.split(",")] if shard_ids else None
        client = discord.AutoShardedClient(intents=intents, shard_count=int(shard_count), shard_ids=ids)
    else:
        client = discord.Client(intents=intents)
    tree = app_commands.CommandTree(client)

    @tree.command(name="balance", description="Your balance.")
    async def balance(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Your balance: 100 credits.", ephemeral=True)

    @tree.command(name="redeem", description="Redeem a code.")
    async def redeem(interaction: discord.Interaction, code: str) -> None:
        await interaction.response.send_message("Code redeemed: +10 credits.", ephemeral=True)

    @tree.command(name="buy", description="Buy an item.")
    async def buy(interaction: discord.Interaction, item: str, quantity: int = 1) -> None:
        await interaction.response.send_message(
            "Buy 1 × item for 5 credits?", view=Confirm(interaction), ephemeral=True
        )

    @client.event
    async def on_ready() -> None:
        print("bare bot ready", flush=True)

    return client


async def main() -> None:
    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
    client = make_client()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with client:
        await client.login(os.environ["DISCORD_TOKEN"])
        runner = asyncio.create_task(client.connect(reconnect=False))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    if not runner.done():
        runner.cancel()


if __name__ == "__main__":
    asyncio.run(main())
