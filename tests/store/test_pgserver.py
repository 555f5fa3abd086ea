"""The tests' PostgreSQL server: each test that asks gets its own empty database."""

from __future__ import annotations

import psycopg


def test_each_test_gets_an_empty_database_of_its_own(pg_url):
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE mine (x int)")
        (name,) = conn.execute("SELECT current_database()").fetchone()
    assert name.startswith("promo_test_")
