"""Discord's message limits, and the two ways every text is made to fit them: a whole-line list
that ends "… and N more", or a single text cut with a visible "…".

The limits are Discord's documented ones (discord.com/developers/docs/resources/message#embed-
object-embed-limits); fakediscord/ refuses a message over any of them, as Discord does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

CONTENT = 2000
TITLE = 256
DESCRIPTION = 4096
FIELD_NAME = 256
FIELD_VALUE = 1024
FIELDS = 25
FOOTER = 2048
AUTHOR = 256
EMBEDS_TOTAL = 6000
CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 100
BUTTON_LABEL = 80

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else cut to fit with a visible "…"."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def and_more(count: int) -> str:
    return f"{ELLIPSIS} and {count} more"


def fit_lines(lines: Sequence[str], limit: int, *, separator: str = "\n", more: Callable[[int], str] = and_more) -> str:
    """As many whole lines as fit in ``limit`` characters, then ``more(n)`` for the ``n`` left out.

    A single line longer than the room is cut with "…" rather than dropped, so the reader always
    sees at least the start of the first one.
    """
    if not lines:
        return ""
    total = len(separator.join(lines))
    if total <= limit:
        return separator.join(lines)
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        tail = separator + more(len(lines) - index - 1) if index < len(lines) - 1 else ""
        room = limit - used - (len(separator) if kept else 0) - len(tail)
        if len(line) > room:
            if kept:
                return separator.join(kept) + separator + more(len(lines) - index)
            return clip(line, room) + tail
        kept.append(line)
        used += len(line) + (len(separator) if len(kept) > 1 else 0)
    return separator.join(kept)  # pragma: no cover - the total fitted after all


def pack_pages(lines: Sequence[str], limit: int, *, separator: str = "\n", per_page: int | None = None) -> list[str]:
    """Every line, in order, packed into as few pages of at most ``limit`` characters (and at most
    ``per_page`` lines) as they fit; a single line longer than ``limit`` is cut with "…"."""
    pages: list[str] = []
    current: list[str] = []
    size = 0
    for line in (clip(line, limit) for line in lines):
        full = per_page is not None and len(current) >= per_page
        if current and (full or size + len(separator) + len(line) > limit):
            pages.append(separator.join(current))
            current, size = [], 0
        size += len(line) + (len(separator) if current else 0)
        current.append(line)
    if current:
        pages.append(separator.join(current))
    return pages
