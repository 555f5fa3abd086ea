"""The domain's errors: a stable code, a sentence template and its parameters, never markup.

`raise Conflict("sold_out", "{item:b} is sold out.", item=item.name)`: `code` is for programs
(tests, a front end that words it otherwise), the template is the sentence a member reads, in
the placeholders of `bot.domain.text`; `str(exc)` is that sentence in plain text, and the Discord
layer renders it with Discord's markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain.text import PLAIN, Markup, render

if TYPE_CHECKING:
    from bot.domain.models import CheckoutPreview


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class UserError(LedgerError):
    """Something the user asked for cannot be done; the message says why, briefly."""

    def __init__(self, code: str, template: str, /, **params: Any) -> None:
        self.code = code
        self.template = template
        self.params = params
        super().__init__(self.render(PLAIN))

    def render(self, markup: Markup) -> str:
        return render(self.template, self.params, markup)


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

    def __init__(self, template: str, /, *, preview: CheckoutPreview, **params: Any) -> None:
        super().__init__("plan_changed", template, **params)
        self.preview = preview


class RateLimited(UserError):
    """Too many wrong codes; `until` is when the member may try again."""

    def __init__(self, until: datetime) -> None:
        super().__init__(
            "rate_limited", "Too many wrong codes. You can try again {until:R}.", until=int(until.timestamp())
        )
        self.until = until


class IntegrityError(LedgerError):
    """An invariant is broken: a bug or a hand-edited database, never a user's doing."""
