"""Expiry reminders: which lead window is open, when the next falls due, and stale claims."""

from __future__ import annotations

from collections.abc import Sequence


def pending_claim(claimed_by: str | None, run_id: str, claimed_at: int, now: int, resend_window: int) -> str:
    """What a reminder claim still 'pending' (claimed, never settled) is, seen by run `run_id`.

    'wait': this run claimed it, so its send is this run's own (in progress, or its outcome failed
    to be recorded): it is never sent again by this run. 'resend': an earlier run claimed it and
    died while sending (one bot process per database, so that run is over), recently enough that
    the same nonce makes Discord drop a second copy. 'unknown': too late for the nonce to protect a
    resend, or this run's own claim that long ago: give it up rather than risk a double DM.
    """
    if now - claimed_at > resend_window:
        return "unknown"
    return "wait" if claimed_by == run_id else "resend"


def reminder_lead_due(expires_at: int, leads: Sequence[int], now: int) -> int | None:
    """The most urgent lead window `now` is in (smallest lead >= time left), if any."""
    left = expires_at - now
    if left <= 0:
        return None
    return min((lead for lead in leads if lead >= left), default=None)


def next_reminder_at(
    expires_at: int | None, leads: Sequence[int], now: int, after_lead: int | None = None
) -> int | None:
    """When the lot's next reminder falls due: the next lead window to open (or now if one is open).

    `after_lead` is the lead just reminded: only shorter leads remain. None = no reminder left.
    """
    if expires_at is None or expires_at <= now:
        return None
    remaining = [lead for lead in leads if after_lead is None or lead < after_lead]
    if not remaining:
        return None
    open_now = reminder_lead_due(expires_at, remaining, now)
    if open_now is not None:
        return now
    return expires_at - max(remaining)
