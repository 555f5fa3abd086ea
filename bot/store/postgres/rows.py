"""The repositories whose SQL means something else on PostgreSQL, and `PgTx`, the shared ones
(bot/store/sql/) with these in their place.

Only lot ids differ. SQLite's `LotRows.next_id` takes MAX(id) + 1 and the grant then inserts
consecutive ids from it, which is right there because one writer holds the database. On PostgreSQL
concurrent transactions (of this process and of others) would read the same MAX(id); so the ids
come from the sequence `lots_id_seq`, under a transaction-level advisory lock that one grant holds
from `next_id` to its commit: `nextval` gives the first id, `setval` (`AFTER_INSERT`) moves the
sequence past the last one the grant used. (A sequence is not transactional: a grant that rolls
back leaves a gap, never a reused id. A sequence read takes no SERIALIZABLE predicate lock, unlike
MAX(id), so two grants do not conflict over it.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.store.sql.credit_rows import LotRows
from bot.store.sql.tx import SqlTx

if TYPE_CHECKING:
    from bot.store.ports import Tx
    from bot.store.postgres.connection import PgConnection

#: pg_advisory_xact_lock key of lot id allocation ("lots" in ASCII).
LOT_IDS_LOCK = 0x6C6F7473


class PgLotRows(LotRows):
    __slots__ = ()
    AFTER_INSERT = "SELECT setval('lots_id_seq', GREATEST(?, (SELECT last_value FROM lots_id_seq)))"

    def next_id(self) -> int:
        self.conn.execute("SELECT pg_advisory_xact_lock(?)", (LOT_IDS_LOCK,))
        (first,) = self.conn.execute("SELECT nextval('lots_id_seq')").fetchone()
        return int(first)


class PgTx(SqlTx):
    __slots__ = ()

    def __init__(self, conn: PgConnection) -> None:
        super().__init__(conn)
        self.lots = PgLotRows(conn)


if TYPE_CHECKING:
    _checked: type[Tx] = PgTx  # mypy: PgTx provides every repository the interface names
