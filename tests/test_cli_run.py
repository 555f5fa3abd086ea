"""`python -m bot` as a new user meets it: without a token it explains and exits 2."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bot(tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(env_extra or {})
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_token_prints_help_and_exits_2(tmp_path):
    result = run_bot(tmp_path)
    assert result.returncode == 2
    assert "needs a Discord bot token" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_empty_token_from_env_example_copy(tmp_path):
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = run_bot(tmp_path)
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_a_clear_error(tmp_path):
    result = run_bot(tmp_path, env_extra={"DEV_GUILD_ID": "my-server"})
    assert result.returncode == 2
    assert "DEV_GUILD_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_verify_backup_export(tmp_path):
    """The token-free commands on a real database: verify, backup while open, export CSV."""
    import asyncio
    import csv
    import sqlite3

    from bot.app.ledger import Ledger
    from bot.store.sqlite import SqliteStore

    db = tmp_path / "pb.sqlite3"

    async def seed():
        store = SqliteStore(db)
        await store.open()
        ledger = Ledger(store)
        await ledger.grant(1, 11, "100", actor_id=9, key="g1", reason="=cmd|' /C calc'!A0")
        item = await ledger.add_item(1, "Sword", "30", "gear", actor_id=9, key="i1")
        await ledger.checkout(1, 11, item.id, key="c1")
        await ledger.grant(2, 11, "5", actor_id=9, key="g2")  # another guild: not exported
        await store.close()

    asyncio.run(seed())
    env = {"DATABASE_PATH": str(db)}

    ok = run_bot(tmp_path, "verify", env_extra=env)
    assert ok.returncode == 0, ok.stderr
    assert "every ledger invariant holds" in ok.stdout

    out = tmp_path / "ledger.csv"
    exported = run_bot(tmp_path, "export", "--guild", "1", "--out", str(out), env_extra=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == [
        "entry_id",
        "created_at",
        "guild_id",
        "user_id",
        "lot_id",
        "lot_kind",
        "type",
        "amount",
        "order_id",
        "actor_id",
        "reason",
        "order_status",
    ]
    assert [r[6] for r in rows[1:]] == ["grant", "spend"]
    assert [r[11] for r in rows[1:]] == ["", "completed"]
    assert [r[7] for r in rows[1:]] == ["100", "-30"]
    assert rows[1][1].endswith("+00:00")
    assert rows[1][10].startswith("'=")  # a formula-looking reason cannot run in a spreadsheet
    assert {r[2] for r in rows[1:]} == {"1"}

    copy = tmp_path / "backup.sqlite3"
    backed = run_bot(tmp_path, "backup", str(copy), env_extra=env)
    assert backed.returncode == 0, backed.stderr
    assert sqlite3.connect(copy).execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 3
    again = run_bot(tmp_path, "backup", str(copy), env_extra=env)
    assert again.returncode == 2
    assert "already exists" in again.stderr

    conn = sqlite3.connect(db)
    conn.execute("UPDATE lots SET remaining = remaining + 1 WHERE id = 1")
    conn.commit()
    conn.close()
    broken = run_bot(tmp_path, "verify", env_extra=env)
    assert broken.returncode == 1
    assert "lot 1: remaining" in broken.stdout


def test_cli_without_database(tmp_path):
    result = run_bot(tmp_path, "verify", env_extra={"DATABASE_PATH": str(tmp_path / "none.sqlite3")})
    assert result.returncode == 2
    assert "No database" in result.stderr
