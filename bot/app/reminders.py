"""Expiry reminders: which are due, claiming one before its DM is sent, and recording how it ended.

Each lot keeps `next_reminder_at`, when its next lead window opens (bot/domain/reminders.py); the
reminder job (bot/app/reminder_dispatch.py) finds the due ones, claims each, sends the DM and
settles it here.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.app.service import Service
from bot.domain.models import DueReminder, Lot, ReminderClaim
from bot.domain.reminders import next_reminder_at, pending_claim, reminder_lead_due
from bot.store.ports import Tx


def advance_reminder(tx: Tx, lot_id: int, leads: Sequence[int], now: int) -> None:
    """Move a lot on to its next lead window, after the ones already reminded."""
    tx.lots.set_next_reminder(
        lot_id, next_reminder_at(tx.lots.expiry(lot_id), leads, now, tx.reminders.smallest_settled_lead(lot_id))
    )


def settle_lot_reminder(
    tx: Tx, lot_id: int, lead_seconds: int, status: str, leads: Sequence[int], now: int, retry_at: int | None = None
) -> None:
    """Record a reminder's outcome. 'retry' makes it due again at `retry_at`; any other outcome
    is final and moves the lot on to its next lead window."""
    tx.reminders.record(lot_id, lead_seconds, status, now)
    if status == "retry":
        tx.lots.set_next_reminder(lot_id, retry_at)
    else:
        advance_reminder(tx, lot_id, leads, now)


def reschedule_reminders(tx: Tx, guild_id: int, leads: tuple[int, ...], now: int) -> None:
    """New lead times: every expiring lot's next reminder again, after the leads already reminded."""
    tx.lots.set_next_reminders(
        (next_reminder_at(expires, leads, now, after), lot_id)
        for lot_id, expires, after in tx.lots.active_expiring(guild_id)
    )


def due_reminders(tx: Tx, now: int, limit: int) -> list[DueReminder]:
    """The due reminders, one per member and lead window. Opt-outs and closed DMs are looked at
    when each is claimed, so this stays one index range scan."""
    leads_by_guild: dict[int, tuple[int, ...]] = {}
    groups: dict[tuple[int, int, int], list[int]] = {}
    for guild_id, user_id, lot_id, expires_at in tx.lots.due_for_reminder(now, limit):
        leads = leads_by_guild.get(guild_id)
        if leads is None:
            leads = leads_by_guild[guild_id] = tx.settings.get(guild_id).reminder_leads
        lead = reminder_lead_due(expires_at or 0, leads, now)
        if lead is not None:  # None: expired (the sweep takes it) or no window open
            groups.setdefault((guild_id, user_id, lead), []).append(lot_id)
    return [DueReminder(g, u, lead, tuple(ids)) for (g, u, lead), ids in groups.items()]


def claim_reminder(tx: Tx, due: DueReminder, nonce: str, resend_window: int, now: int, run_id: str) -> ReminderClaim:
    """Claim a due reminder for run `run_id` before sending it, so it is sent at most once.

    `due` was read at the start of a batch that pacing spreads over minutes: each lot is read again
    here, so credit spent, voided, expired or extended since, or a member who opted out since, is
    not DMed from that stale read (skipped lots are left to the next tick). Lots whose earlier claim
    is still 'pending' are judged by `pending_claim`: this run's own claim is left alone; an earlier
    run's (it died while sending) is resent with the same nonce within `resend_window` (Discord
    drops a repeated nonce); past that window a claim is settled 'unknown' and never resent: a lost
    reminder is the rarer failure we accept, a doubled one is not."""
    leads = tx.settings.get(due.guild_id).reminder_leads
    send: list[int] = []
    settled: list[int] = []
    reuse: str | None = None
    attempts = 0
    prefs = tx.accounts.reminder_prefs(due.guild_id, due.user_id)
    enabled, closed_at = prefs if prefs is not None else (True, None)
    skipped = "dm_closed" if closed_at is not None else None if enabled else "opted_out"
    fresh: dict[int, Lot] = {}
    for lot_id in due.lot_ids:
        lot = tx.lots.still_due_for_reminder(lot_id, now)
        if lot is None:
            continue
        fresh[lot_id] = lot
        if skipped is not None:  # no DM: record why, and move on to the next window
            settle_lot_reminder(tx, lot_id, due.lead_seconds, skipped, leads, now)
            continue
        state = tx.reminders.state(lot_id, due.lead_seconds)
        if state is not None and state[0] not in ("pending", "retry"):
            advance_reminder(tx, lot_id, leads, now)  # settled already: just move on
            continue
        if state is not None and state[0] == "pending":
            verdict = pending_claim(state[4], run_id, state[3], now, resend_window)
            if verdict == "wait":  # this run's own send: never a second time
                continue
            if verdict == "unknown":
                tx.reminders.record(lot_id, due.lead_seconds, "unknown", now)
                advance_reminder(tx, lot_id, leads, now)
                settled.append(lot_id)
                continue
            reuse = reuse or state[2]
        attempts = max(attempts, (state[1] if state else 0) + 1)
        send.append(lot_id)
    chosen = reuse or nonce
    tx.reminders.claim(send, due.lead_seconds, chosen, now, run_id)
    return ReminderClaim(tuple(fresh[lot_id] for lot_id in send), chosen, attempts, tuple(settled), skipped)


def settle_reminder(
    tx: Tx, lot_ids: Sequence[int], lead_seconds: int, status: str, now: int, retry_at: int | None
) -> None:
    if not lot_ids:
        return
    first = tx.lots.guild_of(lot_ids[0])
    leads = tx.settings.get(first).reminder_leads
    for lot_id in lot_ids:
        settle_lot_reminder(tx, lot_id, lead_seconds, status, leads, now, retry_at)


class ReminderService(Service):
    async def due_reminders(self, limit: int = 10_000) -> list[DueReminder]:
        return await self.store.read(due_reminders, self.now(), limit)

    async def claim_reminder(self, due: DueReminder, nonce: str, resend_window: int, *, run_id: str) -> ReminderClaim:
        """Claim `due` for the run `run_id` (one start of the bot): see `claim_reminder` above."""
        return await self.store.write(claim_reminder, due, nonce, resend_window, self.now(), run_id)

    async def settle_reminder(
        self, lot_ids: Sequence[int], lead_seconds: int, status: str, retry_at: int | None = None
    ) -> None:
        """Record how a claimed reminder ended; 'retry' makes it due again at `retry_at`."""
        await self.store.write(settle_reminder, lot_ids, lead_seconds, status, self.now(), retry_at)
