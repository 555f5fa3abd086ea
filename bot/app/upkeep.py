"""Time-driven housekeeping: the expiry sweep, forgetting old idempotency keys, and the bot's
small state values."""

from __future__ import annotations

from bot.app.credits import expire_batch
from bot.app.service import Service
from bot.domain.models import ExpiredLot
from bot.store.ports import Tx

SWEEP_BATCH = 10_000
#: `verify` trusts that no active lot expired before last_sweep_at. Recording it costs an fsync,
#: so an idle sweep records it only this often: the check stays true, and a sweep with nothing due
#: stays a sub-millisecond read.
SWEEP_RECORD_INTERVAL = 300
#: Discord lets an interaction be answered for 15 minutes, so a month-old key can never come back.
KEEP_KEYS_SECONDS = 30 * 86400
PRUNE_BATCH = 10_000


def get_state(tx: Tx, key: str) -> str | None:
    return tx.state.get(key)


def set_state(tx: Tx, key: str, value: str) -> None:
    tx.state.set(key, value)


def prune_keys(tx: Tx, before: int, batch: int) -> int:
    return tx.idempotency.prune(before, batch)


class UpkeepService(Service):
    _last_sweep_recorded = 0

    async def sweep_expired(self, batch: int = SWEEP_BATCH) -> list[ExpiredLot]:
        """Expire every active lot past its expiry, `batch` lots per transaction."""
        now = self.now()
        expired: list[ExpiredLot] = []
        while True:
            chunk = await self.store.write(expire_batch, now, batch)
            expired.extend(chunk)
            if len(chunk) < batch:
                break
        if expired or now - self._last_sweep_recorded >= SWEEP_RECORD_INTERVAL:
            await self.set_state("last_sweep_at", str(now))
            self._last_sweep_recorded = now
        for lot in expired:
            self.emit("credit_expired", lot.to_dict())
        return expired

    async def prune_idempotency(self, batch: int = PRUNE_BATCH) -> int:
        """Forget idempotency keys older than KEEP_KEYS_SECONDS, `batch` per transaction."""
        before = self.now() - KEEP_KEYS_SECONDS
        pruned = 0
        while True:
            count = await self.store.write(prune_keys, before, batch)
            pruned += count
            if count < batch:
                return pruned

    async def get_state(self, key: str) -> str | None:
        return await self.store.read(get_state, key)

    async def set_state(self, key: str, value: str) -> None:
        await self.store.write(set_state, key, value)
