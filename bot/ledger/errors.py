"""The domain's errors. Every `UserError` carries a message fit to show the member as is."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.ledger.models import CheckoutPreview


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class UserError(LedgerError):
    """Something the user asked for cannot be done; `str(exc)` says why, briefly."""


class InvalidInput(UserError):
    """A value was malformed or out of range (amount, duration, date, code, name…)."""


class NotFound(UserError):
    """The lot, item, order, code or card does not exist in this server."""


class Forbidden(UserError):
    """The member may not do this (missing role, too new, not a moderator)."""


class Conflict(UserError):
    """The state does not allow it now: sold out, limit reached, already used, inactive…"""


class InsufficientBalance(Conflict):
    """Not enough eligible credit for the purchase."""


class PlanChanged(Conflict):
    """Confirm would pay otherwise than its preview showed (lots, promo / gift split, forfeits,
    price): nothing was written. `preview` is the purchase as it would be now, to confirm anew."""

    def __init__(self, message: str, preview: CheckoutPreview) -> None:
        super().__init__(message)
        self.preview = preview


class RateLimited(UserError):
    """Too many wrong codes; `until` is when the member may try again."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class IntegrityError(LedgerError):
    """An invariant is broken: a bug or a hand-edited database, never a user's doing."""
