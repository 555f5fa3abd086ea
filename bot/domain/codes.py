"""Promo codes and gift-card claim codes: normalising input, generating, hashing, masking.

One `/redeem` box takes both kinds. Input is normalised the same way for both (case,
spaces, dashes and other separators do not matter). Gift-card codes are 16 Crockford
base32 characters and are stored only as `hash_gift_code` plus `gift_code_last4`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

from bot.domain.errors import InvalidInput

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GIFT_CODE_LENGTH = 16
GIFT_CODE_GROUP = 4
GIFT_HASH_DOMAIN = "promobalance-giftcard-v1:"

PROMO_MIN_LENGTH = 3
PROMO_MAX_LENGTH = 32

# Crockford decoding: letters people confuse with digits.
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CROCKFORD_SET = frozenset(CROCKFORD_ALPHABET)
_PROMO_SHAPE = re.compile(r"[A-Z0-9-]+", re.ASCII)
_MASK_VISIBLE_FROM = 16  # show the last 4 characters only of codes at least this long
_MASKED = "****-****-****-"


def normalise_code(text: str) -> str:
    """Uppercase and keep only letters and digits: ``" summer-sale "`` -> ``"SUMMERSALE"``.

    Full-width and other compatibility forms are folded first (NFKC), so ``ＡＢＣ`` is
    ``ABC``; spaces, dashes, underscores, dots, quotes, backticks and invisible characters
    are dropped. Used for lookups of both promo codes and gift cards.
    """
    if not isinstance(text, str):
        return ""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(c for c in folded if c.isalnum())


def _format_gift(canonical: str) -> str:
    return "-".join(canonical[i : i + GIFT_CODE_GROUP] for i in range(0, len(canonical), GIFT_CODE_GROUP))


def generate_gift_code() -> str:
    """A new claim code, e.g. ``"7KQ2-M9XD-3F8B-ZT1C"`` (16 Crockford chars, 80 random bits)."""
    canonical = "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(GIFT_CODE_LENGTH))
    return _format_gift(canonical)


def gift_code_key(text: str) -> str | None:
    """The canonical 16-character form of a gift-card code, or ``None`` if it cannot be one.

    Case, spaces and dashes don't matter; ``O`` reads as ``0`` and ``I``/``L`` as ``1``.
    """
    key = normalise_code(text).translate(_CROCKFORD_ALIASES)
    if len(key) != GIFT_CODE_LENGTH or not set(key) <= _CROCKFORD_SET:
        return None
    return key


def _canonical_or_error(code: str) -> str:
    key = gift_code_key(code)
    if key is None:
        raise ValueError("not a gift-card code")  # never echo the code: it is a secret
    return key


def hash_gift_code(canonical: str) -> str:
    """SHA-256 hex of the domain string and the canonical code (what the database stores).

    Also accepts the displayed ``XXXX-XXXX-XXXX-XXXX`` form; raises ``ValueError`` for
    something that is not a gift-card code (check with `gift_code_key` first).
    """
    key = _canonical_or_error(canonical)
    return hashlib.sha256((GIFT_HASH_DOMAIN + key).encode("ascii")).hexdigest()


def gift_code_last4(canonical: str) -> str:
    """The last 4 characters of the canonical code (stored, and shown to moderators)."""
    return _canonical_or_error(canonical)[-4:]


def gift_last4_key(text: str) -> str | None:
    """Normalise what a moderator typed as a card's last 4 (``/giftcard void last4``)."""
    key = normalise_code(text).translate(_CROCKFORD_ALIASES)
    if len(key) != 4 or not set(key) <= _CROCKFORD_SET:
        return None
    return key


def validate_promo_code(text: str) -> tuple[str, str]:
    """A moderator's new promo code -> ``(display, key)``.

    ``display`` is the trimmed, uppercased code (3–32 of ``A-Z 0-9 -``) shown in lists;
    ``key`` is ``normalise_code(display)``, what lookups use (so ``SUMMER-SALE`` and
    ``SUMMERSALE`` are the same code: check ``key`` for uniqueness). Spaces are refused,
    with a hint to use dashes.

    The key must have at least ``PROMO_MIN_LENGTH`` letters or digits too (SPEC §4): dashes are
    dropped when matching, so ``A--`` would be the one-character code ``A`` that ``/redeem a``
    finds. Codes made before this rule keep working as they were (see `redeem` in the service).
    """
    if not isinstance(text, str):
        raise InvalidInput("code_missing", "Enter a code, like SUMMER-25.")
    display = unicodedata.normalize("NFKC", text).strip().upper()
    if not display:
        raise InvalidInput("code_missing", "Enter a code, like SUMMER-25.")
    if any(c.isspace() for c in display):
        raise InvalidInput("code_has_spaces", "A code can't contain spaces: use dashes instead, like SUMMER-SALE.")
    if not PROMO_MIN_LENGTH <= len(display) <= PROMO_MAX_LENGTH:
        raise InvalidInput(
            "code_length",
            "A code must be {shortest}–{longest} characters long, like SUMMER-25.",
            shortest=PROMO_MIN_LENGTH,
            longest=PROMO_MAX_LENGTH,
        )
    if _PROMO_SHAPE.fullmatch(display) is None:
        raise InvalidInput(
            "code_characters", "A code can only use the letters A–Z, digits 0–9 and dashes, like SUMMER-25."
        )
    key = normalise_code(display)
    if len(key) < PROMO_MIN_LENGTH:
        raise InvalidInput(
            "code_too_few_characters",
            "A code needs at least {shortest} letters or digits (dashes don't count), like SUMMER-25.",
            shortest=PROMO_MIN_LENGTH,
        )
    return display, key


def mask_code(text: str) -> str:
    """A log-safe stand-in for anything code-like: ``"****-****-****-AB12"`` or ``"****"``.

    Only codes of 16 or more letters/digits keep their last 4 visible (gift cards show the
    same last 4 that is stored); shorter ones are fully hidden, as 4 characters would give
    too much of them away. The length of the code is never revealed.
    """
    gift = gift_code_key(text)
    if gift is not None:
        return _MASKED + gift[-4:]
    key = normalise_code(text)
    if len(key) >= _MASK_VISIBLE_FROM:
        return _MASKED + key[-4:]
    return "****"
