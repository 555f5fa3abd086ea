"""Reading the books: the report, the audit log, the CSV export, the invariant check, and what an
interaction committed."""

from __future__ import annotations

from typing import Any, TextIO

from bot.app.service import Service
from bot.domain.export import write_csv
from bot.domain.models import Entry, Page, Report, WeekFigures
from bot.domain.paging import clamp_page, page_count
from bot.store.ports import Tx

WEEK = 7 * 86400
WEEKS = 12
EXPORT_BATCH = 5000


def report(tx: Tx, guild_id: int, now: int) -> Report:
    """Outstanding credit, what expires soon, twelve weeks of figures, the codes' use and the
    staff's backlog (pending orders and what they were paid)."""
    outstanding = tx.reports.outstanding_by_kind(guild_id, now)
    start = now - WEEKS * WEEK  # twelve weeks; the current second belongs to the last one
    figures = {i: {"grant": 0, "spend": 0, "refunded": 0, "expire": 0} for i in range(WEEKS)}
    for index, type_, amount in tx.reports.entry_totals_by_week(guild_id, start, WEEK):
        figures[min(index, WEEKS - 1)][type_] += abs(amount)
    # A refund gives back what the order spent (its total); forfeits it returns were never spending.
    for index, total in tx.reports.refunds_by_week(guild_id, start, WEEK):
        figures[min(index, WEEKS - 1)]["refunded"] += total
    weeks = tuple(
        WeekFigures(start + i * WEEK, f["grant"], max(f["spend"] - f["refunded"], 0), f["expire"])
        for i, f in figures.items()
    )
    pending_orders, pending_value = tx.reports.pending_orders(guild_id)
    return Report(
        guild_id,
        outstanding.get("promo", 0),
        outstanding.get("gift", 0),
        tx.reports.expiring_within(guild_id, now, 7 * 86400),
        tx.reports.expiring_within(guild_id, now, 30 * 86400),
        weeks,
        tuple(tx.reports.redemptions_per_code(guild_id)),
        tx.reports.redeemed_cards(guild_id),
        pending_orders,
        pending_value,
    )


def audit_page(tx: Tx, guild_id: int, page: int, per_page: int) -> Page[dict[str, Any]]:
    total = tx.audit.count(guild_id)
    page_no = clamp_page(page, total, per_page)
    return Page(
        tuple(tx.audit.page(guild_id, (page_no - 1) * per_page, per_page)), page_no, page_count(total, per_page), total
    )


def entries_after(tx: Tx, guild_id: int, after_id: int, limit: int) -> list[Entry]:
    return tx.entries.after(guild_id, after_id, limit)


def operations_of_interaction(tx: Tx, interaction_id: int) -> list[str]:
    return tx.idempotency.operations_of_interaction(interaction_id)


class ReportService(Service):
    async def report(self, guild_id: int) -> Report:
        return await self.store.read(report, guild_id, self.now())

    async def audit_log(self, guild_id: int, page: int = 1, per_page: int = 10) -> Page[dict[str, Any]]:
        return await self.store.read(audit_page, guild_id, page, per_page)

    async def verify(self) -> list[str]:
        return await self.store.verify(self.now())

    async def committed_for_interaction(self, interaction_id: int) -> list[str]:
        """What an interaction's writes committed (operation names), for telling the truth about
        a write whose answer failed."""
        return await self.store.read(operations_of_interaction, interaction_id)

    async def export_csv(self, guild_id: int, out: TextIO, batch: int = EXPORT_BATCH) -> int:
        """Write the guild's whole ledger as CSV, reading it in batches; returns the row count."""
        rows = 0
        after = 0
        header = True
        while True:
            entries = await self.store.read(entries_after, guild_id, after, batch)
            rows += write_csv(entries, out, header=header)
            header = False
            if len(entries) < batch:
                return rows
            after = entries[-1].id
