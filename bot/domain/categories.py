"""Shop categories as labels: case-insensitive, bounded, written as a comma list."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain import limits
from bot.domain.errors import InvalidInput


def normalise_categories(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """Categories are case-insensitive labels; keep the first spelling, drop blanks and repeats."""
    if values is None:
        return None
    seen: dict[str, str] = {}
    for raw in values:
        name = raw.strip()
        if not name:
            continue
        if len(name) > limits.CATEGORY:
            raise InvalidInput(
                "category_name_too_long",
                "A category name can be at most {longest} characters.",
                longest=limits.CATEGORY,
            )
        seen.setdefault(name.casefold(), name)
    if len(seen) > limits.CATEGORIES_PER_LIST:
        raise InvalidInput(
            "categories_too_many", "At most {most} categories, separated by commas.", most=limits.CATEGORIES_PER_LIST
        )
    return tuple(seen.values()) or None


def parse_categories(text: str | None) -> tuple[str, ...] | None:
    """`"games, gear"` -> ("games", "gear"); empty or None -> None (any category)."""
    if text is None or not text.strip():
        return None
    return normalise_categories(text.split(","))
