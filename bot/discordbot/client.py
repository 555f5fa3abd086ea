"""The Discord side of the bot: a `commands.AutoShardedBot` that owns the store, the ledger and the
cogs. It serves the shards SHARD_IDS of SHARD_COUNT (bot/config.py), or, without them, every shard
Discord recommends (GET /gateway/bot), all in this process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.app.delivery_worker import DeliveryWorker
from bot.app.ledger import Ledger, utc_now
from bot.app.reminder_dispatch import DEFAULT_DMS_PER_SECOND, ReminderDispatcher
from bot.config import Settings
from bot.discordbot.errors import report_error
from bot.discordbot.notify import DiscordDeliverySender, DiscordReminderSender
from bot.discordbot.roles import credit_holders, rest_credit_holders
from bot.discordbot.shards import serves_guild
from bot.scheduler import TICK_SECONDS, Jobs
from bot.store.factory import make_store
from bot.store.migrate import SchemaTooNew

log = logging.getLogger(__name__)

# The bot never joins voice: no start-up warnings that PyNaCl and davey are missing.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

EXTENSIONS = (
    "cogs.balance",
    "cogs.redeem",
    "cogs.shop",
    "cogs.orders",
    "cogs.member",
    "cogs.credits",
    "cogs.promo",
    "cogs.giftcard",
    "cogs.shopadmin",
    "cogs.fulfil",
    "cogs.settings",
)
# Manage Roles (shop roles), Send Messages + Embed Links + Attach Files (audit and fulfilment
# channels, exports), View Channel. DMs need no permission.
INVITE_PERMISSIONS = discord.Permissions(
    manage_roles=True, view_channel=True, send_messages=True, embed_links=True, attach_files=True
)
#: Seconds a command that needs a guild's whole member list waits for it to finish loading
#: (the interaction is deferred meanwhile) before it refuses.
MEMBER_LIST_WAIT = 10.0
#: Gateway close codes: a shard id or count Discord does not accept, and too many guilds on one.
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011
#: Discord's most members per GET /guilds/{id}/members page.
MEMBER_PAGE = 1000


def point_at(settings: Settings) -> None:
    """Send REST and gateway traffic where the settings say (a proxy, or a fake Discord in tests)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def invite_url(application_id: int | str) -> str:
    return discord.utils.oauth_url(
        int(application_id), permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class PromoBalanceBot(commands.AutoShardedBot):
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        members_intent: bool = True,
        tick_seconds: float | None = TICK_SECONDS,
        dm_rate: float = DEFAULT_DMS_PER_SECOND,
        member_list_wait: float = MEMBER_LIST_WAIT,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.members = members_intent  # privileged: grant-role and member lookups need it
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=members_intent,
            # None: discord.py asks GET /gateway/bot how many shards Discord recommends and runs them all.
            shard_count=settings.shard_count,
        )
        # SHARD_IDS (Settings checked it names shards below SHARD_COUNT); None: every shard.
        self.shard_ids = None if settings.shard_ids is None else list(settings.shard_ids)
        self.settings = settings
        self.members_intent = members_intent
        self.store = make_store(settings)
        self.ledger = Ledger(self.store, clock=clock, events=self._relay_event)
        self.tree.error(report_error)  # one handler for every command's errors (and every View's)
        self.reminders = ReminderDispatcher(self.ledger, DiscordReminderSender(self, self.ledger), rate=dm_rate)
        self.deliveries = DeliveryWorker(self.ledger, DiscordDeliverySender(self, self.ledger))
        self.jobs = Jobs(
            self.ledger, self.reminders, self.role_members, tick_seconds or TICK_SECONDS, deliveries=self.deliveries
        )
        self.tick_seconds = tick_seconds  # None: jobs only run when called (tests drive the clock)
        self.member_list_wait = member_list_wait

    # lifecycle ---------------------------------------------------------------------------------
    async def launch_shards(self) -> None:
        """Without SHARD_COUNT, discord.py takes the recommended count and also the gateway URL
        from GET /gateway/bot; with DISCORD_GATEWAY_URL set (a proxy, a fake Discord) that URL must
        win, so take only the count here and let discord.py connect to DEFAULT_GATEWAY."""
        if self.shard_count is None and self.settings.discord_gateway_url:
            self.shard_count = (await self.http.get_bot_gateway())[0]
        log.info(
            "serving shards %s of %s",
            "all" if self.shard_ids is None else ",".join(map(str, self.shard_ids)),
            self.shard_count if self.shard_count is not None else "the recommended count",
        )
        await super().launch_shards()

    async def setup_hook(self) -> None:
        # Applies pending migrations, after a backup beside the database; the store logs both.
        await self.store.open()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        if self.tick_seconds is not None:
            self.jobs.start()

    async def close(self) -> None:
        """Scheduled jobs first (they may still DM through the client), then the client (no new
        interactions arrive), then the store, whose queue finishes the transaction in progress."""
        try:
            await self.jobs.stop()
            await super().close()
        finally:
            await self.store.close()

    def member_list_complete(self, guild: discord.Guild | None) -> bool:
        """The one rule for "we know every member of this guild", for everything that grants to a
        role. Discord sends a guild's members after READY in GUILD_MEMBERS_CHUNK batches (and
        after a new GUILD_CREATE); until the last one has arrived a role looks smaller than it is.
        discord.py counts a guild as chunked once its cache holds ``member_count`` members."""
        return guild is not None and self.members_intent and guild.chunked

    async def complete_member_list(self, guild: discord.Guild | None) -> bool:
        """Wait, at most ``member_list_wait`` seconds, until ``guild``'s member list is complete;
        returns whether it is. Joins the request discord.py made at start-up when one is under way
        (``Guild.chunk`` sends a new one only when none is)."""
        if guild is None or not self.members_intent:
            return False
        if not self.member_list_complete(guild):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.member_list_wait):
                    await guild.chunk()
        return self.member_list_complete(guild)

    async def role_members(self, guild_id: int, role_id: int) -> list[int] | None:
        """Member ids of a role for recurring grants; None while the member list is unknown.

        A guild of this process's shards comes from the cache, once its member list is complete.
        The scheduler's lease holder also runs the grants of guilds on shards other processes serve
        (SPEC §5): those it lists over REST."""
        if serves_guild(self, guild_id):
            guild = self.get_guild(guild_id)
            # Until the member list is fully loaded a role looks smaller than it is, and the run,
            # once granted, is used up: wait for the next tick instead.
            if guild is None or not self.member_list_complete(guild):
                return None
            role = guild.get_role(role_id)
            if role is None:  # deleted: the run goes by with nobody to grant
                return []
            return credit_holders(role)
        return await self.fetch_role_members(guild_id, role_id)

    async def fetch_role_members(self, guild_id: int, role_id: int) -> list[int] | None:
        """The role's credit holders (bot/discordbot/roles.py) over REST, for a guild this process
        does not serve: every member, a page of 1000 at a time. None when Discord could not say (the
        run waits for the next tick); [] when the role or the bot's place in the guild is gone."""
        if not self.members_intent:  # listing a guild's members needs the Server Members intent
            return None
        try:
            roles = await self.http.get_roles(guild_id)
            if not any(int(r["id"]) == role_id for r in roles):
                return []
            holders: list[int] = []
            after = 0
            while True:
                page = await self.http.get_members(guild_id, MEMBER_PAGE, after)
                holders += rest_credit_holders(page, guild_id, role_id)
                if len(page) < MEMBER_PAGE:
                    return holders
                after = max(int(m["user"]["id"]) for m in page)
        except discord.NotFound:  # the guild is gone (or the bot was removed)
            return []
        except discord.HTTPException as exc:
            log.warning("could not list the members of guild %s (%s %s); next tick", guild_id, exc.status, exc.code)
            return None

    def _relay_event(self, name: str, payload: dict[str, Any]) -> None:
        # Other cogs listen with @commands.Cog.listener("on_credit_granted") etc.
        self.dispatch(name, payload)

    async def sync_commands(self) -> None:
        """Sync to DEV_GUILD_ID (instant) or globally, and only when the tree changed: Discord
        rate-limits syncing, and a restart loop must not burn that budget."""
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        state_key = f"command_tree:{guild.id if guild else 'global'}:{self.application_id}"
        if await self.ledger.get_state(state_key) == digest:
            log.info("command tree unchanged since the last sync; not syncing")
            return
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:  # keep serving the commands Discord already has
            log.error("could not sync the commands (%s %s); will try again at the next start", exc.status, exc.text)
            return
        await self.ledger.set_state(state_key, digest)
        log.info("synced %d commands %s", len(synced), f"to guild {guild.id}" if guild else "globally")


async def run(settings: Settings) -> int:
    """Run until SIGTERM or Ctrl-C; returns the process exit code."""
    point_at(settings)
    members_intent = True
    while True:
        bot = PromoBalanceBot(settings, members_intent=members_intent)
        try:
            await serve(bot, settings.discord_token)
            return 0
        except discord.LoginFailure:
            log.error("Discord refused the token: reset it in the developer portal and update DISCORD_TOKEN.")
            return 2
        except SchemaTooNew as exc:
            log.error("Not starting: %s.", exc)
            return 2
        except discord.ConnectionClosed as exc:
            if exc.code == INVALID_SHARD:
                log.error(
                    "Discord refused shard %s: SHARD_IDS must be below SHARD_COUNT=%s, and every process of "
                    "this bot must use the same SHARD_COUNT.",
                    exc.shard_id,
                    settings.shard_count,
                )
                return 2
            if exc.code == SHARDING_REQUIRED:
                log.error(
                    "Discord refused shard %s: it would have too many guilds. Set a larger SHARD_COUNT "
                    "(or leave it unset for Discord's recommended count).",
                    exc.shard_id,
                )
                return 2
            raise
        except discord.PrivilegedIntentsRequired:
            if not members_intent:
                raise
            log.warning(
                "The Server Members intent is off for this application. Running without it: "
                "/credits grant-role and member lookups are unavailable until you enable it in the "
                "developer portal (Bot -> Privileged Gateway Intents -> Server Members Intent)."
            )
            members_intent = False


async def serve(bot: PromoBalanceBot, token: str) -> None:
    """Log in and serve until SIGTERM or SIGINT; then close the client, and the store after it.

    A signal cancels the client's task, as Ctrl-C does in `Client.run`; leaving `async with bot`
    then awaits `bot.close()`, which closes the store once the gateway connection is shut. A write
    in progress is one queued SQLite transaction: it commits before the store closes.
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []
    installed: list[signal.Signals] = []
    async with bot:
        client = asyncio.ensure_future(bot.start(token))

        def cancel_until_stopped() -> None:
            # Python 3.11's asyncio.wait_for loses a cancellation that lands just as the step it
            # awaits finishes (gh-86296), and discord.py awaits the gateway's IDENTIFY that way:
            # ask again until the client has stopped.
            if not client.done():
                client.cancel()
                loop.call_later(0.5, cancel_until_stopped)

        def stop(signum: signal.Signals) -> None:
            if not received:
                log.info("%s received: shutting down", signum.name)
                cancel_until_stopped()
            received.append(signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, stop, signum)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                continue
            installed.append(signum)
        try:
            await client
        except asyncio.CancelledError:
            if not received:  # cancelled from outside (asyncio.run's Ctrl-C): let it propagate
                raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            client.cancel()  # a no-op unless we are being cancelled ourselves
    log.info("stopped")
