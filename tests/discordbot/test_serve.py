"""`serve` stops on SIGTERM even when the client loses the first cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from bot.discordbot.client import serve


class LosesTheFirstCancel:
    """A client whose start() swallows one cancellation, as Python 3.11's asyncio.wait_for does
    when the cancellation lands just as the awaited step finishes (discord.py's IDENTIFY)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancels = 0

    async def __aenter__(self) -> LosesTheFirstCancel:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def start(self, token: str) -> None:
        self.started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels == 1:
                    continue
                raise


async def test_a_lost_cancellation_is_asked_again_until_the_client_stops():
    client = LosesTheFirstCancel()
    serving = asyncio.create_task(serve(client, "token"))  # type: ignore[arg-type]
    await client.started.wait()  # the signal handlers are installed before start() runs
    os.kill(os.getpid(), signal.SIGTERM)
    done, _ = await asyncio.wait({serving}, timeout=10)  # (wait_for would cancel serve itself)
    serving.cancel()
    assert serving in done, "serve did not stop after SIGTERM"
    assert client.cancels == 2
