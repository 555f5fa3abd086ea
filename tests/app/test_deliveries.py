"""Durable delivery (SPEC §3) on the real SQLite store, with the test's clock and a scripted
Discord side: what a purchase and a refund record, the worker's claims (never twice), its
backoff, giving up, the automatic refund (once, with the member's DM), and a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.app.deliveries import fail_delivery
from bot.app.delivery_worker import NONCE_WINDOW, DeliveryImpossible, DeliveryRetry, DeliveryWorker
from bot.app.ledger import Ledger
from bot.domain import delivery as rules
from bot.domain.errors import InsufficientBalance
from bot.domain.models import AuditRecord, Delivery, DeliveryFailure
from bot.store.ports import Engine as Store
from tests.app._support import (
    another_store,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    corrupts_db,
    count,
    db_execute,
    db_rows,
)
from tests.conftest import ALICE, GUILD, MOD, Clock, Keys

ROLE = 555


Answer = BaseException | asyncio.Event | tuple[asyncio.Event, BaseException] | None


class Discord:
    """The Discord side as the worker sees it: each call is recorded and answered by `script`
    (one answer per call, then success): None, an exception to raise, an Event to wait on (a
    long Retry-After), or both: wait, then raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []
        self.script: list[Answer] = []
        self.started = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.calls.append((delivery.action, delivery.order_id, delivery.role_id))
        self.started.set()
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, tuple):
            await answer[0].wait()
            raise answer[1]
        if isinstance(answer, asyncio.Event):
            await answer.wait()
        elif answer is not None:
            raise answer

    def count(self, action: str) -> int:
        return sum(1 for call in self.calls if call[0] == action)


@pytest.fixture
def discord_side() -> Discord:
    return Discord()


@pytest.fixture
def worker(ledger: Ledger, discord_side: Discord) -> DeliveryWorker:
    return DeliveryWorker(ledger, discord_side, token="this-process")


async def buy_role(ledger: Ledger, key: Keys, price: int = 30, credit: int = 100):
    await ledger.grant(GUILD, ALICE, credit, actor_id=MOD, key=key(), expires="30d")
    item = await ledger.add_item(GUILD, f"VIP {key.n}", price, "perks", actor_id=MOD, key=key(), role_id=ROLE)
    return await ledger.checkout(GUILD, ALICE, item.id, key=key())


async def states(ledger: Ledger, order_id: int) -> list[tuple[str, str]]:
    return [(d.action, d.status) for d in await ledger.order_deliveries(GUILD, order_id)]


async def refunds(store: Store, order_id: int) -> int:
    return count(store, "entries", "order_id = ? AND type = 'refund'", (order_id,))


# what a purchase and a refund record ------------------------------------------------------------


async def test_a_purchase_records_its_role_grant_in_its_own_transaction(ledger: Ledger, store, key, clock):
    order = await buy_role(ledger, key)
    [grant] = await ledger.order_deliveries(GUILD, order.id)
    assert (grant.action, grant.role_id, grant.user_id, grant.status) == ("add_role", ROLE, ALICE, "pending")
    assert grant.due_at == ledger.now()
    assert grant.attempts == 0
    assert [d.id for d in await ledger.due_deliveries()] == [grant.id]

    # A purchase without a role owes nothing; a refused one writes nothing, its delivery included.
    plain = await ledger.add_item(GUILD, "Sticker", 1, "fun", actor_id=MOD, key=key())
    bought = await ledger.checkout(GUILD, ALICE, plain.id, key=key())
    assert await ledger.order_deliveries(GUILD, bought.id) == []
    pricey = await ledger.add_item(GUILD, "Crown", 10**6, "perks", actor_id=MOD, key=key(), role_id=ROLE)
    with pytest.raises(InsufficientBalance):
        await ledger.checkout(GUILD, ALICE, pricey.id, key=key())
    assert count(store, "deliveries") == 1

    # A replayed purchase (Discord delivered the click twice) records nothing more either.
    again = await ledger.checkout(GUILD, ALICE, order.item_id, key=f"k{key.n - 4}")
    assert again.id == order.id
    assert count(store, "deliveries") == 1


async def test_a_refund_cancels_a_grant_never_sent_and_takes_back_one_that_was(
    ledger: Ledger, store, key, worker: DeliveryWorker, discord_side: Discord
):
    # A moderator's refund also DMs the member (issue 10), after the role is dealt with.
    never_sent = await buy_role(ledger, key)
    await ledger.refund(GUILD, never_sent.id, actor_id=MOD, key=key())
    assert await states(ledger, never_sent.id) == [("add_role", "cancelled"), ("dm_refunded", "pending")]
    await worker.run_once()
    assert await states(ledger, never_sent.id) == [("add_role", "cancelled"), ("dm_refunded", "done")]

    given = await buy_role(ledger, key)
    await worker.run_once()
    await ledger.refund(GUILD, given.id, actor_id=MOD, key=key())
    assert await states(ledger, given.id) == [
        ("add_role", "done"),
        ("remove_role", "pending"),
        ("dm_refunded", "pending"),
    ]
    await worker.run_once()
    assert await states(ledger, given.id) == [("add_role", "done"), ("remove_role", "done"), ("dm_refunded", "done")]

    # Tried and failed for now (a 5xx may still have reached Discord): cancelled, and taken back.
    tried = await buy_role(ledger, key)
    discord_side.script = [DeliveryRetry("503")]
    await worker.run_once()
    await ledger.refund(GUILD, tried.id, actor_id=MOD, key=key())
    assert await states(ledger, tried.id) == [
        ("add_role", "cancelled"),
        ("remove_role", "pending"),
        ("dm_refunded", "pending"),
    ]
    await worker.run_once()
    assert discord_side.calls == [
        ("dm_refunded", never_sent.id, None),
        ("add_role", given.id, ROLE),
        ("remove_role", given.id, ROLE),
        ("dm_refunded", given.id, None),
        ("add_role", tried.id, ROLE),
        ("remove_role", tried.id, ROLE),
        ("dm_refunded", tried.id, None),
    ]


async def test_a_refund_while_the_grant_is_being_sent_removes_the_role_after_it(
    ledger: Ledger, key, worker: DeliveryWorker, discord_side: Discord
):
    order = await buy_role(ledger, key)
    release = asyncio.Event()
    discord_side.script = [release]
    sending = worker.kick(GUILD, order.id)
    await discord_side.started.wait()  # the grant is with Discord (say, in a Retry-After wait)

    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert await states(ledger, order.id) == [
        ("add_role", "pending"),
        ("remove_role", "pending"),
        ("dm_refunded", "pending"),
    ]
    assert await ledger.due_deliveries() == []  # the removal (and the DM) waits for the grant it takes back
    assert (await worker.run_once()).found == 0

    release.set()
    await sending  # the same kick goes on with the removal once the grant has settled
    assert [call[0] for call in discord_side.calls] == ["add_role", "remove_role", "dm_refunded"]
    assert await states(ledger, order.id) == [("add_role", "done"), ("remove_role", "done"), ("dm_refunded", "done")]


# never twice ------------------------------------------------------------------------------------


async def test_racing_runs_and_kicks_deliver_once(ledger: Ledger, key, worker: DeliveryWorker, discord_side):
    order = await buy_role(ledger, key)
    release = asyncio.Event()
    discord_side.script = [release]
    runs = [asyncio.create_task(worker.run_once()) for _ in range(3)]
    runs += [worker.kick(GUILD, order.id) for _ in range(3)]
    await discord_side.started.wait()
    release.set()
    results = await asyncio.gather(*runs)
    assert sum(r.done for r in results) == 1
    assert discord_side.calls == [("add_role", order.id, ROLE)]
    assert (await worker.run_once()).found == 0
    assert await states(ledger, order.id) == [("add_role", "done")]


async def test_a_claim_is_atomic_across_connections(ledger: Ledger, store: Store, key, clock: Clock):
    """Two store connections on one file (two workers) claim the same delivery at once: one wins."""
    order = await buy_role(ledger, key)
    [grant] = await ledger.order_deliveries(GUILD, order.id)
    others = [another_store(store) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        ledgers = [ledger, *(Ledger(other, clock=clock) for other in others)]
        claims = await asyncio.gather(*(lg.claim_delivery(grant.id, f"w{i}") for i, lg in enumerate(ledgers)))
    finally:
        for other in others:
            await other.close()
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].attempts == 1


async def test_an_impossible_grant_refunds_once_and_records_the_members_dm(
    ledger: Ledger, store, key, worker: DeliveryWorker, discord_side: Discord
):
    order = await buy_role(ledger, key)
    discord_side.script = [DeliveryImpossible(rules.ROLE_ABOVE_BOT)]
    run = await worker.run_once()
    assert run.refunded == [order.id]
    assert (await ledger.order(GUILD, order.id)).status == "refunded"
    assert (await ledger.balance(GUILD, ALICE)).total == 100
    # The role was never given: nothing to take back. The member is told, by the next delivery.
    assert await states(ledger, order.id) == [("add_role", "failed"), ("dm_refund", "done")]
    [grant, dm] = await ledger.order_deliveries(GUILD, order.id)
    assert grant.reason == dm.reason == rules.ROLE_ABOVE_BOT
    assert discord_side.calls == [("add_role", order.id, ROLE), ("dm_refund", order.id, None)]
    entries_before = await refunds(store, order.id)

    # Again and again: nothing more happens, and a replay of the failure returns the first result.
    assert (await worker.run_once()).found == 0
    key = f"delivery:{grant.id}:failed"
    replay = await ledger.unit(  # the failure's unit of work again, under its key
        "delivery_failure",
        DeliveryFailure.from_dict,
        key,
        GUILD,
        ledger.now(),
        fail_delivery,
        grant,
        worker.token,
        rules.ROLE_ABOVE_BOT,
        True,
        AuditRecord(None, "refund"),
        key,
        ledger.now(),
    )
    assert not replay.fresh
    assert replay.value.refund is not None
    assert replay.value.refund.order.id == order.id
    assert await refunds(store, order.id) == entries_before
    assert count(store, "deliveries", "action = 'dm_refund'") == 1
    audit = db_rows(store, "SELECT action, details FROM audit_log WHERE action = 'refund'")
    assert len(audit) == 1
    assert "automatic refund: the role is above the bot" in audit[0][1]


async def test_an_impossible_grant_of_an_order_refunded_meanwhile_is_not_refunded_again(
    ledger: Ledger, store, key, worker: DeliveryWorker, discord_side: Discord
):
    order = await buy_role(ledger, key)
    release = asyncio.Event()
    discord_side.script = [(release, DeliveryImpossible(rules.ROLE_DELETED))]  # deleted while we wait
    sending = worker.kick(GUILD, order.id)
    await discord_side.started.wait()
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())  # by a moderator, meanwhile
    release.set()
    await sending
    # The role was never given: the removal the refund recorded is cancelled, nothing is refunded
    # twice, and the member hears of the moderator's refund only.
    assert await states(ledger, order.id) == [
        ("add_role", "failed"),
        ("remove_role", "cancelled"),
        ("dm_refunded", "done"),
    ]
    assert await refunds(store, order.id) == 1  # the moderator's, only
    assert count(store, "deliveries", "action = 'dm_refund'") == 0
    assert discord_side.calls == [("add_role", order.id, ROLE), ("dm_refunded", order.id, None)]


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (rules.MEMBER_LEFT, "done"),
        (rules.ROLE_DELETED, "done"),
        (rules.MISSING_PERMISSIONS, "failed"),
    ],
)
async def test_an_impossible_removal_is_done_when_the_role_or_member_is_gone_and_never_refunds(
    ledger: Ledger, store, key, worker: DeliveryWorker, discord_side: Discord, reason: str, status: str
):
    order = await buy_role(ledger, key)
    await worker.run_once()
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    discord_side.script = [DeliveryImpossible(reason)]
    await worker.run_once()
    [_, removal, dm] = await ledger.order_deliveries(GUILD, order.id)
    assert (removal.status, removal.reason) == (status, reason)
    assert (dm.action, dm.status) == ("dm_refunded", "done")  # the member is told of the refund all the same
    assert await refunds(store, order.id) == 1
    assert (await worker.run_once()).found == 0


# passing failures: backoff, then giving up ---------------------------------------------------------


async def test_passing_failures_are_retried_on_the_backoff_schedule(
    ledger: Ledger, key, clock: Clock, worker: DeliveryWorker, discord_side: Discord
):
    order = await buy_role(ledger, key)
    discord_side.script = [DeliveryRetry("429"), DeliveryRetry("503"), DeliveryRetry("timeout")]
    waits = []
    for _ in range(3):
        assert (await worker.run_once()).retried == 1
        [grant] = await ledger.order_deliveries(GUILD, order.id)
        waits.append(grant.due_at - ledger.now())
        clock.advance(seconds=grant.due_at - ledger.now() - 1)
        assert (await worker.run_once()).found == 0  # a second early: not yet
        clock.advance(seconds=1)
    assert waits == list(rules.BACKOFF[:3])
    assert (await worker.run_once()).done == 1
    [grant] = await ledger.order_deliveries(GUILD, order.id)
    assert (grant.status, grant.attempts, grant.last_error) == ("done", 4, "DeliveryRetry: timeout")
    assert discord_side.count("add_role") == 4


async def test_a_grant_failing_for_a_day_is_given_up_refunded_and_the_member_told(
    ledger: Ledger, store, key, clock: Clock, worker: DeliveryWorker, discord_side: Discord
):
    order = await buy_role(ledger, key)
    always: Callable[[], DeliveryRetry] = lambda: DeliveryRetry("502 Bad Gateway")  # noqa: E731

    async def failing(delivery: Delivery) -> None:
        discord_side.calls.append((delivery.action, delivery.order_id, delivery.role_id))
        if delivery.action == "add_role":
            raise always()

    worker.send = failing
    while (await ledger.order(GUILD, order.id)).status == "completed":
        await worker.run_once()
        pending = [d for d in await ledger.order_deliveries(GUILD, order.id) if d.status == "pending"]
        if pending:
            clock.advance(seconds=max(pending[0].due_at - ledger.now(), 0))
    assert ledger.now() - order.created_at >= rules.GIVE_UP_AFTER
    tries, elapsed = 1, 0  # the schedule, then hourly, until a failure comes a day after the order
    while elapsed < rules.GIVE_UP_AFTER:
        elapsed += rules.backoff(tries)
        tries += 1
    assert discord_side.count("add_role") == tries == 33
    [grant, *rest] = await ledger.order_deliveries(GUILD, order.id)
    assert (grant.status, grant.reason) == ("failed", rules.GAVE_UP)
    assert (await ledger.balance(GUILD, ALICE)).total == 100
    # A grant Discord kept failing may still have landed: the role is taken back too, and the
    # member is told.
    assert [(d.action, d.status) for d in rest] == [("remove_role", "done"), ("dm_refund", "done")]
    assert discord_side.calls[-2:] == [("remove_role", order.id, ROLE), ("dm_refund", order.id, None)]


# a restart ----------------------------------------------------------------------------------------


async def test_a_new_worker_releases_the_claims_of_a_dead_process_and_delivers_them(
    ledger: Ledger, store, key, clock: Clock, discord_side: Discord
):
    order = await buy_role(ledger, key)
    dead = DeliveryWorker(ledger, discord_side, token="dead-process")
    discord_side.script = [asyncio.Event()]  # never answers: the process is killed meanwhile
    sending = dead.kick(GUILD, order.id)
    await discord_side.started.wait()
    sending.cancel()  # SIGKILL: the claim stays in the database
    with pytest.raises(asyncio.CancelledError):
        await sending
    [grant] = await ledger.order_deliveries(GUILD, order.id)
    assert (grant.status, grant.attempts) == ("pending", 1)
    assert await ledger.due_deliveries() == []  # claimed: no other run of the dead process takes it

    restarted = DeliveryWorker(ledger, discord_side, token="new-process")
    assert (await restarted.run_once()).done == 1
    assert discord_side.count("add_role") == 2  # again (Discord gives a role once however often asked)
    [grant] = await ledger.order_deliveries(GUILD, order.id)
    assert (grant.status, grant.attempts) == ("done", 2)
    # The dead process's claim is gone: nothing it could still say changes anything.
    assert await ledger.delivered(grant, "dead-process") is None
    assert await refunds(store, order.id) == 0


async def test_a_refund_dm_interrupted_by_a_crash_is_resent_within_the_nonce_window_only(
    ledger: Ledger, key, clock: Clock, discord_side: Discord
):
    orders = [await buy_role(ledger, key) for _ in range(2)]
    dead = DeliveryWorker(ledger, discord_side, token="dead-process")
    for order in orders:
        await dead.ledger.claim_delivery((await ledger.order_deliveries(GUILD, order.id))[0].id, dead.token)
    # Both grants fail and refund; their DMs are claimed by the process, which then dies.
    for order in orders:
        [grant] = await ledger.order_deliveries(GUILD, order.id)
        await ledger.delivery_impossible(grant, dead.token, rules.ROLE_DELETED)
    dms = [(await ledger.order_deliveries(GUILD, order.id))[1] for order in orders]
    await ledger.claim_delivery(dms[0].id, dead.token)
    clock.advance(seconds=NONCE_WINDOW + 1)
    await ledger.claim_delivery(dms[1].id, dead.token)

    restarted = DeliveryWorker(ledger, discord_side, token="new-process")
    await restarted.run_once()
    old, recent = [(await ledger.order_deliveries(GUILD, order.id))[1] for order in orders]
    assert (old.status, old.reason) == ("failed", rules.UNKNOWN)  # too long ago: not sent twice
    assert recent.status == "done"  # resent under its nonce: Discord shows it once
    assert discord_side.calls == [("dm_refund", orders[1].id, None)]


@corrupts_db
async def test_verify_reports_a_delivery_that_does_not_match_its_order(ledger: Ledger, store, key):
    order = await buy_role(ledger, key)
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert await ledger.verify() == []
    db_execute(store, "UPDATE deliveries SET status = 'pending' WHERE action = 'add_role'")  # by hand
    assert await ledger.verify() == [
        f"delivery 1: not that of its order #{order.id} (another member, or the role of a refunded order)"
    ]
