"""`Playground`: the fake Discord, the real bot connected to it, the demo server and the web page,
in one process and on 127.0.0.1 only.

The bot is the production `PromoBalanceBot`, logged in through discord.py's own REST and gateway
code (pointed at the fake by `point_at`, as `DISCORD_API_BASE` / `DISCORD_GATEWAY_URL` do), with
its own database file and the playground's clock. The page drives it the way Discord's client
would: through `FakeDiscord.invoke`, `autocomplete`, `click` and `submit_modal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
from aiohttp import web

from bot.config import Settings
from bot.discordbot.client import PromoBalanceBot, point_at, serve
from bot.domain.reminders import next_reminder_at, reminder_lead_due
from bot.domain.timeparse import from_unix
from bot.playground import demo
from bot.playground.clock import PlaygroundClock
from bot.playground.feed import Feed
from bot.playground.web import build_app
from fakediscord import FakeDiscord, snowflake

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
#: Seconds between two runs of the bot's scheduled jobs (production: 20, by APScheduler): things
#: happen soon after you do them. The clock buttons run them at once.
PLAYGROUND_TICK_SECONDS = 5.0
CLOCK_KEY = "playground:clock_offset"
STEPS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
READY_TIMEOUT = 60.0


class PlaygroundBot(PromoBalanceBot):
    """The production bot, with one hook: the playground stops running its jobs before it closes."""

    def __init__(self, settings: Settings, *, before_close: Callable[[], Awaitable[None]], **options: Any) -> None:
        super().__init__(settings, **options)
        self._before_close = before_close

    async def close(self) -> None:
        await self._before_close()
        await super().close()


class PortUnavailable(Exception):
    """The page's port on 127.0.0.1 is taken (or not ours to open)."""


@dataclass
class JobsRun:
    """What one run of the bot's jobs did, for the page to say."""

    expired: int = 0
    recurring: int = 0
    reminded: int = 0
    delivered: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "recurring": self.recurring,
            "reminded": self.reminded,
            "delivered": self.delivered,
            "failed": self.failed,
        }


class Playground:
    def __init__(
        self,
        database: Path,
        *,
        port: int = DEFAULT_PORT,
        tick_seconds: float | None = PLAYGROUND_TICK_SECONDS,
        clock: PlaygroundClock | None = None,
        log_level: str = "INFO",
    ) -> None:
        self.database = database
        self.port = port
        self.tick_seconds = tick_seconds
        self.clock = clock or PlaygroundClock()
        self.log_level = log_level
        # A new application id each run: the fake starts with no commands, and the bot syncs only
        # when the tree changed since the last sync of *this* application (client.sync_commands).
        self.fake = FakeDiscord(application_id=snowflake(), bot_user_id=demo.BOT_USER_ID)
        self.feed = Feed(self.fake, lambda: self.clock().timestamp())
        self.ready = asyncio.Event()
        self.demo: demo.Demo | None = None
        self._bot: PromoBalanceBot | None = None
        self._runner: web.AppRunner | None = None
        self._jobs_lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._bound_port: int | None = None

    # ---------------------------------------------------------------- what the page reads
    @property
    def bot(self) -> PromoBalanceBot:
        if self._bot is None:
            raise RuntimeError("the playground is not open")
        return self._bot

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._bound_port or self.port}/"

    @property
    def guild_id(self) -> int:
        return demo.GUILD_ID

    def now(self) -> int:
        return self.bot.ledger.now()

    # ---------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """The fake Discord with the demo server, the web page (it waits for :attr:`ready`), and the
        bot, built but not connected."""
        await self.fake.start()
        self.demo = demo.build(self.fake)
        settings = Settings(
            discord_token=self.fake.token,
            database_path=self.database,
            dev_guild_id=None,
            log_level=self.log_level,
            discord_api_base=self.fake.api_base,
            discord_gateway_url=self.fake.gateway_url,
        )
        point_at(settings)
        self.database.parent.mkdir(parents=True, exist_ok=True)
        # The bot's own scheduler stays off (tick_seconds=None): the playground runs the same jobs
        # itself (_tick), so that they never interleave with a move of the clock.
        self._bot = PlaygroundBot(settings, clock=self.clock, tick_seconds=None, before_close=self._stop_ticking)
        runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
        except OSError as exc:
            await runner.cleanup()
            await self.fake.stop()
            raise PortUnavailable(f"Could not open the page on 127.0.0.1:{self.port} ({exc.strerror})") from exc
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def when_connected(self) -> None:
        """Once the bot is in: the clock as it was left, the demo set up (first start only), the
        jobs run once; then the page may show it."""
        fake, bot = self.fake, self.bot
        await fake.wait_until_ready(READY_TIMEOUT)
        await fake.wait_for(lambda: fake.sync_count > 0, READY_TIMEOUT, "the bot to sync its commands")
        await fake.wait_for(
            lambda: bot.member_list_complete(bot.get_guild(self.guild_id)), READY_TIMEOUT, "the bot's member list"
        )
        saved = await bot.ledger.get_state(CLOCK_KEY)
        if saved:
            self.clock.offset = max(self.clock.offset, float(saved))
        if not await bot.ledger.get_state(demo.SEEDED_KEY):
            assert self.demo is not None
            seeded = await demo.seed(fake, self.demo)
            self.feed.hide_interactions(r.id for r in seeded)
            await bot.ledger.set_state(demo.SEEDED_KEY, "1")
        await self.run_jobs()
        if self.tick_seconds is not None:
            self._ticker = asyncio.create_task(self._tick(self.tick_seconds))
        self.ready.set()

    async def start(self) -> None:
        """Open and connect, as tests do (the CLI uses :meth:`run`, which also handles signals)."""
        await self.open()
        await self.bot.login(self.fake.token)
        self._client = asyncio.create_task(self.bot.connect(reconnect=False))
        await self.when_connected()

    async def stop(self) -> None:
        if self._bot is not None:
            await self._bot.close()
            client = getattr(self, "_client", None)
            if client is not None:
                with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
                    await asyncio.wait_for(client, 10)
        await self.close()

    async def close(self) -> None:
        """The page and the fake Discord (close the bot first)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.feed.close()
        await self.fake.stop()

    async def run(self, on_ready: Callable[[str], None]) -> None:
        """Serve until Ctrl-C or SIGTERM, with the bot's own `serve` (it closes the bot and its
        database cleanly); ``on_ready(url)`` once the page can be used."""
        await self.open()

        async def connected() -> None:
            await self.when_connected()
            on_ready(self.url)

        serving = asyncio.ensure_future(serve(self.bot, self.fake.token))
        setup = asyncio.ensure_future(connected())
        try:
            await asyncio.wait({serving, setup}, return_when=asyncio.FIRST_COMPLETED)
            if setup.done() and setup.exception() is not None:
                serving.cancel()  # the bot closes, then the setting-up error is told
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
                await setup
            await serving
        finally:
            for task in (setup, serving):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.close()

    # ---------------------------------------------------------------- the clock
    async def run_jobs(self) -> JobsRun:
        """The bot's scheduled jobs, now, in the order a tick would run them (never two runs at once,
        and never while the clock moves)."""
        async with self._jobs_lock:
            return await self._run_jobs()

    async def _run_jobs(self) -> JobsRun:
        jobs = self.bot.jobs
        run = JobsRun()
        steps: tuple[tuple[str, Callable[[], Awaitable[int]]], ...] = (
            ("expired", jobs.expire),
            ("recurring", jobs.recurring),
            ("reminded", jobs.remind),
            ("delivered", jobs.deliver),
        )
        for name, job in steps:
            try:
                setattr(run, name, await job())
            except Exception:  # the page says so; the traceback goes to the log
                log.exception("playground: the %s job failed", name)
                run.failed.append(name)
        return run

    async def _tick(self, seconds: float) -> None:
        """The bot's jobs every ``seconds``, as its scheduler would run them; here, so that a run and
        a move of the clock never interleave (the page then says truly what each move did)."""
        while True:
            await asyncio.sleep(seconds)
            await self.run_jobs()

    async def _stop_ticking(self) -> None:
        """Before the bot closes: a run under way finishes (as the bot's own Jobs.stop lets it), no
        new one starts."""
        ticker, self._ticker = self._ticker, None
        if ticker is None:
            return
        async with self._jobs_lock:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def next_reminder(self) -> int | None:
        """When the next reminder window opens for any credit in the demo server (unix seconds), by
        the bot's own rules of lead windows; None when no credit has one ahead."""
        ledger = self.bot.ledger
        now = ledger.now()
        leads = (await ledger.settings(self.guild_id)).reminder_leads
        best: int | None = None
        for member in self.fake.guilds[self.guild_id].members.values():
            if member.user.bot:
                continue
            for lot in await ledger.lots(self.guild_id, member.id, active_only=True):
                if lot.expires_at is None or not lot.is_usable_at(now):
                    continue
                at = next_reminder_at(lot.expires_at, leads, now, reminder_lead_due(lot.expires_at, leads, now))
                if at is not None and at > now and (best is None or at < best):
                    best = at
        return best

    async def move_clock(self, step: str) -> dict[str, Any]:
        """Move the clock by ``step`` ("hour", "day", "week") or to the next reminder, then run the
        jobs that fell due; returns what happened."""
        if step != "next-reminder" and step not in STEPS:
            raise ValueError(f"unknown clock step {step!r}")
        async with self._jobs_lock:
            if step == "next-reminder":
                at = await self.next_reminder()
                if at is None:
                    why = "No credit in this server has a reminder ahead."
                    return {"moved": False, "why": why, **self.clock_state()}
                self.clock.move_to(from_unix(at) + timedelta(seconds=1))
            else:
                self.clock.advance(STEPS[step])
            await self.bot.ledger.set_state(CLOCK_KEY, repr(self.clock.offset))
            ran = await self._run_jobs()
        state = {"moved": True, "ran": ran.as_dict(), **self.clock_state()}
        self.feed.publish({"type": "clock", "clock": self.clock_state()})
        return state

    def clock_state(self) -> dict[str, Any]:
        return {"now": self.clock().timestamp(), "offset": self.clock.offset}
