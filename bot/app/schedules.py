"""Recurring grants: a role's members get credit on a cron rule read in the server's timezone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.app.credits import categories_input, insert_lots
from bot.app.service import Service, bounded_int, lot_kind
from bot.domain.errors import NotFound
from bot.domain.models import AuditRecord, GrantResult, LotSpec, Schedule
from bot.domain.recurrence import next_run
from bot.store.ports import Tx


def add_schedule(tx: Tx, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, now: int) -> Schedule:
    schedule_id = tx.schedules.insert(guild_id, fields, audit.actor_id, now)
    tx.audit.add(guild_id, audit, now)
    schedule = tx.schedules.by_id(guild_id, schedule_id)
    assert schedule is not None
    return schedule


def remove_schedule(tx: Tx, guild_id: int, schedule_id: int, audit: AuditRecord, now: int) -> Schedule:
    schedule = tx.schedules.by_id(guild_id, schedule_id)
    if schedule is None or not schedule.active:
        raise NotFound(
            "no_such_schedule", "There is no recurring grant #{schedule} in this server.", schedule=schedule_id
        )
    tx.schedules.deactivate(schedule_id)
    tx.audit.add(guild_id, audit, now)
    return Schedule(**{**schedule.to_dict(), "active": False})


def run_schedule(tx: Tx, schedule: Schedule, user_ids: Sequence[int], next_run_at: int, now: int) -> GrantResult | None:
    """Grant one due run and move the schedule to its next due time, in one transaction.

    Runs only if the schedule is still due at the time the caller saw: a second caller (or a
    restart racing the first) finds it moved on and grants nothing. None = nothing granted.
    """
    assert schedule.next_run_at is not None
    if not tx.schedules.advance(schedule.id, schedule.next_run_at, next_run_at) or not user_ids:
        return None
    spec = LotSpec(
        amount=schedule.amount,
        kind=schedule.kind,
        expires_at=now + schedule.valid_days * 86400 if schedule.valid_days else None,
        categories=schedule.categories,
        source="grant",
        source_ref=f"schedule:{schedule.id}",
        memo=f"recurring grant #{schedule.id}",
    )
    first = insert_lots(
        tx, schedule.guild_id, user_ids, spec, None, f"schedule:{schedule.id}:{schedule.next_run_at}", now
    )
    return GrantResult(first, len(user_ids), spec.amount, spec.kind, now, spec.expires_at)


def active_schedules(tx: Tx, guild_id: int) -> list[Schedule]:
    return tx.schedules.active(guild_id)


def due_schedules(tx: Tx, now: int) -> list[Schedule]:
    return tx.schedules.due(now)


class ScheduleService(Service):
    async def add_schedule(
        self,
        guild_id: int,
        role_id: int,
        amount: str | int,
        rule: str,
        *,
        actor_id: int,
        key: str | None,
        valid_days: int | None = None,
        categories: str | Sequence[str] | None = None,
        kind: str = "promo",
    ) -> Schedule:
        settings = await self.settings(guild_id)
        fields = {
            "role_id": role_id,
            "amount": await self.amount(guild_id, amount, settings),
            "rule": " ".join(rule.split()),
            "valid_days": bounded_int(valid_days, "validity in days", 1, 36500),
            "categories": categories_input(categories),
            "kind": lot_kind(kind),
            "next_run_at": next_run(rule, settings.timezone, self.now()),
        }
        audit = AuditRecord(actor_id, "schedule-add", {k: v for k, v in fields.items() if k != "categories"})
        now = self.now()
        applied = await self.unit(
            "add_schedule", Schedule.from_dict, key, guild_id, now, add_schedule, guild_id, fields, audit, now
        )
        return applied.value

    async def schedules(self, guild_id: int) -> list[Schedule]:
        return await self.store.read(active_schedules, guild_id)

    async def remove_schedule(self, guild_id: int, schedule_id: int, *, actor_id: int, key: str | None) -> Schedule:
        audit = AuditRecord(actor_id, "schedule-remove", {"schedule_id": schedule_id})
        now = self.now()
        applied = await self.unit(
            "remove_schedule",
            Schedule.from_dict,
            key,
            guild_id,
            now,
            remove_schedule,
            guild_id,
            schedule_id,
            audit,
            now,
        )
        return applied.value

    async def due_schedules(self) -> list[Schedule]:
        return await self.store.read(due_schedules, self.now())

    async def run_schedule(self, schedule: Schedule, user_ids: Iterable[int]) -> GrantResult | None:
        """Grant a due run to the role's members; a run missed during downtime runs once, now.

        The next due time is computed from now, so a week of downtime gives one run, not seven."""
        settings = await self.settings(schedule.guild_id)
        now = self.now()
        members = list(dict.fromkeys(user_ids))
        result = await self.store.write(
            run_schedule, schedule, members, next_run(schedule.rule, settings.timezone, now), now
        )
        if result is not None:
            self.emit_granted(schedule.guild_id, members, result, None, schedule_id=schedule.id)
        return result
