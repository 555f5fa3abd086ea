"""Real `python -m bot` processes for the tests, against a fake Discord on loopback.

Two fixtures, registered in tests/conftest.py: `fake`, a fake Discord checked clean at the end, and
`launch(fake, *args, **env)`, which starts `python -m bot *args` with the fake's token and URLs and
nothing of the developer's environment (no DISCORD_*, DATABASE_*, SHARD_*, DEV_GUILD_ID or
LOG_LEVEL), on `<tmp>/data/bot.sqlite3` unless `env` says otherwise, and kills whatever still runs
when the test ends. `BotProcess` reads a process's log as it is written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 5  # "stops within a few seconds"
#: Settings of the developer's environment that never reach a test's bot.
CLEARED = ("DISCORD_", "SHARD_", "DATABASE_PATH", "DATABASE_URL", "DEV_GUILD_ID", "LOG_LEVEL")


class BotProcess:
    """A running `python -m bot`; its stderr and stdout are one log, read as it is written."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for_log(self, text: str, fake: FakeDiscord, seconds: float = 30) -> None:
        await fake.wait_for(lambda: text in self.log or self.proc.returncode is not None, seconds, repr(text))
        assert text in self.log, self.log

    async def exit_code(self, seconds: float = 20) -> int:
        code = await asyncio.wait_for(self.proc.wait(), seconds)
        await self._reader
        return code

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return await self.exit_code(STOP_SECONDS)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


Launch = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake Discord on loopback for the test's processes, checked clean at the end."""
    async with FakeDiscord() as fake:
        yield fake
    fake.assert_clean()


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Launch]:
    started: list[BotProcess] = []

    async def start(fake: FakeDiscord, *args: str, **env_extra: str) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
        env.update(
            PYTHONPATH=str(ROOT),
            DISCORD_TOKEN=fake.token,
            DISCORD_API_BASE=fake.api_base,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DATABASE_PATH=str(tmp_path / "data" / "bot.sqlite3"),
        )
        env.update(env_extra)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        bot = BotProcess(proc)
        started.append(bot)
        return bot

    try:
        yield start
    finally:
        for bot in started:
            bot.kill()
            await bot.exit_code()


def assert_clean(bot: BotProcess) -> None:
    assert "Traceback" not in bot.log, bot.log
    assert " ERROR " not in bot.log, bot.log
