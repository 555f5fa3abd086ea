"""Promo codes and gift-card codes: normalising, generating, hashing, masking."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.codes import (
    CROCKFORD_ALPHABET,
    generate_gift_code,
    gift_code_key,
    gift_code_last4,
    gift_last4_key,
    hash_gift_code,
    mask_code,
    normalise_code,
    validate_promo_code,
)
from bot.domain.errors import InvalidInput

GIFT_DISPLAY = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){3}")
CARD = "7KQ2-M9XD-3F8B-ZT1C"
CARD_KEY = "7KQ2M9XD3F8BZT1C"


def test_alphabet_is_crockford():
    assert CROCKFORD_ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(CROCKFORD_ALPHABET)) == 32
    assert not set("ILOU") & set(CROCKFORD_ALPHABET)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("summer-sale", "SUMMERSALE"),
        ("  Summer Sale  ", "SUMMERSALE"),
        ("SUMMER_SALE", "SUMMERSALE"),
        ("summer.sale", "SUMMERSALE"),
        ("summer\u2013sale", "SUMMERSALE"),  # en dash, as phones autocorrect
        ("sum\u200bmer", "SUMMER"),  # zero-width space pasted from a message
        ("`ABCD-EFGH`", "ABCDEFGH"),
        ("ＳＵＭＭＥＲ２５", "SUMMER25"),  # full-width
        ("abcd efgh\tijkl\nmnop", "ABCDEFGHIJKLMNOP"),
        ("", ""),
        ("---", ""),
    ],
)
def test_normalise_code(text, expected):
    assert normalise_code(text) == expected


@given(st.text(max_size=50))
def test_normalise_code_is_idempotent(text):
    once = normalise_code(text)
    assert normalise_code(once) == once
    assert "-" not in once
    assert " " not in once


def test_generate_gift_code_shape():
    code = generate_gift_code()
    assert GIFT_DISPLAY.fullmatch(code), code
    assert len(code) == 19


def test_generate_gift_code_is_random():
    codes = {generate_gift_code() for _ in range(200)}
    assert len(codes) == 200
    # Every alphabet character turns up across 200*16 draws (chance of a miss ~ 1e-42).
    assert set("".join(codes).replace("-", "")) == set(CROCKFORD_ALPHABET)


def test_gift_code_round_trip_many():
    for _ in range(200):
        code = generate_gift_code()
        key = gift_code_key(code)
        assert key == code.replace("-", "")
        assert gift_code_key(code.lower()) == key
        assert gift_code_key(code.replace("-", " ")) == key
        assert gift_code_key(f"  {code.lower().replace('-', '')}  ") == key


@given(st.text(alphabet=CROCKFORD_ALPHABET, min_size=16, max_size=16))
def test_gift_code_key_round_trip_with_separators_and_case(key):
    display = "-".join(key[i : i + 4] for i in range(0, 16, 4))
    assert gift_code_key(display) == key
    assert gift_code_key(display.lower()) == key
    assert gift_code_key(" ".join(key)) == key
    assert hash_gift_code(display) == hash_gift_code(key)


@given(st.text(alphabet=CROCKFORD_ALPHABET, min_size=16, max_size=16), st.data())
def test_gift_code_aliases(key, data):
    # Replace some 0s and 1s with the letters people read them as.
    typed = "".join(
        data.draw(st.sampled_from("0Oo")) if c == "0" else data.draw(st.sampled_from("1IiLl")) if c == "1" else c
        for c in key
    )
    assert gift_code_key(typed) == key


def test_gift_code_key_aliases_explicit():
    assert gift_code_key("OOOO-IIII-LLLL-oil0") == "0000111111110110"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7KQ2-M9XD-3F8B-ZT1",  # 15
        "7KQ2-M9XD-3F8B-ZT1CC",  # 17
        "7KQ2-M9XD-3F8B-ZTUC",  # U is not Crockford
        "SUMMER-SALE",
        "7KQ2-M9XD-3F8B-ZT1É",
    ],
)
def test_gift_code_key_rejects(text):
    assert gift_code_key(text) is None


def test_hash_gift_code():
    digest = hash_gift_code(CARD_KEY)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hashlib.sha256(b"promobalance-giftcard-v1:" + CARD_KEY.encode()).hexdigest()
    assert digest != hashlib.sha256(CARD_KEY.encode()).hexdigest()  # not a bare sha256
    assert hash_gift_code(CARD) == digest
    assert hash_gift_code(CARD.lower()) == digest
    assert hash_gift_code("7KQ2M9XD3F8BZT1D") != digest


def test_hash_gift_code_refuses_non_codes_without_echoing_them():
    with pytest.raises(ValueError, match="not a gift-card code") as info:
        hash_gift_code("SECRETISH-THING")
    assert "SECRETISH" not in str(info.value)


def test_gift_code_last4():
    assert gift_code_last4(CARD_KEY) == "ZT1C"
    assert gift_code_last4(CARD) == "ZT1C"
    assert gift_code_last4("7kq2m9xd3f8bzt1o") == "ZT10"
    with pytest.raises(ValueError, match="not a gift-card code"):
        gift_code_last4("ABC")


def test_gift_last4_key():
    assert gift_last4_key("zt1c") == "ZT1C"
    assert gift_last4_key(" ZT-IC ") == "ZT1C"
    assert gift_last4_key("ZT1") is None
    assert gift_last4_key("ZTUC") is None


@pytest.mark.parametrize(
    ("text", "display", "key"),
    [
        ("SUMMER-25", "SUMMER-25", "SUMMER25"),
        ("summer-25", "SUMMER-25", "SUMMER25"),
        ("  welcome  ", "WELCOME", "WELCOME"),
        ("ABC", "ABC", "ABC"),
        ("A" * 32, "A" * 32, "A" * 32),
        ("A-B-C", "A-B-C", "ABC"),
        ("--A1B--", "--A1B--", "A1B"),
        ("1-2-3", "1-2-3", "123"),
        ("2026", "2026", "2026"),
        ("ＳＡＬＥ", "SALE", "SALE"),
    ],
)
def test_validate_promo_code_accepts(text, display, key):
    assert validate_promo_code(text) == (display, key)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Enter a code"),
        ("   ", "Enter a code"),
        ("AB", "3–32 characters"),
        ("A" * 33, "3–32 characters"),
        ("SUMMER SALE", "use dashes"),
        ("SUMMER\tSALE", "use dashes"),
        ("SUMMER_SALE", "A–Z, digits 0–9 and dashes"),
        ("SALE!", "A–Z, digits 0–9 and dashes"),
        ("CAFÉ", "A–Z, digits 0–9 and dashes"),
        ("@everyone", "A–Z, digits 0–9 and dashes"),
        # SPEC §4: at least 3 letters or digits, counted after dashes are dropped (as /redeem matches).
        ("---", "at least 3 letters or digits"),
        ("A--", "at least 3 letters or digits"),
        ("-A-", "at least 3 letters or digits"),
        ("A-B", "at least 3 letters or digits"),
        ("AB-", "at least 3 letters or digits"),
        ("A" + "-" * 31, "at least 3 letters or digits"),
        ("A-" + "-" * 31, "3–32 characters"),
    ],
)
def test_validate_promo_code_refuses(text, fragment):
    with pytest.raises(InvalidInput) as info:
        validate_promo_code(text)
    assert fragment in str(info.value)


@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{2,31}", fullmatch=True).filter(
        lambda code: sum(c.isalnum() for c in code) >= 3
    )
)
def test_promo_key_matches_redeem_normalisation(code):
    display, key = validate_promo_code(code)
    # Whatever the member types, with any case, spaces or dashes, finds the same key.
    assert normalise_code(display.lower()) == key
    assert normalise_code(" ".join(display)) == key
    assert normalise_code(display.replace("-", "")) == key


def test_mask_code_gift_card():
    assert mask_code(CARD) == "****-****-****-ZT1C"
    assert mask_code(CARD.lower().replace("-", "")) == "****-****-****-ZT1C"
    assert mask_code("7kq2m9xd3f8bzt1o") == "****-****-****-ZT10"  # alias, like the stored last4


@pytest.mark.parametrize("text", ["SUMMER-25", "abc", "", "WELCOME2026"])
def test_mask_code_hides_short_codes_completely(text):
    assert mask_code(text) == "****"


def test_mask_code_long_promo_shows_only_last4():
    masked = mask_code("BLACK-FRIDAY-MEGA-SALE-2026")
    assert masked == "****-****-****-2026"
    assert "BLACK" not in masked


@given(st.text(max_size=40))
def test_mask_code_never_shows_more_than_four_code_characters(text):
    masked = mask_code(text)
    assert len(masked.replace("*", "").replace("-", "")) <= 4
    assert masked == "****" or masked.startswith("****-****-****-")
