"""The fitting helpers every message is built with: whatever the lines, the text fits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.discordbot.fit import and_more, clip, fit_lines


def test_clip_keeps_what_fits_and_marks_a_cut() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
    assert len(clip("x" * 5000, 1024)) == 1024


def test_fit_lines_says_how_many_are_left_out() -> None:
    lines = [f"line {i:02}" for i in range(10)]  # 7 characters each
    assert fit_lines(lines, 1000) == "\n".join(lines)
    text = fit_lines(lines, 40)
    assert text == "line 00\nline 01\nline 02\n… and 7 more"
    assert len(text) <= 40


def test_a_first_line_too_long_is_cut_not_dropped() -> None:
    text = fit_lines(["x" * 100, "short"], 50)
    assert text.startswith("xxx")
    assert text.endswith("… and 1 more")
    assert len(text) <= 50


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=300), max_size=60),
    st.integers(min_value=30, max_value=4096),
)
def test_fit_lines_always_fits_and_keeps_whole_lines_in_order(lines: list[str], limit: int) -> None:
    text = fit_lines(lines, limit)
    assert len(text) <= limit
    if len("\n".join(lines)) <= limit:
        assert text == "\n".join(lines)
        return
    # Otherwise: the first k whole lines, then how many were left out; or, when not even the first
    # line fits, its start cut with "…" (and the count of the others, if any).
    whole = ["\n".join([*lines[:k], and_more(len(lines) - k)]) for k in range(1, len(lines))]
    cut_first = text.split("\n")[0]
    assert text in whole or (
        cut_first.endswith("…")
        and lines[0].startswith(cut_first[:-1])
        and text.removeprefix(cut_first) in ("", "\n" + and_more(len(lines) - 1))
    ), text
