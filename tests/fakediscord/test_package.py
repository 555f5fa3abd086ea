"""fakediscord is a package of its own: it imports without pytest, and what it reads at run time
(its spec copy and README) is declared as package data, so an installed copy has it too."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import fakediscord

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(fakediscord.__file__).parent


def test_the_package_imports_without_pytest() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None\n"  # any `import pytest` now fails
        "import fakediscord, fakediscord.validation\n"
        "fakediscord.validation.check_request('GET', '/gateway', None)\n"
        "assert 'pytest' not in {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_its_data_files_are_declared_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "fakediscord*" in config["packages"]["find"]["include"]
    patterns = config["package-data"]["fakediscord"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".py"]
    data = [name for name in data if "__pycache__" not in name]
    assert "discord_api_spec/openapi.json" in data
    undeclared = [name for name in data if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert undeclared == []
