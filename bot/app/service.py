"""What every area of the application shares: the store, the clock, events, idempotent units of
work, and the reading of what users typed (amounts, dates, bounded text and numbers).

An area (credits, shop, codes, …) is a mixin of `Service` with the async methods front ends call,
and module-level units of work `unit(tx, …)` that the store runs in one transaction on its writer
(bot/store/ports.py). `Ledger` (bot/app/ledger.py) is every area together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.domain import limits
from bot.domain.errors import Conflict, InvalidInput
from bot.domain.models import LOT_KINDS, GrantResult, GuildSettings, LotKind, Record
from bot.domain.money import MAX_AMOUNT, check_amount, parse_amount
from bot.domain.timeparse import parse_future, parse_when, to_unix
from bot.store.ports import Applied, CommitThenRaise, Engine, Tx

log = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, Any]], None]
R = TypeVar("R", bound=Record)


def utc_now() -> datetime:
    return datetime.now(UTC)


def bounded_text(value: str | None, what: str, limit: int = limits.REASON) -> str | None:
    """Typed text, stripped; None when blank."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput("text_too_long", "The {what} can be at most {limit} characters.", what=what, limit=limit)
    return value or None


def lot_kind(kind: str) -> LotKind:
    if kind not in LOT_KINDS:
        raise InvalidInput("unknown_kind", "Kind must be {promo:lit} or {gift:lit}.", promo="promo", gift="gift")
    return kind


def bounded_int(value: int | None, what: str, minimum: int = 1, maximum: int = MAX_AMOUNT) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not minimum <= value <= maximum:
        raise InvalidInput(
            "number_out_of_range",
            "The {what} must be between {minimum} and {maximum}.",
            what=what,
            minimum=minimum,
            maximum=maximum,
        )
    return value


def idempotent(
    tx: Tx,
    operation: str,
    decode: Callable[[dict[str, Any]], R],
    key: str | None,
    guild_id: int,
    now: int,
    unit: Callable[..., R | CommitThenRaise],
    args: tuple[Any, ...],
) -> Applied[R] | CommitThenRaise:
    """Run `unit(tx, *args)` once per key: the same key again returns the first result and writes
    nothing; a key used for another operation is refused."""
    if key is not None:
        prior = tx.idempotency.find(key)
        if prior is not None:
            if prior[0] != operation:
                raise Conflict("key_reused", "This request was already used for another action.")
            return Applied(decode(prior[1]), fresh=False)
    result = unit(tx, *args)
    if isinstance(result, CommitThenRaise):
        return result
    if key is not None:
        tx.idempotency.record(key, guild_id, operation, result.to_json(), now)
    return Applied(result, fresh=True)


def guild_settings(tx: Tx, guild_id: int) -> GuildSettings:
    return tx.settings.get(guild_id)


@dataclass
class Service:
    store: Engine
    clock: Callable[[], datetime] = utc_now
    events: EventSink | None = None

    def now(self) -> int:
        return to_unix(self.clock())

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        """Tell listeners (the bot's other cogs) what happened, after it was committed."""
        if self.events is None:
            return
        try:
            self.events(name, payload)
        except Exception:  # a listener's bug must not undo a committed write
            log.exception("listener of %s failed", name)

    def emit_granted(
        self, guild_id: int, user_ids: list[int], result: GrantResult, actor_id: int | None, **extra: Any
    ) -> None:
        """`credit_granted`: lots were created (a grant, a redemption, a recurring run)."""
        self.emit(
            "credit_granted",
            {
                "guild_id": guild_id,
                "user_ids": user_ids,
                "amount": result.amount,
                "kind": result.kind,
                "starts_at": result.starts_at,
                "expires_at": result.expires_at,
                "first_lot_id": result.first_lot_id,
                "actor_id": actor_id,
                **extra,
            },
        )

    async def unit(
        self,
        operation: str,
        decode: Callable[[dict[str, Any]], R],
        key: str | None,
        guild_id: int,
        now: int,
        unit: Callable[..., R | CommitThenRaise],
        *args: Any,
    ) -> Applied[R]:
        """One idempotent write: `unit(tx, *args)` in one transaction, at most once per key."""
        return await self.store.write(idempotent, operation, decode, key, guild_id, now, unit, args)

    async def replayed_or(self, refusal: InvalidInput, key: str | None, operation: str) -> dict[str, Any]:
        """A check that depends on the time (an expiry typed as a date) can refuse a replay of a
        request that was valid when first made: return the first result then, else the refusal."""
        prior = await self.store.read(_replayed, key, operation) if key is not None else None
        if prior is None:
            raise refusal
        return prior

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self.store.read(guild_settings, guild_id, fast=True)

    async def amount(self, guild_id: int, value: str | int, settings: GuildSettings | None = None) -> int:
        """An amount typed by a user in the guild's currency, or minor units given as an int."""
        if isinstance(value, int) and not isinstance(value, bool):
            return check_amount(value)
        if not isinstance(value, str):
            raise InvalidInput("amount_not_text", "Give the amount as a number, like 25.")
        settings = settings or await self.settings(guild_id)
        return parse_amount(value, settings.decimals, symbol=settings.currency_symbol)

    def when(self, text: str | None, settings: GuildSettings, what: str, future: bool) -> int | None:
        """A date or duration typed in the guild's timezone: an expiry (`future`) or a start."""
        if text is None or not text.strip():
            return None
        now = self.clock()
        if future:
            return to_unix(parse_future(text, now, settings.timezone, what=what))
        return to_unix(parse_when(text, now, settings.timezone, day_start=True))  # "usable from" a date


def _replayed(tx: Tx, key: str, operation: str) -> dict[str, Any] | None:
    prior = tx.idempotency.find(key)
    return prior[1] if prior is not None and prior[0] == operation else None
