"""`python -m bot db status | db upgrade | verify | export | backup` on PostgreSQL (DATABASE_URL).

A real database on the run's PostgreSQL server (tests/pgserver.py), a new one per test.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bot import cli
from bot.app.ledger import Ledger
from bot.config import Settings
from bot.store.factory import make_store
from bot.store.migrate import code_version, pending
from bot.store.postgres.migrate import MIGRATIONS
from tests import rawsql

GUILD = 1001
ALICE = 11
CODE = code_version(MIGRATIONS)


@pytest.fixture
def url(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "never.sqlite3"))
    return pg_url


def bot(*argv: str) -> int:
    return cli.main(list(argv))


def seed(url: str) -> None:
    async def go() -> None:
        store = make_store(Settings.load(environ={"DATABASE_URL": url}, dotenv=None))
        await store.open()
        try:
            ledger = Ledger(store)
            await ledger.grant(GUILD, ALICE, 100, actor_id=9, key="g1")
            await ledger.grant(GUILD, ALICE, 25, actor_id=9, key="g2", reason="birthday")
        finally:
            await store.close()

    asyncio.run(go())


def test_status_of_an_empty_database_then_upgrade(url, tmp_path, capsys):
    assert bot("db", "status") == 0
    out = capsys.readouterr().out
    assert f"Schema version: 0 (this code: {CODE})" in out
    assert ", ".join(pending(0, MIGRATIONS)) in out
    assert rawsql.tables(url) == []  # status only reads

    assert bot("db", "upgrade") == 0
    out = capsys.readouterr().out
    assert f"from schema version 0 to {CODE}" in out
    assert "lots" in rawsql.tables(url)
    assert not (tmp_path / "never.sqlite3").exists()

    assert bot("db", "upgrade") == 0
    assert "nothing to do" in capsys.readouterr().out


def test_verify_export_and_backup_of_a_ledger(url, tmp_path, capsys):
    seed(url)
    assert bot("verify") == 0
    assert "OK: every ledger invariant holds." in capsys.readouterr().out

    out_file = tmp_path / "ledger.csv"
    assert bot("export", "--guild", str(GUILD), "--out", str(out_file)) == 0
    csv_text = out_file.read_text(encoding="utf-8")
    assert csv_text.count("\n") == 3  # the header and two grants
    assert "birthday" in csv_text

    dump = tmp_path / "ledger.pgdump"
    assert bot("backup", str(dump)) == 0
    assert "pg_restore" in capsys.readouterr().out
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format


def test_verify_reports_a_ledger_edited_behind_its_back(url, capsys):
    seed(url)
    rawsql.execute(url, "UPDATE lots SET remaining = remaining - 5 WHERE id = 1")
    assert bot("verify") == 1
    assert "problem(s) found" in capsys.readouterr().out


def test_an_unreachable_server_is_explained_without_the_password(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bot:hunter2@127.0.0.1:{port}/promo")
    assert bot("verify") == 2
    err = capsys.readouterr().err
    assert "Could not open the PostgreSQL database postgresql://bot:***@127.0.0.1" in err
    assert "hunter2" not in err
