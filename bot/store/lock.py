"""One bot process per SQLite database (SPEC §5): an exclusive lock on `<database>.lock`.

The operating system releases the lock when its holder exits in any way (SIGKILL and a crash
included), so a dead bot never blocks its restart and no stale pid has to be guessed at. The file
says which process holds the lock (pid and host) for the message a second process shows.
`python -m bot` takes it, and `python -m bot db upgrade` (never a migration under a running bot):
`verify`, `backup`, `export` and `db status` work beside the running bot.

The file is never deleted: removing it while another process opens it would let two processes
each lock a file of their own.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import TracebackType

# Windows locks byte ranges, and a locked range cannot be read by others: lock one byte far past
# the text, so a second process can still read who holds the lock.
_WINDOWS_LOCK_OFFSET = 1 << 30


class DatabaseInUse(Exception):
    """Another process holds the database's lock; `holder` is what it wrote (pid and host)."""

    def __init__(self, database: Path, holder: str) -> None:
        self.database = database
        self.holder = holder
        who = f"({holder})" if holder else "(it has not written its pid yet)"
        super().__init__(
            f"Another Promo Balance bot {who} is already running on the database {database}.\n"
            "One database serves one bot process: stop that one first, or give this one its own "
            "DATABASE_PATH.\n"
            "python -m bot verify | backup PATH | export --guild ID work beside the running bot."
        )


class DatabaseLock:
    """Held from `acquire()` until `release()` or the end of the process."""

    def __init__(self, database: str | Path) -> None:
        self.database = Path(database)
        self.path = Path(f"{database}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise DatabaseInUse naming its holder. Never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not O_TRUNC: the holder's text stays
        try:
            _lock(fd)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise DatabaseInUse(self.database, holder) from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 512).decode(errors="replace").strip()


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # OSError when another process holds it

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError when another process holds it

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
