"""The playground's clock: real time plus an offset that the page moves forward."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def real_now() -> datetime:
    return datetime.now(UTC)


class PlaygroundClock:
    """What the bot and its jobs read as "now": the real time, moved on by :meth:`advance`.

    It never goes back: credit that expired in front of you stays expired."""

    def __init__(self, offset: float = 0.0, now: Callable[[], datetime] = real_now) -> None:
        self._now = now
        self.offset = max(0.0, offset)

    def __call__(self) -> datetime:
        return self._now() + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the playground's clock only moves forward")
        self.offset += seconds
        return self()

    def move_to(self, when: datetime) -> datetime:
        """Jump forward to ``when`` (a moment already past leaves the clock where it is)."""
        return self.advance(max(0.0, (when - self()).total_seconds()))
