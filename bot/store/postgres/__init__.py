"""The PostgreSQL store (DATABASE_URL): the engine (psycopg 3, a pool, SERIALIZABLE with retry),
its own migrations, and the shared repositories (bot/store/sql/) with the few it overrides."""

from bot.store.postgres.engine import PostgresStore

__all__ = ["PostgresStore"]
