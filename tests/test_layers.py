"""The layers, read from the source with `ast` (STYLE.md points 1, 2, 16 and 18):

(a) nothing below the Discord layer (bot/domain, bot/app, bot/store, bot/config.py, bot/logs.py,
    bot/scheduler.py) imports discord, aiohttp, the Discord layer or the fake Discord, so the CLI,
    a second database and the playground reuse it as it is;
(b) the domain is pure: nothing of the application, the store or a database driver;
(c) the store stores: nothing of the application above it;
(d) no cog imports another cog (what two share is a module of bot/discordbot), no cog reaches
    past the ledger into the store, and the Discord layer imports no cog;
(e) no function-local import of a project module, which is how a cycle between modules is
    dodged, except where the allow-list below says why.

Every import counts, `if TYPE_CHECKING:` ones too. Each rule is a function of a source root, so
the tests at the end plant a violation of each in a sample tree and watch the rule find it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The source tree the rules read (tests may import inside a test what only that test needs).
SOURCE = ("bot", "cogs", "fakediscord", "bench")
PROJECT_PACKAGES = ("bot", "cogs", "fakediscord", "bench", "tests")

BELOW_DISCORD = ("bot/domain", "bot/app", "bot/store", "bot/config.py", "bot/logs.py", "bot/scheduler.py")
#: (the files a rule reads, the modules they must not import, why)
LAYER_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "a_below_discord": (
        BELOW_DISCORD,
        ("discord", "aiohttp", "cogs", "bot.discordbot", "fakediscord", "bot.playground"),
        "imports the Discord layer",
    ),
    "b_pure_domain": (
        ("bot/domain",),
        ("bot.app", "bot.store", "bot.scheduler", "bot.cli", "sqlite3", "aiosqlite"),
        "gives the domain I/O or the layers above it",
    ),
    "c_store_below_app": (("bot/store",), ("bot.app", "bot.scheduler", "bot.cli"), "makes the store call up"),
    "d_cogs_above_store": (("cogs",), ("bot.store",), "reaches past the ledger into the store"),
    "d_discord_layer_below_cogs": (("bot/discordbot",), ("cogs",), "imports a cog into the shared Discord layer"),
    # The playground is a front end beside the Discord layer: it may import fakediscord and
    # bot.discordbot; nothing imports it (the CLI loads it lazily, below).
    "f_nothing_imports_the_playground": (
        ("bot/discordbot", "cogs", "fakediscord"),
        ("bot.playground",),
        "imports the playground, a front end",
    ),
}
#: Function-local imports of project modules that are there on purpose: (file, module) -> why.
LOCAL_IMPORTS_ALLOWED = {
    ("bot/cli.py", "bot.discordbot.client"): (
        "discord.py loads only when the bot runs (`run`, `invite`): the token-free commands "
        "(verify, backup, export, db …) work without importing it"
    ),
    ("bot/cli.py", "bot.playground.app"): (
        "the playground (discord.py, the fake Discord, its page) loads only for `python -m bot try`"
    ),
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the root, with forward slashes
    line: int
    names: tuple[str, ...]  # what it imports, dotted: `from a.b import c` gives a.b and a.b.c
    local: bool  # inside a function (or lambda) body

    @property
    def module(self) -> str:
        return self.names[0]

    def reaches(self, prefixes: tuple[str, ...]) -> list[str]:
        return sorted({n for n in self.names for p in prefixes if n == p or n.startswith(p + ".")})


def module_of(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path, selectors: tuple[str, ...] = SOURCE) -> list[Path]:
    """The .py files (relative to ``root``) of each selector: a folder (searched deeply) or a file."""
    found: set[Path] = set()
    for selector in selectors:
        target = root / selector
        if target.is_file():
            found.add(target.relative_to(root))
        elif target.is_dir():
            found.update(p.relative_to(root) for p in target.rglob("*.py") if ".venv" not in p.parts)
    return sorted(found)


def imports_of(root: Path, relative: Path) -> list[Import]:
    tree = ast.parse((root / relative).read_text(encoding="utf-8"), filename=str(relative))
    package = module_of(relative).split(".")
    if relative.name != "__init__.py":
        package = package[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(relative.as_posix(), child.lineno, (alias.name,), local))
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: from the package, one level up per extra dot
                    base = package[: len(package) - child.level + 1]
                    module = ".".join([*base, child.module] if child.module else base)
                else:
                    module = child.module or ""
                names = (module, *(f"{module}.{alias.name}" for alias in child.names if alias.name != "*"))
                found.append(Import(relative.as_posix(), child.lineno, names, local))
            visit(child, local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    return found


def layer_violations(root: Path, rule: str) -> list[str]:
    selectors, forbidden, why = LAYER_RULES[rule]
    return [
        f"{imp.path}:{imp.line} {why}: {', '.join(hit)}"
        for path in source_files(root, selectors)
        for imp in imports_of(root, path)
        if (hit := imp.reaches(forbidden))
    ]


def cog_of(relative: Path) -> str:
    """`cogs/shop.py` and `cogs/shop/_view.py` are both the cog `shop`."""
    return relative.with_suffix("").parts[1]


def cog_violations(root: Path) -> list[str]:
    """(d) A cog imports no other cog, in any form (`cogs.shop`, `from cogs import shop`, `from . import shop`)."""
    found = []
    for path in source_files(root, ("cogs",)):
        own = cog_of(path)
        for imp in imports_of(root, path):
            named = {n.split(".")[1] for n in imp.names if n.startswith("cogs.")} - {own}
            # `from cogs import shop` names the cog shop; a name that is no module of cogs/ (one
            # defined in cogs/__init__.py) is not a cog.
            others = sorted(
                name for name in named if (root / "cogs" / f"{name}.py").is_file() or (root / "cogs" / name).is_dir()
            )
            if others:
                found.append(f"{imp.path}:{imp.line} imports another cog: {', '.join(others)}")
    return found


def local_import_violations(root: Path) -> list[str]:
    """(e) No function-local import of a project module, outside LOCAL_IMPORTS_ALLOWED."""
    return [
        f"{imp.path}:{imp.line} imports {imp.module} inside a function"
        for path in source_files(root)
        for imp in imports_of(root, path)
        if imp.local and imp.reaches(PROJECT_PACKAGES) and (imp.path, imp.module) not in LOCAL_IMPORTS_ALLOWED
    ]


# the rules on this tree -----------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(LAYER_RULES))
def test_every_rule_reads_files_that_exist(rule: str):
    selectors, _, _ = LAYER_RULES[rule]
    for selector in selectors:
        assert source_files(ROOT, (selector,)), f"{rule}: {selector} has no Python files: the rule reads nothing"


@pytest.mark.parametrize("rule", sorted(LAYER_RULES))
def test_the_layers_import_only_downwards(rule: str):
    assert layer_violations(ROOT, rule) == []


def test_no_cog_imports_another_cog():
    assert len(source_files(ROOT, ("cogs",))) >= 5
    assert cog_violations(ROOT) == []


def test_no_function_local_import_of_a_project_module():
    assert local_import_violations(ROOT) == []


def test_every_allowed_local_import_is_still_there():
    """An entry of the allow-list whose import is gone is removed, not kept as a standing licence."""
    local = {(imp.path, imp.module) for path in source_files(ROOT) for imp in imports_of(ROOT, path) if imp.local}
    assert set(LOCAL_IMPORTS_ALLOWED) <= local, set(LOCAL_IMPORTS_ALLOWED) - local


# each rule can fail ---------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "bot/__init__.py": "",
    "bot/cli.py": "def run():\n    from bot.discordbot.client import run\n",
    "bot/domain/__init__.py": "",
    "bot/domain/money.py": "import math\nfrom bot.domain import limits\n",
    "bot/app/ledger.py": "from bot.domain.money import format_amount\nfrom bot.store.base import Store\n",
    "bot/store/base.py": "import sqlite3\nfrom bot.domain.models import Lot\n",
    "bot/scheduler.py": "from bot.app.ledger import Ledger\n",
    "bot/discordbot/ui.py": "import discord\nfrom bot.discordbot.client import PromoBalanceBot\n",
    "cogs/__init__.py": "",
    "cogs/shop.py": "from bot.discordbot.ui import money\nfrom bot.app.ledger import Ledger\n",
    "cogs/credits.py": "from bot.discordbot.options import category_autocomplete\n",
}


def test_a_clean_sample_passes_every_rule(tmp_path: Path):
    root = write(tmp_path, CLEAN)
    assert all(layer_violations(root, rule) == [] for rule in LAYER_RULES)
    assert cog_violations(root) == []
    assert local_import_violations(root) == []


@pytest.mark.parametrize(
    ("rule", "name", "text"),
    [
        ("a_below_discord", "bot/domain/text.py", "import discord.ext\n"),
        ("a_below_discord", "bot/app/ledger.py", "from bot.discordbot import render\n"),
        ("a_below_discord", "bot/store/sqlite.py", "if TYPE_CHECKING:\n    import aiohttp\n"),
        ("a_below_discord", "bot/config.py", "from cogs.shop import x\n"),
        ("a_below_discord", "bot/logs.py", "import fakediscord.fake\n"),
        ("a_below_discord", "bot/scheduler.py", "from bot import discordbot\n"),
        ("b_pure_domain", "bot/domain/orders.py", "from bot.app.ledger import Ledger\n"),
        ("b_pure_domain", "bot/domain/orders.py", "from bot import store\n"),
        ("b_pure_domain", "bot/domain/orders.py", "import aiosqlite\n"),
        ("b_pure_domain", "bot/domain/orders.py", "from ..store import sqlite\n"),
        ("b_pure_domain", "bot/domain/orders.py", "import sqlite3\n"),
        ("c_store_below_app", "bot/store/sqlite.py", "from bot.app.ledger import utc_now\n"),
        ("d_cogs_above_store", "cogs/shop.py", "from bot.store.sqlite import SqliteStore\n"),
        ("d_discord_layer_below_cogs", "bot/discordbot/ui.py", "from cogs.shop import resolve_item\n"),
        ("a_below_discord", "bot/app/ledger.py", "from bot.playground.clock import PlaygroundClock\n"),
        ("f_nothing_imports_the_playground", "cogs/shop.py", "from bot.playground import demo\n"),
        ("f_nothing_imports_the_playground", "bot/discordbot/ui.py", "import bot.playground.app\n"),
    ],
)
def test_a_layer_rule_finds_an_import_across_its_line(tmp_path: Path, rule: str, name: str, text: str):
    root = write(tmp_path, {**CLEAN, name: text})
    [violation] = layer_violations(root, rule)
    assert violation.startswith(f"{name}:"), violation


@pytest.mark.parametrize(
    "text",
    [
        "from cogs.shop import item_line\n",
        "import cogs.shop\n",
        "from cogs import shop\n",
        "from . import shop\n",
        "from .shop import category_autocomplete\n",
        "def f():\n    from cogs.shop import resolve_item\n",
    ],
)
def test_the_cog_rule_finds_a_cog_importing_another(tmp_path: Path, text: str):
    root = write(tmp_path, {**CLEAN, "cogs/credits.py": text})
    [violation] = cog_violations(root)
    assert violation.startswith("cogs/credits.py:")
    assert violation.endswith("another cog: shop")


def test_a_cog_may_import_its_own_modules(tmp_path: Path):
    root = write(
        tmp_path,
        {
            **CLEAN,
            "cogs/shop/__init__.py": "from cogs.shop._view import View\n",
            "cogs/shop/_view.py": "from . import _api\n",
        },
    )
    root.joinpath("cogs/shop.py").unlink()
    assert cog_violations(root) == []


@pytest.mark.parametrize(
    "text",
    [
        "def report():\n    from bot.discordbot.client import report_error\n",
        "class View:\n    async def on_error(self):\n        import bot.discordbot.errors\n",
        "def g():\n    def h():\n        from cogs import shop\n",
        "class A:\n    x = [lambda: 1]\n\n    def f(self):\n        import bot.app\n",
        "def g():\n    from . import render\n",
    ],
)
def test_the_local_import_rule_finds_an_import_inside_a_function(tmp_path: Path, text: str):
    root = write(tmp_path, {**CLEAN, "bot/discordbot/ui.py": text})
    [violation] = local_import_violations(root)
    assert violation.startswith("bot/discordbot/ui.py:")


def test_the_local_import_rule_leaves_the_standard_library_and_the_allow_list(tmp_path: Path):
    root = write(tmp_path, {**CLEAN, "bot/discordbot/ui.py": "def f():\n    import json\n"})
    assert local_import_violations(root) == []  # CLEAN's bot/cli.py has the allowed lazy import
    root = write(tmp_path, {"bot/cli.py": "def run():\n    from bot.logs import setup_logging\n"})
    assert local_import_violations(root) == ["bot/cli.py:2 imports bot.logs inside a function"]


def test_the_tests_mirror_the_source_tree():
    """Each folder of tests/ is named for the package it tests (STYLE.md point 14)."""
    packages = {
        "domain": "bot/domain",
        "app": "bot/app",
        "store": "bot/store",
        "discordbot": "bot/discordbot",
        "cogs": "cogs",
        "fakediscord": "fakediscord",
        "playground": "bot/playground",
    }
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders == set(packages), folders ^ set(packages)
    assert all((ROOT / source / "__init__.py").is_file() for source in packages.values())
