"""`python -m bot try` as a newcomer runs it: a URL on 127.0.0.1, its own database, Ctrl-C stops it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.playground.conftest import environment, first_line, free_port, start


def test_try_prints_a_loopback_url_uses_its_own_database_and_stops_on_ctrl_c(tmp_path: Path):
    port = free_port()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "playground.sqlite3").write_bytes(b"not a database: --fresh deletes it")
    process = start(tmp_path, "--port", str(port), "--fresh", DATABASE_PATH=str(tmp_path / "real.sqlite3"))
    try:
        line = first_line(process)
        assert line == f"Promo Balance playground: http://127.0.0.1:{port}/"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert b"Promo Balance playground" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=10) as response:
            assert b"Promo Balance Playground" in response.read()
        assert (tmp_path / "data" / "playground.sqlite3").stat().st_size > 100
        assert not (tmp_path / "real.sqlite3").exists()  # never DATABASE_PATH
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err + out, err
    assert not (tmp_path / "data" / "playground.sqlite3-wal").exists()  # closed cleanly


def test_a_taken_port_is_a_clear_error(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "bot", "try", "--port", str(port)],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_the_no_token_message_points_to_the_playground(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "python -m bot try" in result.stderr
