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
