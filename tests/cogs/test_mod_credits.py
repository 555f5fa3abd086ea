"""/credits … end to end: grant, grant-role, revoke, extend, inspect, export, report, schedule; the
moderator check at run time; refusals that write nothing; the audit channel."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest

from bot.app.settings import update_settings
from bot.domain.models import AuditRecord
from bot.domain.timeparse import to_unix
from fakediscord import Perm
from tests.e2e import World, button, db_dump, refused, text_of

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# SPEC §6's columns, in order, then the extra ones (issue 10: each entry's order status).
EXPORT_HEADER = "entry_id,created_at,guild_id,user_id,lot_id,lot_kind,type,amount,order_id,actor_id,reason,order_status"
NOT_A_MODERATOR = "This command is for moderators"


# helpers -------------------------------------------------------------------------------------------
async def answer(w: World, rec):
    """The visible answer of a command, deferred or not."""
    await w.finished(rec)
    return rec.message


async def set_audit(w: World) -> None:
    """Set the audit channel and wait for that change's own post (the first in the channel)."""
    rec = await w.run(w.mod, "settings auditlog", channel=w.audit_channel_id)
    assert "Audit channel" in text_of(rec)
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(w.audit_channel_id)) == 1, what="the audit post")


def audit_texts(w: World) -> list[str]:
    return [m.embed_text for m in w.fake.channel_messages(w.audit_channel_id)]


async def grant(w: World, member, amount: int, **kw):
    return await w.ledger.grant(w.guild.id, member.id, amount, actor_id=w.mod.id, key=None, **kw)


# grant ---------------------------------------------------------------------------------------------
async def test_grant_with_every_option(world: World):
    w = world
    rec = await w.run(
        w.mod,
        "credits grant",
        member=w.alice.id,
        amount="40",
        expires="30d",
        starts="2026-11-28",
        categories="games, Roles",
        one_time=True,
        kind="promo",
        reason="Event winner",
    )
    assert rec.ephemeral
    text = text_of(rec)
    assert "Granted 40 credits of promo credit" in text
    assert f"<@{w.alice.id}>" in text
    (lot,) = await w.ledger.lots(w.guild.id, w.alice.id)
    assert (lot.kind, lot.original, lot.remaining, lot.one_time) == ("promo", 40, 40, True)
    assert lot.expires_at == to_unix(w.clock() + timedelta(days=30))
    day = to_unix(datetime.fromisoformat("2026-11-28T00:00:00+00:00"))
    assert day <= lot.starts_at < day + 86400  # a date is read in the guild's timezone (UTC)
    assert lot.categories is not None
    assert {c.casefold() for c in lot.categories} == {"games", "roles"}
    assert lot.memo == "Event winner"
    assert lot.created_by == w.mod.id
    assert f"`#{lot.id}`" in text
    assert "one-time" in text
    assert "<t:" in text

    gift = await w.run(w.owner, "credits grant", member=w.bob.id, amount="15", kind="gift")
    assert "Granted 15 credits of gift credit" in text_of(gift)
    bal = await w.ledger.balance(w.guild.id, w.bob.id)
    assert (bal.gift, bal.promo) == (15, 0)
    entries = (await w.ledger.history(w.guild.id, w.bob.id)).items
    assert [(e.type, e.amount, e.actor_id) for e in entries] == [("grant", 15, w.owner.id)]


BAD_GRANTS = [
    ({"amount": "0"}, "amount"),
    ({"amount": "-5"}, "amount"),
    ({"amount": "abc"}, "amount"),
    ({"amount": "1e99"}, "amount"),
    ({"amount": "NaN"}, "amount"),
    ({"amount": "12.5"}, "decimal"),
    ({"amount": "10000000000000"}, "amount"),
    ({"amount": "10", "expires": "2026-11-01"}, "past"),
    ({"amount": "10", "expires": "5 fortnights"}, "Unknown time unit"),
    ({"amount": "10", "expires": "1d", "starts": "3d"}, "after the start"),
    # A 201-character reason: Discord's client stops it now (max_length), see
    # tests/cogs/test_worst_case_credits.py; the ledger refuses it too (tests/app/test_grants.py).
]


async def test_grant_bad_input_is_refused_and_writes_nothing(world: World):
    w = world
    for options, expect in BAD_GRANTS:
        await refused(w, w.mod, "credits grant", expect, member=w.alice.id, **options)
    assert await w.ledger.lots(w.guild.id, w.alice.id) == []


async def test_amounts_that_could_be_misread_are_refused_and_write_nothing(world: World):
    """Issue 8 item 7: `10⁶` was granted as 106, `2¹⁰` as 210, `①②` as 12 and `€5` as 5 in a `$`
    server. Each is refused now with a short answer, and one script's digits are read right."""
    w = world
    for amount in ("10⁶", "2¹⁰", "①②", "𝟏𝟎", "1٢"):
        text = await refused(w, w.mod, "credits grant", "digit", member=w.alice.id, amount=amount)
        assert len(text) < 200, text
    await refused(w, w.mod, "credits grant", "not this server's currency", member=w.alice.id, amount="$5")
    await w.run(w.mod, "settings currency", name="dollars", symbol="$", decimals=2)
    for amount in ("€5", "5 €", "£5", "¥5"):
        text = await refused(
            w, w.mod, "credits grant", "not this server's currency ($)", member=w.alice.id, amount=amount
        )
        assert len(text) < 200, text
    assert await w.ledger.lots(w.guild.id, w.alice.id) == []
    # The guild's own symbol, full-width digits and the digits of one script are read as they say.
    for amount, shown in (("$5", "$5.00"), ("１２.５０", "$12.50"), ("١٢٣", "$123.00")):
        assert shown in text_of(await w.run(w.mod, "credits grant", member=w.alice.id, amount=amount)), amount
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).promo == 500 + 1250 + 12300


async def test_grant_to_a_bot_is_refused(world: World):
    w = world
    robot = w.fake.add_member(w.guild.id, name="otherbot", bot=True)
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_member(robot.id) is not None)
    await refused(w, w.mod, "credits grant", "Bots can't hold credit", member=robot.id, amount="5")


# the moderator check at run time ----------------------------------------------------------------------
MOD_INVOCATIONS = [
    ("credits grant", {"member": "alice", "amount": "10"}),
    ("credits grant-role", {"role": "vip", "amount": "10"}),
    ("credits revoke", {"member": "alice", "reason": "x", "amount": "1"}),
    ("credits extend", {"lot": 1, "expires": "30d"}),
    ("credits inspect", {"member": "alice"}),
    ("credits export", {}),
    ("credits report", {}),
    ("credits schedule add", {"role": "vip", "amount": "5", "rule": "0 12 1 * *"}),
    ("credits schedule list", {}),
    ("credits schedule remove", {"id": 1}),
]


async def test_non_moderators_are_refused_at_run_time(world: World):
    """Discord would hide the commands (default_member_permissions), but a server owner can change
    that: the bot checks again and refuses, writing nothing, and shows nothing of the ledger."""
    w = world
    await grant(w, w.alice, 50)
    with pytest.raises(ValueError, match="default_member_permissions"):  # Discord's own gate, first
        await w.run(w.bob, "credits grant", member=w.alice.id, amount="10")
    ids = {"alice": w.alice.id, "vip": w.vip_role.id}
    for command, options in MOD_INVOCATIONS:
        resolved = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
        text = await refused(w, w.bob, command, NOT_A_MODERATOR, enforce=False, **resolved)
        assert "50" not in text


async def test_configured_moderator_role_may_run_moderator_commands(world: World):
    w = world
    await refused(w, w.alice, "credits grant", NOT_A_MODERATOR, enforce=False, member=w.bob.id, amount="5")
    rec = await w.run(w.mod, "settings modrole", role=w.vip_role.id)
    assert f"<@&{w.vip_role.id}>" in text_of(rec)
    w.fake.set_member_roles(w.guild.id, w.alice.id, [w.vip_role.id])
    assert not Perm.MANAGE_GUILD & w.guild.permissions_for(w.fake.member(w.guild.id, w.alice.id))
    rec = await w.fake.invoke(
        w.guild.id, w.alice.id, "credits grant", {"member": w.bob.id, "amount": "5"}, enforce_permissions=False
    )
    assert "Granted 5 credits" in text_of(rec)
    (lot,) = await w.ledger.lots(w.guild.id, w.bob.id)
    assert lot.created_by == w.alice.id
    for command, options in (
        ("promo create", {"code": "BY-ALICE", "amount": "3"}),
        ("giftcard list", {}),
        ("shopadmin add", {"name": "Mug", "price": "4", "category": "merch"}),
        ("settings show", {}),
    ):
        rec = await w.fake.invoke(w.guild.id, w.alice.id, command, options or None, enforce_permissions=False)
        assert NOT_A_MODERATOR not in text_of(rec), command
        assert "Error id" not in text_of(rec), command
    assert [p.code for p in await w.ledger.promos(w.guild.id)] == ["BY-ALICE"]
    assert [i.name for i in await w.ledger.items(w.guild.id)] == ["Mug"]
    # Losing the role takes the right away again.
    w.fake.set_member_roles(w.guild.id, w.alice.id, [])
    await refused(w, w.alice, "credits grant", NOT_A_MODERATOR, enforce=False, member=w.bob.id, amount="5")


# grant-role --------------------------------------------------------------------------------------------
async def test_grant_role_grants_every_human_member_in_one_transaction(world: World):
    w = world
    robot = w.fake.add_member(w.guild.id, name="helperbot", roles=[w.vip_role.id], bot=True)
    w.fake.set_member_roles(w.guild.id, w.alice.id, [w.vip_role.id])
    w.fake.set_member_roles(w.guild.id, w.bob.id, [w.vip_role.id])
    vip = w.bot.get_guild(w.guild.id).get_role(w.vip_role.id)
    await w.fake.wait_for(lambda: len(vip.members) == 3, what="role members in the cache")
    await set_audit(w)

    rec = await w.run(w.mod, "credits grant-role", role=w.vip_role.id, amount="25", expires="14d", reason="Launch")
    message = await answer(w, rec)
    assert message.ephemeral
    assert "to each of the 2 members" in text_of(message)
    for member in (w.alice, w.bob):
        (lot,) = await w.ledger.lots(w.guild.id, member.id)
        assert (lot.original, lot.memo, lot.expires_at) == (25, "Launch", to_unix(w.clock() + timedelta(days=14)))
    assert await w.ledger.lots(w.guild.id, robot.id) == []
    assert await w.ledger.lots(w.guild.id, w.mod.id) == []
    # One transaction: one audit record and one idempotency key for both grants.
    dump = db_dump(w)
    grant_audits = [row for row in dump["audit_log"] if "grant-role" in row]
    assert len(grant_audits) == 1
    keys = {row for row in dump["idempotency"] if str(rec.id) in repr(row)}
    assert len(keys) == 1
    await w.fake.wait_for(
        lambda: any("Credit granted to a role" in t for t in audit_texts(w)), what="the audit post of grant-role"
    )


async def test_grant_role_with_no_human_member_is_refused(world: World):
    w = world
    await refused(w, w.mod, "credits grant-role", "Nobody", role=w.vip_role.id, amount="10")
    w.fake.set_member_roles(w.guild.id, w.alice.id, [w.vip_role.id])
    vip = w.bot.get_guild(w.guild.id).get_role(w.vip_role.id)
    await w.fake.wait_for(lambda: len(vip.members) == 1)
    await refused(w, w.mod, "credits grant-role", "amount", role=w.vip_role.id, amount="0")


# revoke ------------------------------------------------------------------------------------------------
async def test_revoke_lot_autocomplete_lists_the_members_lots(world: World):
    w = world
    first = await grant(w, w.alice, 30, expires="10d")
    second = await grant(w, w.alice, 20, kind="gift")
    other = await grant(w, w.bob, 99)
    choices = await w.fake.autocomplete(
        w.guild.id, w.mod.id, "credits revoke", {"member": w.alice.id, "reason": "x"}, focused="lot"
    )
    assert sorted(c["value"] for c in choices) == [first.first_lot_id, second.first_lot_id]
    assert other.first_lot_id not in [c["value"] for c in choices]
    assert any("30 credits" in c["name"] for c in choices)
    typed = await w.fake.autocomplete(
        w.guild.id,
        w.mod.id,
        "credits revoke",
        {"member": w.alice.id, "lot": str(second.first_lot_id)},
        focused="lot",
    )
    assert [c["value"] for c in typed] == [second.first_lot_id]
    hashed = await w.fake.autocomplete(
        w.guild.id,
        w.mod.id,
        "credits revoke",
        {"member": w.alice.id, "lot": f"#{first.first_lot_id}"},
        focused="lot",
    )
    assert [c["value"] for c in hashed] == [first.first_lot_id]
    nobody = await w.fake.autocomplete(w.guild.id, w.mod.id, "credits revoke", {"lot": ""}, focused="lot")
    assert nobody == []


async def test_revoke_by_lot_and_by_amount(world: World):
    w = world
    gift = await grant(w, w.alice, 50, kind="gift")
    soon = await grant(w, w.alice, 30, expires="5d")
    later = await grant(w, w.alice, 40, expires="20d")

    rec = await w.run(w.mod, "credits revoke", member=w.alice.id, lot=later.first_lot_id, reason="Duplicate")
    assert rec.ephemeral
    assert f"Revoked 40 credits from <@{w.alice.id}>" in text_of(rec)
    lot = await w.ledger.get_lot(w.guild.id, later.first_lot_id)
    assert (lot.status, lot.remaining) == ("voided", 0)

    # An amount is taken in allocation order: promo first (soonest expiry), then gift.
    rec = await w.run(w.mod, "credits revoke", member=w.alice.id, amount="35", reason="Abuse")
    assert "Revoked 35 credits" in text_of(rec)
    assert (await w.ledger.get_lot(w.guild.id, soon.first_lot_id)).remaining == 0
    assert (await w.ledger.get_lot(w.guild.id, gift.first_lot_id)).remaining == 45
    history = (await w.ledger.history(w.guild.id, w.alice.id)).items
    voids = [(e.lot_id, e.amount, e.reason) for e in history if e.type == "void"]
    assert sorted(voids) == sorted(
        [(later.first_lot_id, -40, "Duplicate"), (soon.first_lot_id, -30, "Abuse"), (gift.first_lot_id, -5, "Abuse")]
    )

    # Part of a lot.
    rec = await w.run(w.mod, "credits revoke", member=w.alice.id, lot=gift.first_lot_id, amount="5", reason="fix")
    assert "Revoked 5 credits" in text_of(rec)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 40


async def test_revoke_refusals_write_nothing(world: World):
    w = world
    alices = await grant(w, w.alice, 30)
    bobs = await grant(w, w.bob, 30)
    await refused(w, w.mod, "credits revoke", "not one of", member=w.alice.id, lot=bobs.first_lot_id, reason="x")
    await refused(w, w.mod, "credits revoke", "lot", member=w.alice.id, lot=999, reason="x")
    await refused(w, w.mod, "credits revoke", "Name a lot or an amount", member=w.alice.id, reason="x")
    await refused(w, w.mod, "credits revoke", "amount", member=w.alice.id, amount="0", reason="x")
    await refused(
        w,
        w.mod,
        "credits revoke",
        "only 30 credits left",
        member=w.alice.id,
        lot=alices.first_lot_id,
        amount="31",
        reason="x",
    )
    await refused(
        w, w.mod, "credits revoke", "Only 30 credits of usable credit", member=w.alice.id, amount="31", reason="x"
    )
    await refused(w, w.mod, "credits revoke", "reason", member=w.alice.id, amount="1", reason="   ")
    await w.run(w.mod, "credits revoke", member=w.alice.id, lot=alices.first_lot_id, reason="gone")
    await refused(
        w, w.mod, "credits revoke", "nothing left", member=w.alice.id, lot=alices.first_lot_id, reason="again"
    )


# extend ------------------------------------------------------------------------------------------------
async def test_extend_moves_the_expiry(world: World):
    w = world
    lot = await grant(w, w.alice, 30, expires="5d")
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "credits extend", {"member": w.alice.id}, focused="lot")
    assert [c["value"] for c in choices] == [lot.first_lot_id]
    rec = await w.run(w.mod, "credits extend", lot=lot.first_lot_id, expires="2026-12-31", reason="Holidays")
    assert rec.ephemeral
    new = to_unix(datetime.fromisoformat("2027-01-01T00:00:00+00:00")) - 1  # end of that day, UTC
    after = await w.ledger.get_lot(w.guild.id, lot.first_lot_id)
    assert after.expires_at in (new, new + 1)
    assert f"<t:{after.expires_at}:f>" in text_of(rec)
    assert f"<t:{lot.expires_at}:f>" in text_of(rec)  # what it was
    types = [e.type for e in (await w.ledger.history(w.guild.id, w.alice.id)).items]
    assert "expiry_change" in types


async def test_extend_refusals_write_nothing(world: World):
    w = world
    lot = await grant(w, w.alice, 30, expires="5d")
    await refused(w, w.mod, "credits extend", "past", lot=lot.first_lot_id, expires="2026-11-20")
    await refused(w, w.mod, "credits extend", "no lot #999", lot=999, expires="30d")
    await refused(w, w.mod, "credits extend", "not one of", lot=lot.first_lot_id, expires="30d", member=w.bob.id)
    await refused(w, w.mod, "credits extend", "couldn't read", lot=lot.first_lot_id, expires="soon-ish")
    w.clock.advance(days=6)
    await refused(w, w.mod, "credits extend", "already expired", lot=lot.first_lot_id, expires="30d")


# inspect -----------------------------------------------------------------------------------------------
async def test_inspect_shows_lots_and_ledger_with_page_buttons(world: World):
    w = world
    lots = [await grant(w, w.alice, n, reason=f"grant number {n}") for n in range(1, 13)]
    await grant(w, w.bob, 777)
    rec = await w.run(w.mod, "credits inspect", member=w.alice.id)
    assert rec.ephemeral
    first = text_of(rec)
    assert "Credit of alice" in first
    assert "Ledger (page 1 of 2)" in first
    assert "78 credits" in first  # 1 + … + 12 promotional
    assert not re.search(r"(?<!\d)777(?!\d)", first)  # not bob's grant; a snowflake id may hold the digits
    assert all(f"`#{lot.first_lot_id}`" in first for lot in lots)  # every active lot, not just the first 10
    prev_id, next_id = button(rec, "pager:previous:"), button(rec, "pager:next:")
    assert rec.message.component(prev_id).get("disabled") is True
    with pytest.raises(ValueError, match="only user"):  # someone else's ephemeral message
        await w.fake.click(rec, next_id, w.bob.id)

    click = await w.fake.click(rec, next_id, w.mod.id)
    assert click.response_type == 7
    second = text_of(click)
    assert "Ledger (page 2 of 2)" in second
    assert second != first
    assert click.message.component(next_id).get("disabled") is True
    back = await w.fake.click(click.message, prev_id, w.mod.id)
    assert "Ledger (page 1 of 2)" in text_of(back)


async def test_inspect_of_a_member_without_credit(world: World):
    w = world
    rec = await w.run(w.mod, "credits inspect", member=w.bob.id)
    assert "No active lots." in text_of(rec)
    assert "No entries." in text_of(rec)
    assert rec.custom_ids == []


async def test_inspect_says_how_many_lots_did_not_fit(world: World):
    w = world
    for n in range(40):
        await grant(w, w.bob, 1000 + n, expires=f"{n + 1}d", categories="games, roles", one_time=True)
    rec = await w.run(w.mod, "credits inspect", member=w.bob.id)
    (embed,) = rec.embeds
    (lots,) = [f["value"] for f in embed["fields"] if f["name"] == "Active lots"]
    assert len(lots) <= 1024
    shown = lots.count("`#")
    assert 0 < shown < 40
    assert lots.endswith(f"… and {40 - shown} more")


# export ------------------------------------------------------------------------------------------------
async def test_export_is_a_csv_attachment_in_entry_order(world: World):
    w = world
    a = await grant(w, w.alice, 30, reason="=HYPERLINK(evil)")
    w.clock.advance(hours=1)
    b = await grant(w, w.bob, 20, kind="gift")
    await w.run(w.mod, "credits revoke", member=w.alice.id, amount="10", reason="oops")
    rec = await w.run(w.mod, "credits export")
    message = await answer(w, rec)
    assert message.ephemeral
    assert "3 entries" in message.content
    (attachment,) = message.attachments
    assert attachment.filename.endswith(".csv")
    text = attachment.data.decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == EXPORT_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["entry_id"]) for r in rows] == sorted(int(r["entry_id"]) for r in rows)
    assert [(r["user_id"], r["lot_id"], r["lot_kind"], r["type"], r["amount"]) for r in rows] == [
        (str(w.alice.id), str(a.first_lot_id), "promo", "grant", "30"),
        (str(w.bob.id), str(b.first_lot_id), "gift", "grant", "20"),
        (str(w.alice.id), str(a.first_lot_id), "promo", "void", "-10"),
    ]
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d)", row["created_at"]), row
        assert datetime.fromisoformat(row["created_at"]).utcoffset() is not None
        assert row["guild_id"] == str(w.guild.id)
        assert row["actor_id"] == str(w.mod.id)
        assert row["order_id"] == ""
    assert rows[0]["created_at"] == "2026-11-26T12:00:00+00:00"
    assert rows[0]["reason"].startswith("'=")  # no formula injection into spreadsheets
    assert rows[2]["reason"] == "oops"


async def test_no_text_cell_of_the_export_starts_a_formula(world: World):
    """Issue 8 item 10: every cell of every CSV is defused. The amount column stays a plain signed
    integer (SPEC §6): a number such as -10 is no formula."""
    w = world
    audit = AuditRecord(w.mod.id, "settings")
    await w.ledger.store.write(update_settings, w.guild.id, {"currency_symbol": "=A"}, audit, 0)
    for reason in ("=HYPERLINK(evil)", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "＝1+1"):
        await grant(w, w.alice, 30, reason=reason)
    await w.run(w.mod, "credits revoke", member=w.alice.id, amount="10", reason="-oops")
    message = await answer(w, await w.run(w.mod, "credits export"))
    (attachment,) = message.attachments
    rows = list(csv.reader(io.StringIO(attachment.data.decode("utf-8"))))
    amount = rows[0].index("amount")
    for row in rows[1:]:
        assert re.fullmatch(r"-?\d+", row[amount]), row
        texts = [value for i, value in enumerate(row) if i != amount]
        assert not [v for v in texts if v.startswith(("=", "+", "-", "@", "\t", "\r", "＝"))], row
    reason = rows[0].index("reason")
    assert [row[reason] for row in rows[1:]][-1] == "'-oops"
    assert "-10" in [row[amount] for row in rows]


async def test_export_and_report_of_an_empty_ledger(world: World):
    w = world
    message = await answer(w, await w.run(w.mod, "credits export"))
    (attachment,) = message.attachments
    assert attachment.data.decode().splitlines() == [EXPORT_HEADER]
    report = await answer(w, await w.run(w.mod, "credits report"))
    assert "No promo codes yet." in text_of(report)
    assert "0 credits" in text_of(report)
    assert report.attachments[0].data[:8] == PNG_MAGIC


# report ------------------------------------------------------------------------------------------------
async def test_report_is_an_embed_with_a_png_chart(world: World):
    w = world
    await grant(w, w.alice, 30, expires="3d")
    await grant(w, w.alice, 40, expires="20d")
    await grant(w, w.bob, 25, kind="gift")
    await w.ledger.create_promo(w.guild.id, "SPRING-5", 5, actor_id=w.mod.id, key=None)
    await w.ledger.redeem(w.guild.id, w.bob.id, "spring-5", key=None)
    rec = await w.run(w.mod, "credits report")
    message = await answer(w, rec)
    assert message.ephemeral
    (embed,) = message.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Outstanding promotional"] == "75 credits"
    assert fields["Outstanding gift"] == "25 credits"
    assert fields["Expiring in 7 days"] == "30 credits"
    assert fields["Expiring in 30 days"] == "70 credits"
    assert "`SPRING-5`: 1" in fields["Redemptions per promo code"]
    assert "granted" in fields["Last 4 weeks"]
    (chart,) = message.attachments
    assert chart.filename == "report.png"
    assert chart.data[:8] == PNG_MAGIC
    assert embed["image"]["url"].endswith("report.png")


# schedule ----------------------------------------------------------------------------------------------
async def test_schedule_add_list_remove(world: World):
    w = world
    await set_audit(w)
    rec = await w.run(
        w.mod,
        "credits schedule add",
        role=w.vip_role.id,
        amount="100",
        rule="0 12 1 * *",
        valid_days=30,
        categories="games",
        kind="gift",
    )
    assert rec.ephemeral
    text = text_of(rec)
    assert "Recurring grant created" in text
    assert f"<@&{w.vip_role.id}>" in text
    assert "100 credits" in text
    (schedule,) = await w.ledger.schedules(w.guild.id)
    assert (schedule.amount, schedule.rule, schedule.valid_days, schedule.kind) == (100, "0 12 1 * *", 30, "gift")
    assert schedule.next_run_at == to_unix(datetime.fromisoformat("2026-12-01T12:00:00+00:00"))

    listed = await w.run(w.mod, "credits schedule list")
    assert f"`#{schedule.id}`" in text_of(listed)
    assert "0 12 1 * *" in text_of(listed)

    removed = await w.run(w.mod, "credits schedule remove", id=schedule.id)
    assert f"`#{schedule.id}`" in text_of(removed)
    assert "stopped" in text_of(removed)
    assert await w.ledger.schedules(w.guild.id) == [] or not any(s.active for s in await w.ledger.schedules(w.guild.id))
    empty = await w.run(w.mod, "credits schedule list")
    assert "None yet" in text_of(empty)
    titles = audit_texts(w)
    assert any("Recurring grant created" in t for t in titles)
    assert any("Recurring grant removed" in t for t in titles)


BAD_SCHEDULES = [
    ({"rule": "every day"}, "cron rule"),
    ({"rule": "61 * * * *"}, "cron rule"),
    ({"rule": "0 12 31 2 *"}, "never fires"),
    ({"amount": "0"}, "amount"),
    ({"amount": "2.5"}, "decimal"),
]


async def test_schedule_add_bad_input_writes_nothing(world: World):
    w = world
    for options, expect in BAD_SCHEDULES:
        given = {"role": w.vip_role.id, "amount": "10", "rule": "0 12 1 * *", **options}
        await refused(w, w.mod, "credits schedule add", expect, **given)
    assert await w.ledger.schedules(w.guild.id) == []


async def test_schedule_remove_unknown_is_refused(world: World):
    w = world
    await refused(w, w.mod, "credits schedule remove", "no recurring grant #42", id=42)


# the audit channel ---------------------------------------------------------------------------------------
async def test_every_credits_action_is_posted_once_to_the_audit_channel(world: World):
    w = world
    lot = await grant(w, w.alice, 30, expires="5d")
    assert audit_texts(w) == []  # no audit channel yet: nothing posted
    await set_audit(w)
    posted = len(audit_texts(w))
    steps = [
        ("credits grant", {"member": w.alice.id, "amount": "10", "reason": "Helpful"}, "Credit granted"),
        ("credits revoke", {"member": w.alice.id, "amount": "5", "reason": "Typo"}, "Credit revoked"),
        ("credits extend", {"lot": lot.first_lot_id, "expires": "40d"}, "Expiry changed"),
        ("credits export", {}, "Ledger exported"),
    ]
    for command, options, title in steps:
        await answer(w, await w.run(w.mod, command, **options))
        await w.fake.wait_for(lambda n=posted: len(audit_texts(w)) == n + 1, what=f"the audit post of /{command}")
        posted += 1
        message = w.fake.channel_messages(w.audit_channel_id)[-1]
        (embed,) = message.embeds
        assert embed["title"] == title
        assert str(w.mod.id) in embed["footer"]["text"]  # the actor
    assert "Helpful" in audit_texts(w)[-4]
    assert "Typo" in audit_texts(w)[-3]
