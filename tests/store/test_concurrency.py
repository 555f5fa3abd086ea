"""Many coroutines on ONE ledger and store, like a busy bot (STYLE.md point 7).

aiosqlite runs each call separately on its connection's worker thread, so a store that issued
one statement per call would let coroutines interleave inside each other's transactions. These
tests fire hundreds of writes at once with `asyncio.gather` and check that every unit of work
stayed one transaction: nothing lost, nothing doubled, no use count exceeded, `verify()` clean.

The last tests open a second store on the same file (as `python -m bot verify` does while the
bot runs), in this process and in another one, and interleave writes from both.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from bot.app.ledger import Ledger
from bot.domain.errors import Conflict, InsufficientBalance
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.conftest import ALICE, GUILD, MOD, OTHER_GUILD, START, Clock, Keys

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = range(100_000, 100_100)  # 100 distinct members


def outcomes(results: list[object]) -> Counter[str]:
    """Count results by type name; anything unexpected shows up in the assertion diff."""
    return Counter(type(r).__name__ for r in results)


def unexpected(results: list[object], *allowed: type[BaseException]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


async def add_item(ledger: Ledger, key: Keys, price: int, name: str = "Sticker", **kw: object):
    return await ledger.add_item(GUILD, name, price, "merch", actor_id=MOD, key=key(), **kw)


# -- checkout --------------------------------------------------------------------------------------


async def test_200_concurrent_checkouts_spend_exactly_what_the_member_has(ledger, key, events):
    await ledger.grant(GUILD, ALICE, 500, actor_id=MOD, key=key(), kind="gift")
    item = await add_item(ledger, key, 10)

    results = await asyncio.gather(
        *(ledger.checkout(GUILD, ALICE, item.id, key=f"buy-{i}") for i in range(200)),
        return_exceptions=True,
    )

    assert unexpected(results, InsufficientBalance) == []
    assert outcomes(results) == {"Order": 50, "InsufficientBalance": 150}
    orders = [r for r in results if not isinstance(r, BaseException)]
    assert len({o.id for o in orders}) == 50
    assert all(o.total == 10 and o.gift_applied == 10 for o in orders)
    assert (await ledger.orders(GUILD, ALICE)).total == 50
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    assert sum(1 for name, _ in events if name == "credit_spent") == 50
    assert await ledger.verify() == []


async def test_concurrent_checkouts_never_oversell_stock(ledger, key):
    item = await add_item(ledger, key, 10, stock=5)
    buyers = list(MEMBERS[:30])
    await ledger.grant_many(GUILD, buyers, 100, actor_id=MOD, key=key(), kind="gift")

    results = await asyncio.gather(
        *(ledger.checkout(GUILD, m, item.id, key=f"buy-{m}") for m in buyers), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results)["Order"] == 5
    refreshed = await ledger.item(GUILD, item.id)
    assert refreshed is not None
    assert refreshed.stock == 0
    assert (await ledger.orders(GUILD, None)).total == 5
    assert await ledger.verify() == []


async def test_per_member_limit_holds_under_concurrency(ledger, key):
    item = await add_item(ledger, key, 1, limit=3)
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), kind="gift")

    results = await asyncio.gather(
        *(ledger.checkout(GUILD, ALICE, item.id, key=f"buy-{i}") for i in range(40)), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results)["Order"] == 3
    assert (await ledger.balance(GUILD, ALICE)).total == 97
    assert await ledger.verify() == []


async def test_same_idempotency_key_20_times_at_once_buys_once(ledger, key, events):
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key())
    item = await add_item(ledger, key, 7)

    results = await asyncio.gather(
        *(ledger.checkout(GUILD, ALICE, item.id, key="interaction-42") for _ in range(20)),
        return_exceptions=True,
    )

    assert unexpected(results) == []
    assert {r.id for r in results} == {results[0].id}  # type: ignore[union-attr]
    assert len(set(results)) == 1  # the very same order, decoded from the first result
    assert (await ledger.orders(GUILD, ALICE)).total == 1
    assert (await ledger.balance(GUILD, ALICE)).total == 93
    assert [name for name, _ in events].count("credit_spent") == 1
    assert await ledger.verify() == []


async def test_one_key_raced_by_two_different_actions_applies_one_of_them(ledger, key):
    item = await add_item(ledger, key, 5)
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), kind="gift")

    results = await asyncio.gather(
        ledger.checkout(GUILD, ALICE, item.id, key="interaction-7"),
        ledger.grant(GUILD, ALICE, 1000, actor_id=MOD, key="interaction-7"),
        return_exceptions=True,
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results) == {"Order": 1, "Conflict": 1}  # the checkout reached the thread first
    assert "another action" in str(results[1])
    assert (await ledger.balance(GUILD, ALICE)).total == 45
    assert await ledger.verify() == []


# -- fulfilment (issue 10) -------------------------------------------------------------------------

MODS = (9, 10, 14, 15)


async def test_moderators_fulfilling_and_denying_at_once_act_once_and_the_others_are_told_who(ledger, key):
    """Every pending order is clicked by four moderators at once, two Fulfil and two Deny: one click
    wins per order, the others get the Conflict naming the winner, and the money moves once."""
    await ledger.grant(GUILD, ALICE, 1000, actor_id=MOD, key=key(), kind="gift")
    item = await add_item(ledger, key, 10, delivery="staff")
    orders = [await ledger.checkout(GUILD, ALICE, item.id, key=key()) for _ in range(20)]

    clicks = []
    for order in orders:
        clicks += [
            ledger.fulfil(GUILD, order.id, actor_id=MODS[0], key=f"f0-{order.id}"),
            ledger.deny(GUILD, order.id, "no", actor_id=MODS[1], key=f"d1-{order.id}"),
            ledger.fulfil(GUILD, order.id, actor_id=MODS[2], key=f"f2-{order.id}"),
            ledger.deny(GUILD, order.id, "no", actor_id=MODS[3], key=f"d3-{order.id}"),
            ledger.cancel(GUILD, ALICE, order.id, key=f"c-{order.id}"),  # and the member cancels
        ]
    results = await asyncio.gather(*clicks, return_exceptions=True)

    assert unexpected(results, Conflict) == []
    by_order = [results[i : i + 5] for i in range(0, len(results), 5)]
    denied = 0
    for order, clicked in zip(orders, by_order, strict=True):
        won = [r for r in clicked if not isinstance(r, BaseException)]
        assert len(won) == 1, clicked
        final = await ledger.order(GUILD, order.id)
        assert final is not None
        assert final.status in ("fulfilled", "refunded", "cancelled")
        for lost in clicked:
            if isinstance(lost, Conflict):
                assert lost.params["order"] == order.id
                assert (lost.params["acted_by"], lost.params["acted_at"]) == (final.acted_by, final.acted_at)
        denied += final.status != "fulfilled"
    assert (await ledger.balance(GUILD, ALICE)).total == 1000 - 10 * (len(orders) - denied)
    assert (await ledger.pending_orders(GUILD)).total == 0
    assert await ledger.verify() == []


async def test_100_buyers_race_for_the_last_10_codes(ledger, key):
    """Exactly ten orders, ten different codes, no code sold twice, and every loser keeps their credit."""
    codes = [f"KEY-{n:04d}" for n in range(15)]
    item = await add_item(ledger, key, 7, name="Game key", delivery="code")
    await ledger.upload_codes(GUILD, item.id, "\n".join(codes), actor_id=MOD, key=key())
    early = list(MEMBERS[:5])
    buyers = list(MEMBERS[5:])
    await ledger.grant_many(GUILD, early + buyers, 20, actor_id=MOD, key=key(), kind="gift")
    first = [await ledger.checkout(GUILD, m, item.id, key=f"early-{m}") for m in early]  # five codes go first

    results = await asyncio.gather(
        *(ledger.checkout(GUILD, m, item.id, key=f"buy-{m}") for m in buyers), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    won = {m: r for m, r in zip(buyers, results, strict=True) if not isinstance(r, BaseException)}
    assert len(won) == 10
    assert all(isinstance(r, Conflict) and r.code == "item_sold_out" for r in results if r not in won.values())
    got = [await ledger.order_code(GUILD, m, order.id) for m, order in won.items()]
    early_codes = [await ledger.order_code(GUILD, m, order.id) for m, order in zip(early, first, strict=True)]
    assert early_codes == codes[:5]  # in upload order
    assert sorted(got) == codes[5:]
    assert len(set(got)) == 10
    for member in buyers:
        expected = 13 if member in won else 20  # a loser loses nothing
        assert (await ledger.balance(GUILD, member)).total == expected
    refreshed = await ledger.item(GUILD, item.id)
    assert refreshed is not None
    assert refreshed.stock == 0
    assert await ledger.code_counts(GUILD, item.id) == (0, 15)
    assert await ledger.verify() == []


async def test_overlapping_uploads_at_once_add_each_code_once(ledger, key):
    item = await add_item(ledger, key, 7, name="Game key", delivery="code")
    files = ["\n".join(f"K{n}" for n in range(start, start + 50)) for start in range(0, 200, 25)]
    results = await asyncio.gather(
        *(ledger.upload_codes(GUILD, item.id, text, actor_id=MOD, key=f"up-{i}") for i, text in enumerate(files))
    )
    assert sum(r.added for r in results) == 225
    assert sum(r.duplicates for r in results) == 400 - 225
    assert sorted(r.stock for r in results)[-1] == 225
    refreshed = await ledger.item(GUILD, item.id)
    assert refreshed is not None
    assert refreshed.stock == 225
    assert await ledger.verify() == []


# -- codes -----------------------------------------------------------------------------------------


async def test_100_members_race_for_a_promo_code_with_10_uses(ledger, key):
    await ledger.create_promo(GUILD, "LAUNCH-10", 25, actor_id=MOD, key=key(), uses=10)

    results = await asyncio.gather(
        *(ledger.redeem(GUILD, m, "launch10", key=f"redeem-{m}") for m in MEMBERS), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results) == {"Redemption": 10, "Conflict": 90}
    assert all("used up" in str(r) for r in results if isinstance(r, Conflict))
    winners = {r.lot.user_id for r in results if not isinstance(r, BaseException)}  # type: ignore[union-attr]
    assert len(winners) == 10
    lots_per_member = [len(await ledger.lots(GUILD, m)) for m in MEMBERS]
    assert sum(lots_per_member) == 10
    (promo,) = await ledger.promos(GUILD)
    assert promo.uses == 10
    assert (await ledger.report(GUILD)).redemptions_per_code == (("LAUNCH-10", 10),)
    assert await ledger.verify() == []


async def test_one_member_spamming_a_once_per_member_code_gets_it_once(ledger, key):
    await ledger.create_promo(GUILD, "WELCOME", 50, actor_id=MOD, key=key())

    results = await asyncio.gather(
        *(ledger.redeem(GUILD, ALICE, "welcome", key=f"redeem-{i}") for i in range(20)), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results) == {"Redemption": 1, "Conflict": 19}
    assert (await ledger.balance(GUILD, ALICE)).promo == 50
    (promo,) = await ledger.promos(GUILD)
    assert promo.uses == 1
    assert await ledger.verify() == []


async def test_50_members_race_for_one_gift_card(ledger, key):
    issued = await ledger.issue_gift_cards(GUILD, 300, actor_id=MOD, key=key())
    (code,) = issued.codes
    racers = MEMBERS[:50]

    results = await asyncio.gather(
        *(ledger.redeem(GUILD, m, code, key=f"redeem-{m}") for m in racers), return_exceptions=True
    )

    assert unexpected(results, Conflict) == []
    assert outcomes(results) == {"Redemption": 1, "Conflict": 49}
    (winner,) = [r for r in results if not isinstance(r, BaseException)]
    lots = [lot for m in racers for lot in await ledger.lots(GUILD, m)]
    assert [(lot.user_id, lot.kind, lot.original) for lot in lots] == [(winner.lot.user_id, "gift", 300)]
    (card,) = await ledger.gift_cards(GUILD)
    assert card.status == "redeemed"
    assert card.redeemed_by == winner.lot.user_id
    assert (await ledger.report(GUILD)).gift_cards_redeemed == 1
    assert await ledger.verify() == []


# -- a mixed workload ------------------------------------------------------------------------------


async def test_mixed_grants_spends_and_refunds_add_up(ledger, key):
    members = list(MEMBERS[:10])
    price = 7
    await ledger.grant_many(GUILD, members, 100, actor_id=MOD, key=key(), kind="gift")
    item = await add_item(ledger, key, price)
    # One order per member to refund while everything else runs.
    earlier = [await ledger.checkout(GUILD, m, item.id, key=key()) for m in members]

    grants = [
        ledger.grant(GUILD, members[i % 10], 13, actor_id=MOD, key=f"grant-{i}", expires="30d") for i in range(20)
    ]
    spends = [ledger.checkout(GUILD, members[i % 10], item.id, key=f"spend-{i}") for i in range(20)]
    refunds = [ledger.refund(GUILD, o.id, actor_id=MOD, key=f"refund-{o.id}") for o in earlier]
    work = grants + spends + refunds
    order = list(range(len(work)))
    order = order[::3] + order[1::3] + order[2::3]  # interleave the three kinds

    results = await asyncio.gather(*(work[i] for i in order), return_exceptions=True)

    assert unexpected(results) == []
    assert len(results) == 50
    for m in members:
        # 100 granted, 2 × 13 more, 1 earlier order refunded, 2 new orders of 7 each.
        assert (await ledger.balance(GUILD, m)).total == 100 + 2 * 13 - price + price - 2 * price
    page = await ledger.orders(GUILD, None, per_page=100)
    assert Counter(o.status for o in page.items) == {"completed": 20, "refunded": 10}
    assert await ledger.verify() == []


async def test_guilds_stay_isolated_under_concurrency(ledger, key):
    results = await asyncio.gather(
        *(ledger.grant(g, ALICE, 5, actor_id=MOD, key=f"{g}-{i}") for i in range(30) for g in (GUILD, OTHER_GUILD)),
        return_exceptions=True,
    )
    assert unexpected(results) == []
    assert (await ledger.balance(GUILD, ALICE)).total == 150
    assert (await ledger.balance(OTHER_GUILD, ALICE)).total == 150


async def test_50_concurrent_grants_to_one_member_all_land(ledger, key):
    """The README's contrast: Red-DiscordBot's bank lost most deposits from 50 concurrent tasks
    (read balance, await, write balance). Here every grant is one transaction, so all 50 land."""
    amount = 37
    results = await asyncio.gather(
        *(ledger.grant(GUILD, ALICE, amount, actor_id=MOD, key=f"deposit-{i}") for i in range(50)),
        return_exceptions=True,
    )

    assert unexpected(results) == []
    assert (await ledger.balance(GUILD, ALICE)).total == 50 * amount
    assert len(await ledger.lots(GUILD, ALICE)) == 50
    assert len({r.first_lot_id for r in results}) == 50  # type: ignore[union-attr]
    assert await ledger.verify() == []


async def test_reads_during_writes_see_whole_transactions(ledger, key):
    """A balance read between grant_many calls sees each grant entirely or not at all."""
    members = list(MEMBERS[:40])

    async def grants() -> None:
        for i in range(10):
            await ledger.grant_many(GUILD, members, 1, actor_id=MOD, key=f"round-{i}")

    async def reads() -> list[int]:
        seen = []
        for _ in range(30):
            report = await ledger.report(GUILD)
            seen.append(report.outstanding_promo)
            await asyncio.sleep(0)
        return seen

    _, seen = await asyncio.gather(grants(), reads())
    assert all(total % len(members) == 0 for total in seen), seen
    assert (await ledger.report(GUILD)).outstanding_promo == 10 * len(members)


# -- a second connection on the same database -------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def two_stores(request: pytest.FixtureRequest, tmp_path: Path):
    """Two stores on one database: two connections to one SQLite file, or two pools on one
    PostgreSQL database (as two processes would have)."""
    if request.param == "sqlite":
        path = tmp_path / "shared.sqlite3"
        first, second = SqliteStore(path), SqliteStore(path)
    else:
        url = request.getfixturevalue("pg_url")
        first, second = PostgresStore(url), PostgresStore(url)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_two_connections_interleave_writes_without_losing_any(two_stores):
    bot_store, cli_store = two_stores
    clock = Clock()
    bot, cli = Ledger(bot_store, clock=clock), Ledger(cli_store, clock=clock)
    item = await bot.add_item(GUILD, "Badge", 3, "merch", actor_id=MOD, key="add")
    await cli.grant(GUILD, ALICE, 300, actor_id=MOD, key="seed", kind="gift")

    work = []
    for i in range(60):
        led = bot if i % 2 else cli
        work.append(led.grant(GUILD, MEMBERS[i % 7], 11, actor_id=MOD, key=f"g{i}"))
        work.append(led.checkout(GUILD, ALICE, item.id, key=f"c{i}"))
        work.append(led.verify())
    results = await asyncio.gather(*work, return_exceptions=True)

    assert unexpected(results) == []
    assert all(r == [] for r in results[2::3]), "verify() saw a half-written state"
    for led in (bot, cli):
        assert (await led.balance(GUILD, ALICE)).total == 300 - 60 * 3
        assert sum([(await led.balance(GUILD, m)).total for m in MEMBERS[:7]]) == 60 * 11
        assert (await led.orders(GUILD, ALICE)).total == 60
        assert await led.verify() == []


async def test_a_second_connection_waits_for_a_long_write_and_both_land(two_stores):
    """The second store waits while the first commits 20,000 lots (SQLite: BEGIN IMMEDIATE and its
    busy_timeout; PostgreSQL: the lot-id lock, or a retry after a serialization failure)."""
    bot_store, cli_store = two_stores
    bot, cli = Ledger(bot_store), Ledger(cli_store)
    members = range(1, 20_001)

    big = asyncio.create_task(bot.grant_many(GUILD, members, 2, actor_id=MOD, key="big"))
    await asyncio.sleep(0)  # let the big grant reach the worker thread first
    small = [cli.grant(GUILD, ALICE + 1_000_000, 5, actor_id=MOD, key=f"s{i}") for i in range(20)]
    results = await asyncio.gather(big, *small, return_exceptions=True)

    assert unexpected(results) == []
    report = await cli.report(GUILD)
    assert report.outstanding_promo == 20_000 * 2 + 20 * 5
    assert await cli.verify() == []


CHILD_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from bot.app.ledger import Ledger
    from bot.store.sqlite import SqliteStore

    async def main(path, user, n, now):
        store = SqliteStore(path)
        await store.open()
        # The parent's clock, not the wall clock: a grant written "now" by the child must be
        # started for the parent too, whatever today's date is.
        ledger = Ledger(store, clock=lambda: now)
        print("READY", flush=True)
        sys.stdin.readline()
        for i in range(n):
            await ledger.grant({guild}, user, 1, actor_id={mod}, key=f"child-{{i}}")
        await store.close()
        print("DONE", flush=True)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), datetime.fromisoformat(sys.argv[4])))
    """
).format(guild=GUILD, mod=MOD)


@pytest.mark.slow
async def test_another_process_writing_the_same_file_loses_nothing(tmp_path: Path):
    path = tmp_path / "shared.sqlite3"
    store = SqliteStore(path)
    await store.open()
    ledger = Ledger(store, clock=Clock(START))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    n = 300
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD_WRITER,
        str(path),
        "777",
        str(n),
        START.isoformat(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 20)).strip() == b"READY"
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        results = await asyncio.gather(
            *(ledger.grant(GUILD, ALICE, 1, actor_id=MOD, key=f"parent-{i}") for i in range(n)),
            return_exceptions=True,
        )
        out, err = await asyncio.wait_for(child.communicate(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    try:
        assert child.returncode == 0, err.decode()
        assert b"DONE" in out
        assert unexpected(results) == []
        assert (await ledger.balance(GUILD, ALICE)).total == n
        assert (await ledger.balance(GUILD, 777)).total == n
        assert await ledger.verify() == []
    finally:
        await store.close()


# -- several processes on one PostgreSQL database ----------------------------------------------------

PG_CHILD = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from datetime import datetime
    from bot.app.ledger import Ledger
    from bot.domain.errors import Conflict, InsufficientBalance, NotFound
    from bot.store.postgres import PostgresStore

    async def main(url, child, now, plan):
        store = PostgresStore(url)
        await store.open()
        ledger = Ledger(store, clock=lambda: now)
        rng = random.Random(child)
        print("READY", flush=True)
        sys.stdin.readline()

        async def attempt(kind, call):
            try:
                await call
                return kind, "ok"
            except (Conflict, InsufficientBalance, NotFound) as exc:
                return kind, type(exc).__name__

        work = []
        for i in range(plan["rounds"]):
            member = rng.choice(plan["members"])
            item = plan["stocked"] if i % 5 == 0 else plan["item"]
            buy = ledger.checkout({guild}, member, item, key=f"c{{child}}-{{i}}")
            work.append(attempt(f"buy:{{member}}:{{item}}", buy))
            lucky = rng.choice(plan["members"])
            work.append(attempt(f"grant:{{lucky}}", ledger.grant(
                {guild}, lucky, 1, actor_id={mod}, key=f"g{{child}}-{{i}}", kind="gift")))
            newcomer = 500_000 + child * 1_000 + i
            work.append(attempt("promo", ledger.redeem({guild}, newcomer, plan["promo"], key=f"p{{child}}-{{i}}")))
        for n, code in enumerate(plan["cards"]):
            redeem = ledger.redeem({guild}, 600_000 + child * 1_000 + n, code, key=f"k{{child}}-{{n}}")
            work.append(attempt("card", redeem))
        results = await asyncio.gather(*work)
        await store.close()
        print(json.dumps(results), flush=True)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), json.loads(sys.argv[4])))
    """
).format(guild=GUILD, mod=MOD)


@pytest.mark.slow
async def test_processes_sharing_one_postgres_database_never_double_spend(pg_url: str):
    """Four OS processes, each with its own pool, run checkouts, grants and redemptions at once on
    the same members, the same stocked item, one capped promo code and the same gift cards."""
    store = PostgresStore(pg_url)
    await store.open()
    ledger = Ledger(store, clock=Clock(START))
    members = list(MEMBERS[:5])
    await ledger.grant_many(GUILD, members, 60, actor_id=MOD, key="seed", kind="gift")
    keys = Keys()
    item = await add_item(ledger, keys, 3, name="Badge")
    stocked = await add_item(ledger, keys, 2, name="Rare", stock=7)
    await ledger.create_promo(GUILD, "RUSH", 5, actor_id=MOD, key="promo", uses=25)
    cards = await ledger.issue_gift_cards(GUILD, 4, 12, actor_id=MOD, key="cards")
    plan = {
        "rounds": 40,
        "members": members,
        "item": item.id,
        "stocked": stocked.id,
        "promo": "RUSH",
        "cards": list(cards.codes),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PG_CHILD,
            pg_url,
            str(n),
            START.isoformat(),
            json.dumps(plan),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for n in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"READY"
        for child in children:  # all four start together
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        outputs = [await asyncio.wait_for(child.communicate(), 120) for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    try:
        results: Counter[tuple[str, str]] = Counter()
        for child, (out, err) in zip(children, outputs, strict=True):
            assert child.returncode == 0, err.decode()
            results.update((kind, outcome) for kind, outcome in json.loads(out))
        assert {outcome for _, outcome in results} <= {"ok", "InsufficientBalance", "Conflict"}, results

        bought = Counter()
        for (kind, outcome), n in results.items():
            if kind.startswith("buy:") and outcome == "ok":
                _, member, item_id = kind.split(":")
                bought[int(member), int(item_id)] += n
        granted = Counter({int(kind[6:]): n for (kind, outcome), n in results.items() if kind.startswith("grant:")})
        assert all(outcome == "ok" for (kind, outcome) in results if kind.startswith("grant:"))
        for member in members:  # every credit accounted for: seed + grants - what was bought
            spent = 3 * bought[member, item.id] + 2 * bought[member, stocked.id]
            balance = await ledger.balance(GUILD, member)
            assert balance.total == 60 + granted[member] - spent >= 0
        sold = sum(n for (_, item_id), n in bought.items() if item_id == stocked.id)
        assert sold <= 7
        assert (await ledger.item(GUILD, stocked.id)).stock == 7 - sold
        assert results["promo", "ok"] == 25  # 160 tries for 25 uses
        assert (await ledger.promos(GUILD))[0].uses == 25
        assert results["card", "ok"] == 12  # each card once, though every process tried each
        assert (await ledger.orders(GUILD, None)).total == sum(bought.values())
        assert await ledger.verify() == []
    finally:
        await store.close()
