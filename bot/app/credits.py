"""Credit: granting lots, revoking and extending them, balances and history, and the expiry sweep.

`insert_lots` and `debit` are how every other area creates and spends credit, so each lot always
starts with its grant entry and every change of `remaining` has its entry (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.app.reminders import advance_reminder
from bot.app.service import Service, bounded_text, lot_kind
from bot.domain.allocation import allocate_revoke, balance_of
from bot.domain.categories import normalise_categories, parse_categories
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.models import (
    AuditRecord,
    Balance,
    Entry,
    ExpiredLot,
    ExtendResult,
    GrantResult,
    Lot,
    LotChange,
    LotSpec,
    Page,
    RevokeResult,
)
from bot.domain.money import format_amount
from bot.domain.paging import clamp_page, page_count
from bot.domain.reminders import next_reminder_at
from bot.store.ports import Tx

HISTORY_PAGE = 10
#: The status of a lot emptied by each kind of debit.
EMPTY_STATUS = {"spend": "spent", "forfeit": "forfeited", "void": "voided", "expire": "expired"}


def insert_lots(
    tx: Tx, guild_id: int, user_ids: Sequence[int], spec: LotSpec, actor_id: int | None, key: str | None, now: int
) -> int:
    """Create one lot per member with its grant entry; returns the first of their consecutive ids."""
    starts_at = spec.starts_at if spec.starts_at is not None else now
    leads = tx.settings.get(guild_id).reminder_leads
    first = tx.lots.next_id()
    tx.accounts.ensure(guild_id, user_ids, now)
    tx.lots.insert(
        guild_id, first, user_ids, spec, starts_at, actor_id, now, next_reminder_at(spec.expires_at, leads, now)
    )
    tx.entries.add_grants(guild_id, first, user_ids, spec.amount, actor_id, spec.memo, key, now)
    return first


def debit(
    tx: Tx,
    pieces: Sequence[tuple[Lot, int]],
    type_: str,
    order_id: int | None,
    actor_id: int | None,
    reason: str | None,
    key: str | None,
    now: int,
    forfeits: int | None = None,
) -> list[LotChange]:
    """Take amounts from lots, one entry each; pieces from index `forfeits` on are forfeits."""
    remaining: dict[int, int] = {}
    changes = []
    for index, (lot, amount) in enumerate(pieces):
        kind = "forfeit" if forfeits is not None and index >= forfeits else type_
        before = remaining.get(lot.id, lot.remaining)
        after = before - amount
        if not tx.lots.take(lot.id, before, after, EMPTY_STATUS[kind] if after == 0 else "active"):
            # The single writer makes this impossible; refuse loudly if not.
            raise RuntimeError(f"lot {lot.id} changed under a transaction")
        remaining[lot.id] = after
        tx.entries.add(lot, kind, -amount, order_id, actor_id, reason, key, now)
        changes.append(LotChange(lot.id, lot.user_id, lot.kind, kind, -amount))  # type: ignore[arg-type]
    return changes


def grant_lots(
    tx: Tx, guild_id: int, user_ids: Sequence[int], spec: LotSpec, audit: AuditRecord | None, key: str | None, now: int
) -> GrantResult:
    first = insert_lots(tx, guild_id, user_ids, spec, audit.actor_id if audit else None, key, now)
    if audit is not None:
        tx.audit.add(guild_id, audit, now)
    return GrantResult(
        first_lot_id=first,
        count=len(user_ids),
        amount=spec.amount,
        kind=spec.kind,
        starts_at=spec.starts_at if spec.starts_at is not None else now,
        expires_at=spec.expires_at,
    )


def revoke_credit(
    tx: Tx,
    guild_id: int,
    user_id: int,
    lot_id: int | None,
    amount: int | None,
    audit: AuditRecord,
    key: str | None,
    now: int,
) -> RevokeResult:
    """Void a lot (all of it, or `amount` of it), or `amount` across the member's usable credit."""
    currency = tx.settings.get(guild_id).currency
    if lot_id is not None:
        lot = tx.lots.by_id(guild_id, lot_id)
        if lot is None or lot.user_id != user_id:
            raise NotFound("not_their_lot", "Lot #{lot} is not one of {user:user}'s lots.", lot=lot_id, user=user_id)
        if lot.status != "active" or lot.is_expired_at(now):
            raise Conflict(
                "lot_not_active",
                "Lot #{lot} is {state}: there is nothing left to revoke.",
                lot=lot_id,
                state="expired" if lot.is_expired_at(now) else lot.status,
            )
        take = lot.remaining if amount is None else amount
        if take > lot.remaining:
            raise Conflict(
                "lot_has_less",
                "Lot #{lot} has only {left} left.",
                lot=lot_id,
                left=format_amount(lot.remaining, currency),
            )
        pieces = [(lot, take)]
    else:
        if amount is None:
            raise InvalidInput("revoke_what", "Name a lot or an amount to revoke.")
        pieces = allocate_revoke(tx.lots.of_member(guild_id, user_id), amount, now, currency)
    changes = debit(tx, pieces, "void", None, audit.actor_id, audit.details.get("reason"), key, now)
    if lot_id is not None and amount is None:  # the lot itself is cancelled, not just emptied
        tx.lots.mark_revoked(lot_id, now)
    tx.audit.add(guild_id, audit, now)
    return RevokeResult(user_id, sum(t for _, t in pieces), tuple(changes))


def extend_lot(
    tx: Tx, guild_id: int, lot_id: int, expires_at: int, audit: AuditRecord, key: str | None, now: int
) -> ExtendResult:
    lot = tx.lots.by_id(guild_id, lot_id)
    if lot is None:
        raise NotFound("no_such_lot", "There is no lot #{lot} in this server.", lot=lot_id)
    if lot.is_expired_at(now) or lot.status == "expired":
        raise Conflict("lot_expired", "Lot #{lot} has already expired; expired credit cannot be revived.", lot=lot_id)
    if lot.status != "active":
        raise Conflict(
            "lot_not_extendable",
            "Lot #{lot} is {status}: only active lots can be extended.",
            lot=lot_id,
            status=lot.status,
        )
    if expires_at <= lot.starts_at:
        raise InvalidInput(
            "expiry_before_start", "The new expiry must come after the lot starts ({starts:R}).", starts=lot.starts_at
        )
    tx.lots.set_expiry(lot_id, expires_at)
    advance_reminder(tx, lot_id, tx.settings.get(guild_id).reminder_leads, now)
    tx.entries.add(lot, "expiry_change", 0, None, audit.actor_id, audit.details.get("reason"), key, now)
    tx.audit.add(guild_id, audit, now)
    return ExtendResult(lot_id, lot.user_id, lot.expires_at, expires_at)


def expire_batch(tx: Tx, now: int, batch: int) -> list[ExpiredLot]:
    """Expire up to `batch` active lots past their expiry: each emptied, with an 'expire' entry."""
    lots = tx.lots.due_to_expire(now, batch)
    if lots:
        tx.lots.expire(lots, now)
    return lots


def member_lots(tx: Tx, guild_id: int, user_id: int, active_only: bool) -> list[Lot]:
    return tx.lots.of_member(guild_id, user_id, active_only)


def lot_by_id(tx: Tx, guild_id: int, lot_id: int) -> Lot | None:
    return tx.lots.by_id(guild_id, lot_id)


def history_page(tx: Tx, guild_id: int, user_id: int, page: int, per_page: int) -> Page[Entry]:
    total = tx.entries.count_of_member(guild_id, user_id)
    page_no = clamp_page(page, total, per_page)
    entries = tx.entries.page_of_member(guild_id, user_id, (page_no - 1) * per_page, per_page)
    return Page(tuple(entries), page_no, page_count(total, per_page), total)


def categories_input(categories: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Categories typed as "games, gear" or given as a list."""
    if isinstance(categories, str) or categories is None:
        return parse_categories(categories)
    return normalise_categories(categories)


class CreditService(Service):
    async def _lot_spec(
        self,
        guild_id: int,
        amount: str | int,
        *,
        kind: str,
        expires: str | None,
        starts: str | None,
        categories: str | Sequence[str] | None,
        one_time: bool,
        reason: str | None,
    ) -> LotSpec:
        settings = await self.settings(guild_id)
        minor = await self.amount(guild_id, amount, settings)
        starts_at = self.when(starts, settings, "start", future=False)
        expires_at = self.when(expires, settings, "expiry", future=True)
        if starts_at is not None and expires_at is not None and expires_at <= starts_at:
            raise InvalidInput("expiry_not_after_start", "The expiry must come after the start.")
        return LotSpec(
            amount=minor,
            kind=lot_kind(kind),
            starts_at=starts_at,
            expires_at=expires_at,
            categories=categories_input(categories),
            one_time=bool(one_time),
            memo=bounded_text(reason, "reason"),
        )

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: str | int,
        *,
        actor_id: int | None,
        key: str | None,
        kind: str = "promo",
        expires: str | None = None,
        starts: str | None = None,
        categories: str | Sequence[str] | None = None,
        one_time: bool = False,
        reason: str | None = None,
    ) -> GrantResult:
        return await self.grant_many(
            guild_id,
            [user_id],
            amount,
            actor_id=actor_id,
            key=key,
            kind=kind,
            expires=expires,
            starts=starts,
            categories=categories,
            one_time=one_time,
            reason=reason,
        )

    async def grant_many(
        self,
        guild_id: int,
        user_ids: Iterable[int],
        amount: str | int,
        *,
        actor_id: int | None,
        key: str | None,
        kind: str = "promo",
        expires: str | None = None,
        starts: str | None = None,
        categories: str | Sequence[str] | None = None,
        one_time: bool = False,
        reason: str | None = None,
        action: str = "grant",
    ) -> GrantResult:
        """One lot per member, all in one transaction."""
        # In user-id order: every index insert (accounts, lots_member, entries_member) then walks its
        # B-tree once instead of landing on a random page per member. Lot ids follow that order.
        members = sorted(set(user_ids))
        if not members:
            raise InvalidInput("nobody_to_grant", "There is nobody to grant credit to.")
        try:
            spec = await self._lot_spec(
                guild_id,
                amount,
                kind=kind,
                expires=expires,
                starts=starts,
                categories=categories,
                one_time=one_time,
                reason=reason,
            )
        except InvalidInput as refusal:
            return GrantResult.from_dict(await self.replayed_or(refusal, key, "grant"))
        details: dict[str, Any] = {"members": len(members), "amount": spec.amount, "kind": spec.kind}
        if len(members) == 1:
            details["user_id"] = members[0]
        if spec.memo:
            details["reason"] = spec.memo
        audit = AuditRecord(actor_id, action, details) if actor_id is not None else None
        now = self.now()
        applied = await self.unit(
            "grant", GrantResult.from_dict, key, guild_id, now, grant_lots, guild_id, members, spec, audit, key, now
        )
        result = applied.value
        if applied.fresh:
            self.emit_granted(guild_id, members, result, actor_id)
        return result

    async def revoke(
        self,
        guild_id: int,
        user_id: int,
        *,
        reason: str,
        actor_id: int,
        key: str | None,
        lot_id: int | None = None,
        amount: str | int | None = None,
    ) -> RevokeResult:
        why = bounded_text(reason, "reason")
        if not why:
            raise InvalidInput(
                "revoke_needs_reason", "Give a reason for the revocation; the member will see it in their history."
            )
        minor = None if amount is None else await self.amount(guild_id, amount)
        if lot_id is None and minor is None:
            raise InvalidInput("revoke_what", "Name a lot or an amount to revoke.")
        audit = AuditRecord(actor_id, "revoke", {"user_id": user_id, "lot_id": lot_id, "amount": minor, "reason": why})
        now = self.now()
        applied = await self.unit(
            "revoke",
            RevokeResult.from_dict,
            key,
            guild_id,
            now,
            revoke_credit,
            guild_id,
            user_id,
            lot_id,
            minor,
            audit,
            key,
            now,
        )
        return applied.value

    async def extend(
        self, guild_id: int, lot_id: int, expires: str, *, actor_id: int, key: str | None, reason: str | None = None
    ) -> ExtendResult:
        settings = await self.settings(guild_id)
        try:
            expires_at = self.when(expires, settings, "expiry", future=True)
        except InvalidInput as refusal:
            return ExtendResult.from_dict(await self.replayed_or(refusal, key, "extend"))
        if expires_at is None:
            raise InvalidInput(
                "extend_needs_expiry",
                "Give the new expiry, like {days:lit} or {date:lit}.",
                days="30d",
                date="2026-12-31",
            )
        audit = AuditRecord(
            actor_id, "extend", {"lot_id": lot_id, "expires_at": expires_at, "reason": bounded_text(reason, "reason")}
        )
        now = self.now()
        applied = await self.unit(
            "extend",
            ExtendResult.from_dict,
            key,
            guild_id,
            now,
            extend_lot,
            guild_id,
            lot_id,
            expires_at,
            audit,
            key,
            now,
        )
        return applied.value

    async def balance(self, guild_id: int, user_id: int) -> Balance:
        lots = await self.store.read(member_lots, guild_id, user_id, True, fast=True)
        return balance_of(guild_id, user_id, lots, self.now())

    async def lots(self, guild_id: int, user_id: int, active_only: bool = False) -> list[Lot]:
        return await self.store.read(member_lots, guild_id, user_id, active_only, fast=True)

    async def get_lot(self, guild_id: int, lot_id: int) -> Lot | None:
        return await self.store.read(lot_by_id, guild_id, lot_id)

    async def history(self, guild_id: int, user_id: int, page: int = 1, per_page: int = HISTORY_PAGE) -> Page[Entry]:
        return await self.store.read(history_page, guild_id, user_id, page, per_page, fast=True)
