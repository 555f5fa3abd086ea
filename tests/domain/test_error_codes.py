"""Every refusal of the domain carries a code, a template and its parameters, and no text of the
domain carries Discord's markup (issue 9, STYLE.md point 17): read from the source with `ast`, so a
new raise that forgets its code, or a sentence written with `**` or `<t:…>`, fails here."""

from __future__ import annotations

import ast
import re
import string
from collections import defaultdict
from pathlib import Path

import pytest

from bot.domain import errors

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = sorted((ROOT / "bot" / "domain").glob("*.py"))
#: Below the Discord layer no text carries Discord markup.
PLAIN_LAYERS = sorted(path for layer in ("domain", "app", "store") for path in (ROOT / "bot" / layer).rglob("*.py"))
#: Everywhere a refusal is raised.
RAISERS = sorted([*PLAIN_LAYERS, *(ROOT / "bot" / "discordbot").glob("*.py"), *(ROOT / "cogs").glob("*.py")])


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


REFUSALS = {cls.__name__ for cls in {errors.UserError, *_subclasses(errors.UserError)}}
CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MARKUP = ("**", "<t:", "<@", "<#")
IN_TEMPLATES = (*MARKUP, "`")  # a template names a literal {x:lit}, never writes the backticks


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _template_problem(node: ast.expr) -> str | None:
    """A template is string constants and named fragments (`CRON_HELP`, `exc.template`) joined with
    `+`: never an f-string or a call, which would put a value (and its braces) into the template."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str):
            return "the template is not a string"
        marked = [m for m in IN_TEMPLATES if m in node.value]
        return f"the template writes markup {marked}" if marked else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template_problem(node.left) or _template_problem(node.right)
    if isinstance(node, ast.Name | ast.Attribute):
        return None
    return f"the template is built with {type(node).__name__}, not from constants"


def _fields(node: ast.expr) -> set[str] | None:
    """The placeholders a template made only of constants names, or None when a part is a name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(node.value) if name}
    if isinstance(node, ast.BinOp):
        left, right = _fields(node.left), _fields(node.right)
        return None if left is None or right is None else left | right
    return None


def refusal_problems(source: str) -> list[tuple[int, str]]:
    """What is wrong with each construction of a refusal in `source`, as (line, why)."""
    problems: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or _called(node) not in REFUSALS:
            continue
        name, args, keywords = _called(node), node.args, node.keywords
        if any(isinstance(a, ast.Starred) for a in args):
            problems.append((node.lineno, "positional arguments spread with *"))
            continue
        if name == "RateLimited":
            if len(args) != 1 or keywords:
                problems.append((node.lineno, "RateLimited takes just the time it ends"))
            continue
        if name == "PlanChanged":
            if len(args) != 1 or "preview" not in {k.arg for k in keywords}:
                problems.append((node.lineno, "PlanChanged takes a template and preview="))
            elif why := _template_problem(args[0]):
                problems.append((node.lineno, why))
            continue
        if len(args) != 2:
            problems.append((node.lineno, f"{name} needs a code and a template, got {len(args)} positional"))
            continue
        code, template = args
        if not (isinstance(code, ast.Constant) and isinstance(code.value, str) and CODE.fullmatch(code.value)):
            problems.append((node.lineno, f"the code is not a snake_case string: {ast.unparse(code)}"))
        if why := _template_problem(template):
            problems.append((node.lineno, why))
            continue
        given = {k.arg for k in keywords}
        named = _fields(template)
        if named is not None and None not in given and named - given:
            problems.append((node.lineno, f"the template names {sorted(named - given)} but no such parameter"))
    return problems


def codes_and_templates(source: str) -> list[tuple[str, str]]:
    pairs = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called(node) in REFUSALS and len(node.args) == 2:
            code, template = node.args
            if isinstance(code, ast.Constant):
                pairs.append((str(code.value), ast.unparse(template)))
    return pairs


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of every string that is a statement of its own: docstrings (of a module, class or
    function, and those written under a constant)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


#: Strings of the domain that contain markup on purpose, each with why (nothing else may).
MARKUP_ALLOWED = {
    ("codes.py", "****-****-****-"): "a masked gift-card code, for the logs only",
    ("codes.py", "****"): "a masked short code, for the logs only",
}


def markup_in(source: str, filename: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and any(m in node.value for m in MARKUP)
        and (filename, node.value) not in MARKUP_ALLOWED
    ]


def test_there_are_domain_modules_and_refusals_to_check():
    assert len(DOMAIN) >= 15
    assert {"InvalidInput", "NotFound", "Forbidden", "Conflict", "InsufficientBalance"} <= REFUSALS
    assert sum(len(codes_and_templates(p.read_text(encoding="utf-8"))) for p in DOMAIN) >= 80


@pytest.mark.parametrize("path", RAISERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_refusal_has_a_code_and_a_template(path: Path):
    assert refusal_problems(path.read_text(encoding="utf-8")) == []


def test_a_code_is_one_sentence_and_a_sentence_one_code():
    templates: dict[str, set[str]] = defaultdict(set)
    codes: dict[str, set[str]] = defaultdict(set)
    for path in RAISERS:
        for code, template in codes_and_templates(path.read_text(encoding="utf-8")):
            templates[code].add(template)
            codes[template].add(code)
    assert {c: t for c, t in templates.items() if len(t) > 1} == {}
    assert {t: c for t, c in codes.items() if len(c) > 1} == {}


@pytest.mark.parametrize("path", PLAIN_LAYERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_text_below_the_discord_layer_carries_discord_markup(path: Path):
    assert markup_in(path.read_text(encoding="utf-8"), path.name) == []


def test_every_allowed_markup_is_still_there():
    """An exception nobody needs any more is taken off the list, not left to hide a new one."""
    for filename, text in MARKUP_ALLOWED:
        tree = ast.parse((ROOT / "bot" / "domain" / filename).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value == text for n in ast.walk(tree)), (filename, text)


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ('raise InvalidInput("Enter an amount.")', "needs a code and a template"),
        ('raise Conflict(f"{name} is sold out.")', "needs a code and a template"),
        ('raise NotFound("No such lot", "No lot #{lot}.", lot=1)', "not a snake_case string"),
        ('raise Forbidden(code, "Not for you.")', "not a snake_case string"),
        ('raise InvalidInput("bad_amount", f"Amount {text} is bad.")', "built with JoinedStr"),
        ('raise InvalidInput("bad_amount", "Amount {text} is bad.".format(text=t))', "built with Call"),
        ('raise Conflict("sold_out", "**{item}** is sold out.", item=n)', "writes markup"),
        ('raise Conflict("sold_out", "`{item}` is sold out.", item=n)', "writes markup"),
        ('raise Conflict("sold_out", "{item:b} is sold out.")', "names ['item'] but no such parameter"),
        ('raise InsufficientBalance("too_poor", "Costs {total}.", *extra)', "spread with *"),
        ('raise RateLimited(until, "Too many.")', "just the time it ends"),
        ('raise PlanChanged("Credit changed.")', "a template and preview="),
        ('x = errors.InvalidInput("Made, not raised.")', "needs a code and a template"),
    ],
)
def test_the_check_finds_a_refusal_without_its_code(source: str, why: str):
    problems = refusal_problems(source)
    assert len(problems) == 1, problems
    assert why in problems[0][1], problems


@pytest.mark.parametrize(
    "source",
    [
        'raise Conflict("item_sold_out", "{item:b} is sold out.", item=item.name)',
        'raise InvalidInput("cron_missing", "Enter a rule. " + CRON_HELP, **CRON_HELP_PARAMS)',
        'raise InvalidInput("lead_bad", "Lead time {lead}: " + exc.template, **exc.params, lead=x)',
        "raise RateLimited(from_unix(until))",
        'raise PlanChanged(head + "{detail}.", preview=now, detail=detail)',
        'raise ValueError(f"not a refusal: {x}")',
    ],
)
def test_the_check_passes_a_refusal_with_its_code(source: str):
    assert refusal_problems(source) == []


def test_the_markup_check_sees_markup_but_not_docstrings():
    source = '''
"""A module about **bold** and <t:1:R>."""
X = "fine"
"""Under X: <@1> is only documentation."""
def f(n):
    """`f` quotes <@&1>."""
    return f"**{n}**", "<t:", "<@&", "<#"
'''
    assert sorted(text for _, text in markup_in(source, "sample.py")) == sorted(["**", "**", "<t:", "<@&", "<#"])
