"""The benchmarks still run and print every figure (a tiny database; the figures are not judged)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = (
    "single_grant",
    "checkout_confirm",
    "balance",
    "history_page",
    "grant_many",
    "expiry_sweep",
    "due_reminders",
)


def run_bench(tmp_path: Path, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:], "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_ledger_bench_prints_every_operation(tmp_path):
    figures = run_bench(tmp_path, "ledger.py", "--lots", "2000", "--ops", "20", "--bulk-repeat", "1")
    for name in OPERATIONS:
        assert figures[name]["ops_per_s"] > 0, name
        assert figures[name]["p50_ms"] <= figures[name]["p99_ms"], name
        assert figures[name]["ratio_to_sqlite3"] > 0, name
    assert figures["peak_rss_mb"] > 0


def test_reminders_bench_finds_and_sends_every_due_reminder(tmp_path):
    figures = run_bench(tmp_path, "reminders.py", "--lots", "5000", "--due", "100", "--ticks", "20", "--find-runs", "2")
    assert figures["targets"]["send_verified"]["met"], figures["send"]
    assert figures["idle_tick"]["ours"]["tick"]["n"] == 20
    assert figures["find"]["lots"] == 100


def test_interactions_bench_prints_both_sides_and_the_ratio(tmp_path):
    figures = run_bench(
        tmp_path, "interactions.py", "--lots", "1000", "--duration", "0.5", "--warmup", "0.2", "--rate", "40"
    )
    for side in ("ours", "bare"):
        for command, labels in (
            ("balance", ["balance"]),
            ("redeem", ["redeem"]),
            ("buy", ["buy preview", "buy confirm"]),
        ):
            for mode in ("closed", "open"):
                run = figures[side][command][mode]
                assert run["interactions_per_s"] > 0, (side, command, mode)
                for label in labels:
                    assert run[label]["p50_ms"] <= run[label]["p99_ms"], (side, command, mode, label)
    for command in ("balance", "redeem", "buy"):
        assert figures["ratio"][command] > 0
        assert f"{command}_p99" in figures["targets"]


def test_interactions_bench_table_has_the_ratio_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "interactions.py"),
            "--lots",
            "1000",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--rate",
            "20",
            "--commands",
            "balance",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio ours ÷ bare (closed-loop interactions/s)" in result.stdout
    assert "balance_p99" in result.stdout


def test_ledger_bench_on_postgresql_prints_every_operation_beside_psycopg(tmp_path, pg_server):
    figures = run_bench(
        tmp_path, "ledger.py", "--lots", "2000", "--ops", "20", "--bulk-repeat", "1", "--database-url", pg_server
    )
    assert figures["meta"]["floor"] == "psycopg"
    assert figures["meta"]["same_writes"], "the psycopg floor no longer writes what PostgresStore writes"
    for name in OPERATIONS:
        assert figures[name]["ops_per_s"] > 0, name
        assert figures[name]["psycopg"]["ops_per_s"] > 0, name
        assert figures[name]["ratio_to_psycopg"] > 0, name
    assert "single_grant" in figures["targets"]


def test_interactions_bench_on_postgresql_with_two_processes(tmp_path, pg_server):
    figures = run_bench(
        tmp_path,
        "interactions.py",
        "--lots",
        "1000",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--rate",
        "20",
        "--commands",
        "redeem",
        "--processes",
        "2",
        "--database-url",
        pg_server,
    )
    assert figures["meta"]["processes"] == 2
    assert figures["meta"]["guilds"] == 2  # one per shard
    assert figures["meta"]["backend"] == "postgresql"
    assert figures["meta"]["redemptions_written"] > 0  # the answers came from the PostgreSQL ledger
    for side in ("ours", "bare"):
        assert figures[side]["redeem"]["closed"]["interactions_per_s"] > 0
    assert figures["ratio"]["redeem"] > 0
