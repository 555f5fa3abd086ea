"""The habits stay wired: CI runs exactly the README's test command, and every dev tool is pinned."""

from __future__ import annotations

import re
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
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", requirement), requirement
