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
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
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
