"""A server's settings and a member's reminder preferences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.app.reminders import reschedule_reminders
from bot.app.service import Service, bounded_text
from bot.domain import limits
from bot.domain.errors import InvalidInput
from bot.domain.models import AuditRecord, GuildSettings
from bot.domain.money import validate_currency
from bot.domain.recurrence import next_run
from bot.domain.timeparse import parse_lead_times, validate_timezone
from bot.store.ports import Tx


def update_settings(tx: Tx, guild_id: int, changes: Mapping[str, Any], audit: AuditRecord, now: int) -> GuildSettings:
    before = tx.settings.get(guild_id)
    if changes.get("decimals", before.decimals) != before.decimals and tx.settings.has_amounts(guild_id):
        # Amounts are stored in minor units; a new scale would silently rescale them all.
        raise InvalidInput(
            "decimals_frozen",
            "Decimals can only change before any credit, item, code, gift card or recurring grant exists "
            "in this server.",
        )
    tx.settings.update(guild_id, changes)
    after = tx.settings.get(guild_id)
    if after.reminder_leads != before.reminder_leads:
        reschedule_reminders(tx, guild_id, after.reminder_leads, now)
    if after.timezone != before.timezone:  # recurring rules are read in the guild's timezone
        tx.schedules.set_next_runs(
            (next_run(schedule.rule, after.timezone, now), schedule.id) for schedule in tx.schedules.active(guild_id)
        )
    tx.audit.add(guild_id, audit, now)
    return after


def set_reminders_enabled(tx: Tx, guild_id: int, user_id: int, enabled: bool, now: int) -> None:
    tx.accounts.ensure(guild_id, (user_id,), now)
    tx.accounts.set_reminders_enabled(guild_id, user_id, enabled)
    if enabled:  # turning reminders on is also the member saying "try my DMs again" after a 50007
        tx.accounts.set_dm_closed(guild_id, user_id, None)


def reminders_enabled(tx: Tx, guild_id: int, user_id: int) -> bool:
    prefs = tx.accounts.reminder_prefs(guild_id, user_id)
    return True if prefs is None else prefs[0]


def mark_dm_closed(tx: Tx, guild_id: int, user_id: int, now: int) -> None:
    tx.accounts.ensure(guild_id, (user_id,), now)
    tx.accounts.set_dm_closed(guild_id, user_id, now)


class SettingsService(Service):
    async def update_settings(self, guild_id: int, *, actor_id: int, key: str | None, **changes: Any) -> GuildSettings:
        """Change any of: currency_name, currency_symbol, decimals, timezone, reminder_leads (text like
        "7d,1d"), mod_role_id, audit_channel_id, fulfilment_channel_id. Only the given (not None)
        values change."""
        values = {k: v for k, v in changes.items() if v is not None}
        if {"currency_name", "currency_symbol", "decimals"} & set(values):
            name, symbol, _ = validate_currency(
                values.get("currency_name"), values.get("currency_symbol"), values.get("decimals")
            )
            if name is not None:
                values["currency_name"] = name
            if symbol is not None:
                values["currency_symbol"] = symbol
        if "timezone" in values:
            values["timezone"] = validate_timezone(values["timezone"])
        if "reminder_leads" in values and isinstance(values["reminder_leads"], str):
            values["reminder_leads"] = parse_lead_times(values["reminder_leads"])
        if not values:
            raise InvalidInput("nothing_to_change", "Nothing to change: give at least one option.")
        audit = AuditRecord(actor_id, "settings", {k: str(v) for k, v in values.items()})
        return await self._change_settings(guild_id, values, audit, key)

    async def _change_settings(
        self, guild_id: int, values: Mapping[str, Any], audit: AuditRecord, key: str | None
    ) -> GuildSettings:
        now = self.now()
        applied = await self.unit(
            "settings", GuildSettings.from_dict, key, guild_id, now, update_settings, guild_id, values, audit, now
        )
        return applied.value

    async def set_category_excluded(
        self, guild_id: int, category: str, excluded: bool, *, actor_id: int, key: str | None
    ) -> GuildSettings:
        name = bounded_text(category, "category", limits.CATEGORY)
        if not name:
            raise InvalidInput("no_category", "Name a category.")
        current = (await self.settings(guild_id)).promo_excluded_categories
        kept = [c for c in current if c.casefold() != name.casefold()]
        if excluded:
            if len(kept) >= limits.EXCLUDED_CATEGORIES:
                raise InvalidInput(
                    "too_many_excluded",
                    "At most {limit} categories can be excluded; include one again first.",
                    limit=limits.EXCLUDED_CATEGORIES,
                )
            kept.append(name)
        audit = AuditRecord(actor_id, "exclude-category" if excluded else "include-category", {"category": name})
        return await self._change_settings(guild_id, {"promo_excluded_categories": tuple(kept)}, audit, key)

    async def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool) -> None:
        await self.store.write(set_reminders_enabled, guild_id, user_id, enabled, self.now())

    async def reminders_enabled(self, guild_id: int, user_id: int) -> bool:
        return await self.store.read(reminders_enabled, guild_id, user_id)

    async def mark_dm_closed(self, guild_id: int, user_id: int) -> None:
        await self.store.write(mark_dm_closed, guild_id, user_id, self.now())
