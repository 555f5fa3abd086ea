"""The layers below Discord stay below it: the domain (bot/ledger) and the store (bot/store) import
neither discord.py nor the Discord layer (bot.discordbot.client, bot.discordbot.notify, cogs), so the CLI, a second
database and the playground reuse them as they are (STYLE.md points 2 and 16)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(path for layer in ("domain", "app", "store") for path in (ROOT / "bot" / layer).rglob("*.py"))
DISCORD_LAYER = ("discord", "cogs", "bot.discordbot", "fakediscord")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_has_modules_to_check():
    assert len(CORE) >= 10, CORE


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_domain_and_the_store_import_nothing_of_discord(path: Path):
    upward = sorted(
        name for name in imported_modules(path)
        if any(name == layer or name.startswith(layer + ".") for layer in DISCORD_LAYER)
    )
    assert upward == [], f"{path.relative_to(ROOT)} imports the Discord layer: {upward}"


def test_the_check_sees_an_import_of_discord(tmp_path: Path):
    """The check itself can fail: an import of discord in any form is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("import discord.ext\nfrom bot.discordbot.ui import money\n", encoding="utf-8")
    assert imported_modules(sample) == {"discord.ext", "bot.discordbot.ui"}
