"""Code items end to end through the fake Discord (SPEC §3): /shopadmin add … delivery:code, the
upload of codes (/shopadmin codes, an attachment the bot downloads from the fake's CDN; duplicates
skipped and counted; the limits refuse all), a purchase that shows its code to the buyer only (and
again in /orders), 100 buyers racing for the last 10 codes, and no code in the log at DEBUG."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.logs import LibraryDebugFilter
from tests import rawsql
from tests.e2e import World, button, db_dump, refused, text_of

NOT_A_MODERATOR = "This command is for moderators"


async def code_item(w: World, name: str = "Game key", price: int = 5):
    rec = await w.run(w.mod, "shopadmin add", name=name, price=str(price), category="games", delivery="code")
    assert "Added to the shop" in text_of(rec), text_of(rec)
    assert "/shopadmin codes" in text_of(rec), text_of(rec)
    (item,) = [i for i in await w.ledger.items(w.guild.id, include_inactive=True) if i.name == name]
    assert item.delivery == "code"
    assert item.stock == 0
    return item


async def upload(w: World, item, body: bytes | str, filename: str = "codes.txt") -> str:
    data = body.encode() if isinstance(body, str) else body
    rec = await w.run(w.mod, "shopadmin codes", item=str(item.id), file=(filename, data, "text/plain"))
    await w.finished(rec)
    assert rec.ephemeral
    return text_of(rec)


async def buy(w: World, member, item):
    """/buy and Confirm as ``member``; the receipt message."""
    preview = await w.run(member, "buy", item=str(item.id))
    assert preview.ephemeral, text_of(preview)
    assert "A code, shown only to you" in text_of(preview), text_of(preview)
    confirm = await w.fake.click(preview, button(preview, "buy:confirm:"), member.id)
    await confirm.wait_for_edit(1)
    assert confirm.message.ephemeral
    return confirm.message


def fields(message) -> dict[str, str]:
    return {f["name"]: f["value"] for e in message.embeds for f in e.get("fields") or []}


def sold_codes(w: World) -> dict[int, str]:
    with rawsql.connect(w.settings) as db:
        return dict(db.execute("SELECT order_id, code FROM item_codes WHERE order_id IS NOT NULL").fetchall())


async def stock(w: World, item) -> int | None:
    found = await w.ledger.item(w.guild.id, item.id)
    assert found is not None
    return found.stock


# the upload ------------------------------------------------------------------------------------------
async def test_an_upload_counts_added_and_duplicates_and_never_shows_a_code(world: World):
    w = world
    await w.run(w.mod, "settings auditlog", channel=w.audit_channel_id)
    item = await code_item(w)
    answer = await upload(w, item, "KEY-AAAA\nKEY-BBBB\n\n  KEY-CCCC  \nKEY-AAAA\r\n")
    assert "Added 3 codes to **Game key**. 1 duplicate skipped" in answer, answer
    assert "It has 3 unused now" in answer, answer
    assert await stock(w, item) == 3
    again = await upload(w, item, "\ufeffKEY-DDDD\nKEY-AAAA\nKEY-DDDD\n")  # a byte-order mark is fine
    assert "Added 1 code to **Game key**. 2 duplicates skipped" in again, again
    assert "4 unused" in again, again
    shop = await w.run(w.alice, "shop")
    assert "4 left · you get a code" in text_of(shop)
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(w.audit_channel_id)) >= 4, what="the audit posts")
    audit = "\n".join(m.embed_text for m in w.fake.channel_messages(w.audit_channel_id))
    assert "Codes uploaded" in audit
    for shown in (answer, again, audit, text_of(shop)):
        assert "KEY-" not in shown, shown  # counts only, to moderators too
    with rawsql.connect(w.settings) as db:
        details = " ".join(d for (d,) in db.execute("SELECT details FROM audit_log"))
    assert "KEY-" not in details


async def test_upload_limits_refuse_the_whole_file(world: World):
    w = world
    item = await code_item(w)
    await upload(w, item, "KEEP-1\n")
    many = "\n".join(f"CODE-{n:05}" for n in range(1001)).encode()
    await refused(w, w.mod, "shopadmin codes", "at most 1,000 codes", item=str(item.id), file=("c.txt", many))
    exactly = "\n".join(f"CODE-{n:05}" for n in range(1000)).encode()
    assert "Added 1,000 codes" in await upload(w, item, exactly)
    long = b"OK-1\n" + b"X" * 201 + b"\n"
    await refused(w, w.mod, "shopadmin codes", "at most 200", item=str(item.id), file=("c.txt", long))
    assert "Added 1 code" in await upload(w, item, b"Y" * 200)  # 200 is allowed, never cut
    await refused(
        w, w.mod, "shopadmin codes", "plain text (UTF-8)", item=str(item.id), file=("c.bin", b"\xff\xfe\x00A")
    )
    huge = b"Z" * (1024 * 1024 + 1)
    await refused(w, w.mod, "shopadmin codes", "at most 1,048,576 bytes", item=str(item.id), file=("big.txt", huge))
    await refused(w, w.mod, "shopadmin codes", "no codes", item=str(item.id), file=("empty.txt", b"\n \n"))
    plain = await w.ledger.add_item(w.guild.id, "Sticker", 1, "fun", actor_id=w.mod.id, key="sticker")
    await refused(w, w.mod, "shopadmin codes", "is not a code item", item=str(plain.id), file=("c.txt", b"A"))
    await refused(w, w.bob, "shopadmin codes", NOT_A_MODERATOR, enforce=False, item=str(item.id), file=("c.txt", b"A"))
    assert await stock(w, item) == 1002


async def test_code_items_autocomplete_and_refuse_a_stock(world: World):
    w = world
    item = await code_item(w)
    await w.ledger.add_item(w.guild.id, "Sticker", 1, "fun", actor_id=w.mod.id, key="sticker")
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "shopadmin codes", {}, focused="item")
    assert [c["value"] for c in choices] == [str(item.id)]  # code items only
    await refused(
        w, w.mod, "shopadmin add", "upload codes", name="Key 2", price="5", category="games", delivery="code", stock=5
    )


# the purchase ------------------------------------------------------------------------------------------
async def test_a_purchase_shows_its_code_to_the_buyer_only_and_orders_shows_it_again(world: World):
    w = world
    item = await code_item(w)
    await upload(w, item, "FIRST-CODE\nSECOND`CODE\n")
    for member in (w.alice, w.bob):
        await w.ledger.grant(w.guild.id, member.id, 20, actor_id=w.mod.id, key=f"credit{member.id}")
    receipt = await buy(w, w.alice, item)
    assert fields(receipt)["Your code"] == "`FIRST-CODE`", fields(receipt)
    assert "Only you can see this" in text_of(receipt)
    second = await buy(w, w.bob, item)
    assert "SECOND\\`CODE" in fields(second)["Your code"]  # a backtick can't go in a code span
    assert await stock(w, item) == 0
    listing = await w.run(w.alice, "orders")
    assert listing.ephemeral
    assert "your code: `FIRST-CODE`" in text_of(listing)
    assert "SECOND" not in text_of(listing)
    assert "**completed**" in text_of(listing)
    assert listing.custom_ids == []
    # Sold out: the next buyer is told before paying.
    await refused(w, w.alice, "buy", "sold out", item=str(item.id))
    # A moderator's refund does not put a shown code back.
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    rec = await w.run(w.mod, "shopadmin refund", order=order.id)
    await w.finished(rec)
    assert "refunded" in text_of(rec)
    assert "FIRST" not in text_of(rec)
    assert await stock(w, item) == 0
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="the refund DM")
    assert "was refunded by the staff" in w.fake.dms(w.alice.id)[-1].content
    assert "FIRST" not in w.fake.dms(w.alice.id)[-1].content


async def test_a_code_item_is_bought_one_at_a_time(world: World):
    w = world
    item = await code_item(w)
    await upload(w, item, "A1\nA2\n")
    await w.ledger.grant(w.guild.id, w.alice.id, 20, actor_id=w.mod.id, key="credit")
    await refused(w, w.alice, "buy", "one at a time", item=str(item.id), quantity=2)


async def test_a_hundred_buyers_race_for_the_last_ten_codes_and_exactly_ten_get_one(world: World):
    w = world
    item = await code_item(w, price=5)
    await upload(w, item, "\n".join(f"OLD-{n}" for n in range(5)))
    for n in range(5):  # the first five are sold already
        await w.ledger.grant(w.guild.id, w.owner.id, 5, actor_id=w.mod.id, key=f"owner{n}")
        await w.ledger.checkout(w.guild.id, w.owner.id, item.id, key=f"early{n}")
    last = [f"LAST-{n:02}" for n in range(10)]
    await upload(w, item, "\n".join(last))
    buyers = [w.fake.add_member(w.guild.id, name=f"buyer{n:03}") for n in range(100)]
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: all(guild.get_member(b.id) for b in buyers), what="the buyers in the cache")
    for buyer in buyers:
        await w.ledger.grant(w.guild.id, buyer.id, 5, actor_id=w.mod.id, key=f"credit{buyer.id}")
    previews = [await w.run(buyer, "buy", item=str(item.id)) for buyer in buyers]
    assert all("Confirm" in str(p.message.components) for p in previews)
    # Every Confirm at once.
    clicks = await asyncio.gather(
        *(w.fake.click(p, button(p, "buy:confirm:"), b.id, wait=False) for p, b in zip(previews, buyers, strict=True))
    )
    await asyncio.gather(*(c.wait_for_edit(1, timeout=30) for c in clicks))
    receipts = [c.message for c in clicks]
    got = [fields(m).get("Your code") for m in receipts]
    codes = [g.strip("`") for g in got if g]
    assert len(codes) == 10, got
    assert sorted(codes) == last, got  # exactly ten, each code once
    refusals = [text_of(m) for m in receipts if not fields(m).get("Your code")]
    assert len(refusals) == 90, refusals[:3]
    assert all("Nothing was charged" in t and "sold out" in t for t in refusals), refusals[:3]
    assert await stock(w, item) == 0
    sold = sold_codes(w)
    assert len(sold) == 15
    assert sorted(c for c in sold.values() if c.startswith("LAST")) == last
    balances = [(await w.ledger.balance(w.guild.id, b.id)).total for b in buyers]
    assert sorted(balances) == [0] * 10 + [5] * 90  # who got no code paid nothing


# no code in the log ------------------------------------------------------------------------------------------
def written(records: list[logging.LogRecord]) -> str:
    """What `python -m bot` writes of these records at LOG_LEVEL=DEBUG (bot/logs.py): our own
    loggers at every level, other libraries (whose DEBUG lines hold HTTP bodies) from INFO."""
    keep = LibraryDebugFilter()
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(r) for r in records if keep.filter(r))


async def test_no_code_in_the_log_at_debug(world: World, caplog: pytest.LogCaptureFixture):
    w = world
    caplog.set_level(logging.DEBUG)
    secrets = [f"SECRET-{n}-{'Q' * 20}" for n in range(3)]
    item = await code_item(w)
    await upload(w, item, "\n".join([*secrets, secrets[0]]))
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key="credit")
    receipt = await buy(w, w.alice, item)
    assert fields(receipt)["Your code"] == f"`{secrets[0]}`"
    listing = await w.run(w.alice, "orders")
    assert secrets[0] in text_of(listing)
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    await w.finished(await w.run(w.mod, "shopadmin refund", order=order.id, reason="test"))
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="the refund DM")
    log = written(caplog.records)
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert {r.name.split(".")[0] for r in debug} >= {"discord"}  # the capture works: HTTP at DEBUG too
    for secret in secrets:
        assert secret.casefold() not in log.casefold()
        # Not even in what `python -m bot` would drop: any logger, any level, tracebacks included.
        for record in caplog.records:
            assert secret not in record.getMessage(), record.name
            assert secret not in (record.exc_text or ""), record.name


async def test_a_moderator_never_sees_a_sold_code_again(world: World):
    w = world
    item = await code_item(w)
    await upload(w, item, "HIDDEN-CODE-1")
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key="credit")
    await buy(w, w.alice, item)
    for command, options in (
        ("credits inspect", {"member": w.alice.id}),
        ("shopadmin edit", {"item": str(item.id), "price": "6"}),
        ("credits report", {}),
    ):
        rec = await w.run(w.mod, command, **options)
        await w.finished(rec)
        assert "HIDDEN" not in text_of(rec), (command, text_of(rec))
    export = await w.run(w.mod, "credits export")
    await w.finished(export)
    files = [f for m in (export.message, *export.followups) if m for f in m.attachments]
    assert files
    assert all(b"HIDDEN" not in f.data for f in files)
    before = db_dump(w)
    assert before["item_codes"]  # stored, to deliver: but shown to the buyer alone
