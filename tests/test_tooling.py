"""The habits stay wired: CI runs exactly the README's test command, and every dev tool is pinned."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Set up and run the tests:\n\n```sh\n(.+)\n```", readme)
    assert block, 'README: no "Set up and run the tests" block'
    return block.group(1)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = readme_test_command()
    assert "pytest" in command
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in lines, f".ci/run has no line {command!r}"


def test_every_dev_tool_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", requirement), requirement


def _pytest_without_postgres(require: str) -> subprocess.CompletedProcess[str]:
    """The PostgreSQL fixture test in a child pytest on a machine with no PostgreSQL to be had."""
    env = {**os.environ, "PG_BINDIR": "/nonexistent", "TEST_DATABASE_URL": "", "REQUIRE_POSTGRES": require}
    env.pop("PYTEST_ADDOPTS", None)  # no coverage in the child
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/store/test_pgserver.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_postgres_its_half_is_skipped_with_the_reason() -> None:
    result = _pytest_without_postgres("0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED" in result.stdout
    assert "no PostgreSQL: set TEST_DATABASE_URL, or install the server" in result.stdout


def test_ci_fails_when_the_postgres_half_cannot_run() -> None:
    result = _pytest_without_postgres("1")
    assert result.returncode != 0, result.stdout
    assert "REQUIRE_POSTGRES=1 but no PostgreSQL" in result.stdout
