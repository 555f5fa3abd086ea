"""The lease and the mutex on SQLite, where one process serves the database (SPEC §5).

`python -m bot` holds the database's file lock (bot/store/lock.py) before it opens the store, so
no other bot process can be running on the file: this process always holds every lease, and a
mutex only has to order the coroutines of this process.
"""

from __future__ import annotations

import asyncio


class LocalLease:
    """Held from `acquire()` until `release()`: nobody else can hold it."""

    shared = False

    def __init__(self, name: str) -> None:
        self.name = name
        self._holding = False

    async def acquire(self) -> bool:
        self._holding = True
        return True

    async def held(self) -> bool:
        return self._holding

    async def release(self) -> None:
        self._holding = False


class LocalMutexes:
    """One asyncio lock per name, for `Engine.exclusive`."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())
