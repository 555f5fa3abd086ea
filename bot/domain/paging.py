"""Pages of a list."""

from __future__ import annotations


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def clamp_page(page: int, total: int, per_page: int) -> int:
    return min(max(page, 1), page_count(total, per_page))
