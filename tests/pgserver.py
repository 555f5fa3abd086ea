"""A throwaway PostgreSQL server for the tests (and bench/), started from installed binaries.

`TEST_DATABASE_URL` (a role that may CREATE DATABASE) wins: the tests then use that server.
Otherwise the server binaries are looked up (`PG_BINDIR`, else `pg_config --bindir`, PATH, Debian's
/usr/lib/postgresql/N/bin); a new cluster is made in a temporary folder and started on a free
loopback port, for this run only. PostgreSQL refuses to run as root, so as root the server runs as
the `postgres` user that Debian's package creates.

When no server can be had, `unavailable()` says why, and the PostgreSQL half of the suite is
skipped with that reason, unless `REQUIRE_POSTGRES=1` (set by .ci/run), which makes it fail.

`python -m tests.pgserver` starts one and prints its URL, for a benchmark or a look by hand.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

SERVER_USER = "postgres"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _bindir() -> Path | None:
    if os.environ.get("PG_BINDIR"):  # where the server binaries are, when not in a usual place
        explicit = Path(os.environ["PG_BINDIR"])
        return explicit if (explicit / "initdb").is_file() else None
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary folder, on 127.0.0.1, trusting local connections."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # False: fsync off, for tests; True: PostgreSQL's defaults (bench)
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="promo-pg-"))
        self.data = self.folder / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    "PostgreSQL will not run as root, and there is no 'postgres' user to run it as"
                ) from None
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = [shutil.which("runuser", path=SBIN) or "runuser", "-u", SERVER_USER, "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        subprocess.run([*self._as, *initdb, *([] if self.durable else ["--no-sync"])], check=True, capture_output=True)
        options = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-k", str(self.folder)]
        options += ["-c", "max_connections=300", "-c", "shared_buffers=128MB"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.folder / "server.log", "wb")  # noqa: SIM115 - the server writes it until stop()
        self.process = subprocess.Popen(
            [*self._as, str(self.bindir / "postgres"), "-D", str(self.data), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {(self.folder / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                if _accepts(self.url):
                    return self.url
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not accept connections within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _accepts(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def unavailable() -> str | None:
    """Why the PostgreSQL half cannot run here, or None when it can."""
    if os.environ.get("TEST_DATABASE_URL"):
        return None
    if _bindir() is None:
        return "no PostgreSQL: set TEST_DATABASE_URL, or install the server (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return "PostgreSQL will not run as root and there is no 'postgres' user: set TEST_DATABASE_URL"
        if shutil.which("runuser", path=SBIN) is None:
            return "PostgreSQL will not run as root and runuser is missing: set TEST_DATABASE_URL"
    return None


@contextlib.contextmanager
def server(*, durable: bool = False):
    """The admin URL of a server for this run: TEST_DATABASE_URL's, or a throwaway one."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError(unavailable())
    throwaway = ThrowawayServer(bindir, durable=durable)
    try:
        yield throwaway.start()
    finally:
        throwaway.stop()


def database_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the server of `admin_url`."""
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    with server(durable="--durable" in sys.argv) as url:
        print(url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
