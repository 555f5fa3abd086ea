"""Moderators' /credits at the worst case the bot accepts, through the strict fake Discord: grant,
grant-role, revoke, extend, inspect, export, report and schedule add / list / remove, and the lot
autocomplete, with the longest currency, the largest amounts, ten 50-character categories,
200-character reasons, the longest cron rules and hundreds (or thousands) of lots, members,
entries, promo codes and recurring grants. The audit channel is set, so every audit post is
exercised too.

The strict fake refuses (and the `world` fixture then fails the test on) any message over one of
Discord's limits; these tests also check what the moderator sees: totals right, and a visible
"… and N more" (or a page button) wherever something is left out. Then cron rules that are too
long or strange: a clear refusal that quotes back only a short piece. Then the truthful-outcome
tests of /credits grant and grant-role: a grant whose answer Discord refuses, times out or whose
token has expired tells the moderator what was done, with an error id, never "nothing was
changed"; and an error before the write still says so."""

from __future__ import annotations

import csv
import io
import re

import pytest

from bot.discordbot import fit
from bot.domain import limits, recurrence
from bot.domain.errors import InvalidInput
from bot.domain.money import MAX_AMOUNT, Currency, format_amount
from fakediscord import InvalidInvocation, Member
from tests.e2e import World, button, db_dump, refused, text_of

CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
FOLLOWUP = r"^/webhooks/\d+/[^/]+$"
NAME = "Galactic gold crowns"  # the longest currency name: 20 characters
# Ten distinct categories of the longest length, and the option text that names them all.
CATEGORIES = [(f"category-{i:02d}-" + "x" * limits.CATEGORY)[: limits.CATEGORY] for i in range(10)]
CATEGORY_TEXT = ", ".join(CATEGORIES)
# With a symbol the name is not shown: the longest money has no symbol.
LONGEST_MONEY = "10,000,000,000.00 Galactic gold crowns"
# A valid rule of exactly limits.CRON_RULE characters: minutes 0-33 listed one by one.
LONGEST_RULE = ",".join(str(n) for n in range(34)) + " 12 1 * *"

assert len(NAME) == 20
assert len(CATEGORIES) == limits.CATEGORIES_PER_LIST
assert {len(c) for c in CATEGORIES} == {limits.CATEGORY}
assert len(CATEGORY_TEXT) <= limits.CATEGORIES_INPUT
assert len(LONGEST_RULE) == limits.CRON_RULE


def reason(n: int) -> str:
    """A distinct reason of the longest length the ledger accepts."""
    return (f"reason {n:04d}: " + "a long explanation " * 20)[: limits.REASON]


async def longest_currency(w: World) -> Currency:
    """2 decimals and the longest name (the longest formatted money), and the audit channel set, so
    every audit post a command makes is exercised."""
    settings = await w.ledger.update_settings(
        w.guild.id,
        actor_id=w.mod.id,
        key=None,
        currency_name=NAME,
        decimals=2,
        audit_channel_id=w.audit_channel_id,
    )
    assert format_amount(MAX_AMOUNT, settings.currency) == LONGEST_MONEY
    return settings.currency


def audit_posts(w: World) -> list[dict]:
    """The audit channel's embeds, oldest first."""
    return [m.embeds[0] for m in w.fake.channel_messages(w.audit_channel_id)]


async def audit_post(w: World, title: str) -> dict:
    """The one audit post with this title (waited for: it is sent after the answer)."""
    await w.fake.wait_for(lambda: any(e["title"] == title for e in audit_posts(w)), what=f"the audit post {title!r}")
    (embed,) = [e for e in audit_posts(w) if e["title"] == title]
    return embed


def fields_of(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields") or []}


def embed_size(embed: dict) -> int:
    """Characters Discord counts towards a message's 6,000."""
    size = len(embed.get("title") or "") + len(embed.get("description") or "")
    size += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields") or [])
    size += len((embed.get("footer") or {}).get("text") or "") + len((embed.get("author") or {}).get("name") or "")
    return size


async def many_lots(w: World, member: Member, count: int, **options) -> list[int]:
    """``count`` lots of the longest kind (largest amount, ten long categories, longest reason,
    one-time, expiring) for ``member``; returns their ids."""
    ids = []
    for n in range(count):
        options.setdefault("categories", CATEGORIES)
        result = await w.ledger.grant(
            w.guild.id,
            member.id,
            MAX_AMOUNT,
            actor_id=w.mod.id,
            key=None,
            expires=f"{30 + n}d",
            one_time=True,
            reason=reason(n),
            **options,
        )
        ids.append(result.first_lot_id)
    return ids


# --- pages of whole lines (cogs/fit.pack_pages) ---------------------------------------------------


def test_pack_pages_keeps_every_line_whole_and_in_order():
    lines = [f"line {n:03d} " + "x" * (n % 7) * 30 for n in range(200)]
    pages = fit.pack_pages(lines, 500, per_page=10)
    assert all(len(page) <= 500 and len(page.splitlines()) <= 10 for page in pages)
    assert [line for page in pages for line in page.splitlines()] == lines  # none lost, none cut
    assert len(fit.pack_pages(["a"] * 25, 4096, per_page=10)) == 3
    (only,) = fit.pack_pages(["y" * 5000], 4096)  # one line too long for any page: cut visibly
    assert len(only) == 4096
    assert only.endswith("…")
    assert fit.pack_pages([], 100) == []
    assert fit.pack_pages(["ab", "cd", "ef"], 6, separator=", ") == ["ab, cd", "ef"]


# --- the options' limits ----------------------------------------------------------------------------


OPTION_LIMITS = [
    ("credits grant", "amount", limits.AMOUNT_INPUT),
    ("credits grant", "expires", limits.WHEN_INPUT),
    ("credits grant", "starts", limits.WHEN_INPUT),
    ("credits grant", "categories", limits.CATEGORIES_INPUT),
    ("credits grant", "reason", limits.REASON),
    ("credits grant-role", "amount", limits.AMOUNT_INPUT),
    ("credits grant-role", "expires", limits.WHEN_INPUT),
    ("credits grant-role", "starts", limits.WHEN_INPUT),
    ("credits grant-role", "categories", limits.CATEGORIES_INPUT),
    ("credits grant-role", "reason", limits.REASON),
    ("credits revoke", "amount", limits.AMOUNT_INPUT),
    ("credits revoke", "reason", limits.REASON),
    ("credits extend", "expires", limits.WHEN_INPUT),
    ("credits extend", "reason", limits.REASON),
    ("credits schedule add", "amount", limits.AMOUNT_INPUT),
    ("credits schedule add", "rule", limits.CRON_RULE),
    ("credits schedule add", "categories", limits.CATEGORIES_INPUT),
]


def synced_option(w: World, path: str, name: str) -> dict:
    (command,) = [c for c in w.fake.synced_commands() if c["name"] == "credits"]
    options = command["options"]
    for part in path.split()[1:]:
        (options,) = [o.get("options", []) for o in options if o["name"] == part]
    (option,) = [o for o in options if o["name"] == name]
    return option


async def test_every_free_text_option_has_the_ledgers_limit_as_max_length(world: World):
    w = world
    for path, name, limit in OPTION_LIMITS:
        option = synced_option(w, path, name)
        assert option.get("max_length") == limit, (path, name, option)
    assert "up to 10" in synced_option(w, "credits grant", "categories")["description"]
    assert "up to 200 characters" in synced_option(w, "credits grant", "reason")["description"]
    # Discord's client stops the typing there: one character more is never sent to the bot.
    before = db_dump(w)
    too_long = {
        "amount": "1" * (limits.AMOUNT_INPUT + 1),
        "reason": "x" * (limits.REASON + 1),
        "categories": "c" * (limits.CATEGORIES_INPUT + 1),
        "expires": "1" * (limits.WHEN_INPUT + 1),
    }
    for name, value in too_long.items():
        options = {"member": w.alice.id, "amount": "5", name: value}
        with pytest.raises(InvalidInvocation, match="length"):
            await w.run(w.mod, "credits grant", **options)
    with pytest.raises(InvalidInvocation, match="length"):
        await w.run(w.mod, "credits schedule add", role=w.vip_role.id, amount="5", rule="1" * (limits.CRON_RULE + 1))
    assert db_dump(w) == before


async def test_eleven_categories_are_refused_with_the_count(world: World):
    w = world
    eleven = ", ".join(f"cat{i}" for i in range(limits.CATEGORIES_PER_LIST + 1))
    await refused(w, w.mod, "credits grant", "At most 10 categories", member=w.alice.id, amount="5", categories=eleven)
    await refused(
        w,
        w.mod,
        "credits schedule add",
        "At most 10 categories",
        role=w.vip_role.id,
        amount="5",
        rule="0 12 1 * *",
        categories=eleven,
    )


# --- grant ------------------------------------------------------------------------------------------


async def test_grant_with_every_option_at_its_longest(world: World):
    w = world
    await longest_currency(w)
    rec = await w.run(
        w.mod,
        "credits grant",
        member=w.alice.id,
        amount="10,000,000,000.00",
        expires="2027-12-31T18:00:00+02:00",
        starts="2026-12-31T18:00:00+02:00",
        categories=CATEGORY_TEXT,
        one_time=True,
        kind="promo",
        reason=reason(1),
    )
    text = rec.content
    assert rec.ephemeral
    assert len(text) <= 2000
    assert text.startswith(f"Granted {LONGEST_MONEY} of promo credit to <@{w.alice.id}>.")
    (lot,) = await w.ledger.lots(w.guild.id, w.alice.id)
    assert lot.original == MAX_AMOUNT
    assert lot.categories == tuple(CATEGORIES)
    assert lot.memo == reason(1)
    assert f"`#{lot.id}`" in text
    assert "one-time" in text
    shown = [c for c in CATEGORIES if c in text]
    assert shown, text  # at least the first…
    assert shown == CATEGORIES[: len(shown)], text  # in order…
    if len(shown) < len(CATEGORIES):  # …then how many more
        assert f"… and {len(CATEGORIES) - len(shown)} more" in text, text
    post = await audit_post(w, "Credit granted")
    assert post["description"] == text  # the audit post repeats the answer, whole
    assert fields_of(post) == {"Reason": reason(1)}


# --- grant-role -------------------------------------------------------------------------------------


async def test_grant_role_to_two_thousand_members_says_how_many(world: World):
    w = world
    await longest_currency(w)
    count = 2000
    for n in range(count):
        w.fake.add_member(w.guild.id, name=f"member-{n:04d}", roles=[w.vip_role.id])
    w.fake.add_member(w.guild.id, name="a-bot", roles=[w.vip_role.id], bot=True)
    vip = w.bot.get_guild(w.guild.id).get_role(w.vip_role.id)
    await w.fake.wait_for(lambda: len(vip.members) == count + 1, timeout=30, what="the role in the member cache")

    rec = await w.run(
        w.mod,
        "credits grant-role",
        role=w.vip_role.id,
        amount="10,000,000,000.00",
        expires="2027-12-31",
        starts="1d",
        categories=CATEGORY_TEXT,
        one_time=True,
        kind="gift",
        reason=reason(2),
    )
    message = await rec.wait_for_followup(1, timeout=30)
    assert message.ephemeral
    assert len(message.content) <= 2000
    assert message.content.startswith(
        f"Granted {LONGEST_MONEY} of gift credit to each of the {count} members of <@&{w.vip_role.id}>"
    )
    report = await w.ledger.report(w.guild.id)
    assert report.outstanding_gift == 0  # not usable yet: they start tomorrow
    lots = db_dump(w)["lots"]
    assert len(lots) == count
    post = await audit_post(w, "Credit granted to a role")
    assert post["description"] == message.content
    assert fields_of(post) == {"Reason": reason(2)}

    await refused(
        w,
        w.mod,
        "credits grant-role",
        "At most 10 categories",
        role=w.vip_role.id,
        amount="5",
        categories=", ".join(f"cat{i}" for i in range(11)),
    )


# --- revoke -----------------------------------------------------------------------------------------


async def test_revoke_over_hundreds_of_lots_lists_some_and_says_how_many_more(world: World):
    w = world
    await longest_currency(w)
    count = 400
    ids = [
        (await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key=None, reason=reason(n))).first_lot_id
        for n in range(count)
    ]
    rec = await w.run(w.mod, "credits revoke", member=w.alice.id, amount=f"{count}.00", reason=reason(3))
    text = rec.content
    assert rec.ephemeral
    assert len(text) <= 1000, len(text)
    assert text.startswith(f"Revoked {count}.00 Galactic gold crowns from <@{w.alice.id}> (lots `#")
    shown = [int(n) for n in re.findall(r"`#(\d+)`", text)]
    match = re.search(r"`, … and (\d+) more\)\.$", text)
    assert match, text
    assert shown == ids[: len(shown)]
    assert len(shown) + int(match.group(1)) == count  # every lot counted
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 0
    post = await audit_post(w, "Credit revoked")
    assert post["description"] == text
    assert fields_of(post) == {"Reason": reason(3)}


async def test_revoke_and_extend_of_one_lot_at_the_longest(world: World):
    w = world
    await longest_currency(w)
    (lot_id,) = await many_lots(w, w.alice, 1)
    rec = await w.run(w.mod, "credits extend", lot=lot_id, expires="2099-12-31T23:59:59+14:00", reason=reason(4))
    assert rec.ephemeral
    assert f"Lot `#{lot_id}` of <@{w.alice.id}> now expires <t:" in rec.content
    assert fields_of(await audit_post(w, "Expiry changed")) == {"Reason": reason(4)}
    rec = await w.run(w.mod, "credits revoke", member=w.alice.id, lot=lot_id, reason=reason(5))
    assert rec.content == f"Revoked {LONGEST_MONEY} from <@{w.alice.id}> (lots `#{lot_id}`)."
    assert fields_of(await audit_post(w, "Credit revoked")) == {"Reason": reason(5)}


async def test_lot_autocomplete_with_hundreds_of_lots(world: World):
    w = world
    await longest_currency(w)
    ids = await many_lots(w, w.alice, 60, kind="gift", categories=None)
    choices = await w.fake.autocomplete(
        w.guild.id, w.mod.id, "credits revoke", {"member": w.alice.id, "reason": "x"}, focused="lot"
    )
    assert len(choices) == 25
    assert {c["value"] for c in choices} <= set(ids)
    assert all(1 <= len(c["name"]) <= 100 for c in choices)
    assert choices[0]["name"].startswith(f"#{choices[0]['value']} · {LONGEST_MONEY} gift · expires ")


# --- inspect ----------------------------------------------------------------------------------------


async def test_inspect_with_hundreds_of_lots_and_long_reasons(world: World):
    w = world
    await longest_currency(w)
    longest_name = w.fake.add_member(w.guild.id, name="n" * 32)
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_member(longest_name.id) is not None)
    count = 300
    ids = await many_lots(w, longest_name, count)
    for n, lot_id in enumerate(ids[:5]):  # partly revoked lots: "X of Y", and entries with reasons
        await w.ledger.revoke(
            w.guild.id, longest_name.id, reason=reason(1000 + n), actor_id=w.mod.id, key=None, lot_id=lot_id, amount=1
        )
    entries = count + 5
    pages = -(-entries // 10)

    rec = await w.run(w.mod, "credits inspect", member=longest_name.id)
    (embed,) = rec.embeds
    assert embed_size(embed) <= 6000
    assert len(embed["fields"]) <= 25
    assert embed["title"] == "Credit of " + "n" * 32
    fields = fields_of(embed)
    currency = (await w.ledger.settings(w.guild.id)).currency
    assert fields["Promotional"] == format_amount(count * MAX_AMOUNT - 5, currency)
    lots = fields["Active lots"]
    assert len(lots) <= 1024
    shown = re.findall(r"`#(\d+)`", lots)
    match = re.search(r"… and (\d+) more$", lots)
    assert match, lots
    assert 0 < len(shown) < count, lots
    assert len(shown) + int(match.group(1)) == count, lots
    # The ledger page: all ten newest entries, each with its whole reason, over as many fields as needed.
    ledger = [f for f in embed["fields"] if f["name"] == f"Ledger (page 1 of {pages})" or f["name"] == "\u200b"]
    ledger = [f for f in ledger if f["value"] != "\u200b"]
    page_text = "\n".join(f["value"] for f in ledger)
    assert all(len(f["value"]) <= 1024 for f in ledger)
    assert len(page_text.splitlines()) == 10
    for n in range(5):
        assert reason(1000 + n) in page_text  # the five revocations are the newest entries
    for n in range(count - 5, count):
        assert reason(n) in page_text

    # Every page fits too, up to the last one.
    last = rec
    next_id = button(rec, "pager:next:")
    for page in range(2, pages + 1):
        last = await w.fake.click(last.message if page > 2 else rec, next_id, w.mod.id)
        (embed,) = last.message.embeds
        assert embed_size(embed) <= 6000
        assert any(f["name"] == f"Ledger (page {page} of {pages})" for f in embed["fields"])
    assert reason(0) in text_of(last)  # the oldest entry, on the last page
    assert last.message.component(next_id).get("disabled") is True


# --- export and report ------------------------------------------------------------------------------


async def test_export_of_thousands_of_entries(world: World):
    w = world
    await longest_currency(w)
    members = [w.alice.id, w.bob.id, w.mod.id]
    for n in range(700):
        await w.ledger.grant_many(w.guild.id, members, MAX_AMOUNT, actor_id=w.mod.id, key=None, reason=reason(n))
    rec = await w.run(w.mod, "credits export")
    message = await rec.wait_for_followup(1, timeout=30)
    assert message.content == "The ledger of this server: 2100 entries."
    (attachment,) = message.attachments
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode("utf-8"))))
    assert len(rows) == 2100
    assert rows[-1]["reason"] == reason(699)
    assert (await audit_post(w, "Ledger exported"))["description"] == "2100 entries"


async def test_report_with_many_promo_codes_and_the_largest_sums(world: World):
    w = world
    await longest_currency(w)
    codes = [f"CODE-{n:02d}-".ljust(32, "X") for n in range(40)]
    for code in codes:
        await w.ledger.create_promo(w.guild.id, code, MAX_AMOUNT, actor_id=w.mod.id, key=None, uses=10)
    for n, code in enumerate(codes[:20]):
        await w.ledger.redeem(w.guild.id, w.alice.id, code, key=None)
        if n < 5:
            await w.ledger.redeem(w.guild.id, w.bob.id, code, key=None)
    await many_lots(w, w.alice, 3)
    rec = await w.run(w.mod, "credits report")
    message = await rec.wait_for_followup(1, timeout=30)
    (embed,) = message.embeds
    assert embed_size(embed) <= 6000
    listed = fields_of(embed)["Redemptions per promo code"]
    assert len(listed) <= 1024
    lines = listed.splitlines()
    assert lines[:5] == [f"`{code}`: 2" for code in codes[:5]]  # the most redeemed first
    assert lines[5:15] == [f"`{code}`: 1" for code in codes[5:15]]
    assert lines[15:] == ["… and 25 more: see /promo list"]
    assert fields_of(embed)["Outstanding promotional"].endswith(" Galactic gold crowns")
    assert message.attachments[0].data[:8] == b"\x89PNG\r\n\x1a\n"


# --- schedules --------------------------------------------------------------------------------------


async def test_schedule_add_and_remove_at_the_longest(world: World):
    w = world
    await longest_currency(w)
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, timezone="America/Argentina/ComodRivadavia")
    rec = await w.run(
        w.mod,
        "credits schedule add",
        role=w.vip_role.id,
        amount="10,000,000,000.00",
        rule=LONGEST_RULE,
        valid_days=36500,
        categories=CATEGORY_TEXT,
        kind="gift",
    )
    text = rec.content
    assert rec.ephemeral
    assert len(text) <= 2000
    (schedule,) = await w.ledger.schedules(w.guild.id)
    assert schedule.rule == LONGEST_RULE
    assert schedule.categories == tuple(CATEGORIES)
    assert text.startswith(f"Recurring grant created: `#{schedule.id}` <@&{w.vip_role.id}> gets **{LONGEST_MONEY}**")
    assert f"on `{LONGEST_RULE}`" in text
    assert CATEGORIES[-1] in text
    assert (await audit_post(w, "Recurring grant created"))["description"] == text
    removed = await w.run(w.mod, "credits schedule remove", id=schedule.id)
    assert removed.content == f"Recurring grant `#{schedule.id}` to <@&{w.vip_role.id}> stopped."
    assert (await audit_post(w, "Recurring grant removed"))["description"] == removed.content


async def test_schedule_list_of_hundreds_pages_through_every_one(world: World):
    w = world
    await longest_currency(w)
    count = 120
    for n in range(count):
        await w.ledger.add_schedule(
            w.guild.id,
            w.vip_role.id,
            MAX_AMOUNT,
            LONGEST_RULE,
            actor_id=w.mod.id,
            key=None,
            valid_days=36500,
            categories=CATEGORIES if n % 2 else None,
            kind="gift",
        )
    schedules = await w.ledger.schedules(w.guild.id)
    # Another guild's recurring grants are not listed.
    await w.ledger.add_schedule(w.guild.id + 1, 5, 5, "0 12 1 * *", actor_id=w.mod.id, key=None)

    rec = await w.run(w.mod, "credits schedule list")
    seen: list[int] = []
    message = rec.message
    next_id = button(rec, "pager:next:")
    pages = None
    while True:
        (embed,) = message.embeds
        assert len(embed["description"]) <= 4096
        assert embed_size(embed) <= 6000
        lines = embed["description"].splitlines()
        assert 1 <= len(lines) <= 10
        seen += [int(re.match(r"`#(\d+)`", line).group(1)) for line in lines]
        footer = re.fullmatch(r"Page (\d+) of (\d+) · 120 recurring grants", embed["footer"]["text"])
        assert footer, embed["footer"]
        pages = int(footer.group(2))
        if message.component(next_id).get("disabled"):
            break
        message = (await w.fake.click(message, next_id, w.mod.id)).message
    assert seen == [s.id for s in schedules]  # each one once, in order, none cut
    assert int(footer.group(1)) == pages > count // 10


# --- cron rules: too long, too many digits, strange digits ------------------------------------------


def short_echo(message: str, given: str) -> None:
    """The refusal quotes back at most a short piece of what was typed."""
    assert len(message) < 500, message
    longest_run = max((len(m) for m in re.findall(r"[^\s`]+", message)), default=0)
    assert longest_run <= recurrence.ECHO + 40, message
    assert given not in message or len(given) <= recurrence.ECHO


HUGE_RULES = [
    "0 12 1 * " + "1" * 5000,  # a 5,000-digit weekday: int() refuses more than 4,300 digits
    "1" * 5000 + " 12 1 * *",
    "0 12 " + "9" * 5000 + " * *",
    "0 12 * * 1-" + "7" * 5000,
    "x" * 10_000,
    " ".join(["1"] * 5000),  # 5,000 fields
    "0 12 1 * *" + "," * 10_000,
]


@pytest.mark.parametrize("rule", HUGE_RULES, ids=range(len(HUGE_RULES)))
def test_a_rule_too_long_is_refused_before_it_is_parsed(rule: str):
    with pytest.raises(InvalidInput) as refusal:
        recurrence.next_run(rule, "UTC", 0)
    message = str(refusal.value)
    assert f"at most {limits.CRON_RULE} characters" in message
    short_echo(message, rule)


def test_the_weekday_reader_refuses_thousands_of_digits_itself():
    """Even past the length check (as before it existed), no number of digits crashes it."""
    for field in ("1" * 5000, "1-" + "7" * 5000, "*/" + "2" * 5000, "1/" + "3" * 5000, "٣", "1" * 4):
        with pytest.raises(InvalidInput) as refusal:
            recurrence._weekday_names(field)
        short_echo(str(refusal.value), field)


STRANGE_RULES = [
    ("٠ ١٢ * * *", "٠"),  # Arabic-Indic digits: int() would read them
    ("0 12 * * ٣", "٣"),
    ("０ 12 * * *", "０"),  # full-width
    ("𝟎 12 * * *", "𝟎"),  # mathematical bold
    ("0 12 * * ²", "²"),  # superscript
    ("0 12 ௧ * *", "௧"),  # Tamil
    ("0 12 * * 1\u0000", "1\ufffd"),  # unprintable: shown, not passed on
    ("0 12 * * `mon`", "'mon'"),  # no backtick breaks out of the quote
    ("9" * 92 + " * * * *", "9" * (recurrence.ECHO - 1) + "…"),  # the longest malformed rule Discord sends
    ("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32", "it has 32 fields"),
    ("0 12 * * ,", "`,`"),
    ("0 12 * * 1#2", "1#2"),
]


async def test_strange_rules_are_refused_clearly_through_discord(world: World):
    w = world
    for rule, shown in STRANGE_RULES:
        assert len(rule) <= limits.CRON_RULE
        text = await refused(w, w.mod, "credits schedule add", "cron", role=w.vip_role.id, amount="5", rule=rule)
        assert shown in text, (rule, text)
        assert "0 12 1 * *" in text  # an example of what works
        short_echo(text, rule)
    assert await w.ledger.schedules(w.guild.id) == []


async def test_the_ledger_refuses_a_ten_thousand_character_rule_and_writes_nothing(world: World):
    w = world
    before = db_dump(w)
    for rule in HUGE_RULES:
        with pytest.raises(InvalidInput, match=f"at most {limits.CRON_RULE} characters"):
            await w.ledger.add_schedule(w.guild.id, w.vip_role.id, 5, rule, actor_id=w.mod.id, key="k")
    assert db_dump(w) == before


# --- what the bot says about a committed grant is true ----------------------------------------------


def told_what_was_done(text: str, done: str) -> None:
    assert done in text, text
    assert re.search(r"error id `[0-9a-f]{8}`", text), text
    assert "There is no need to do it again." in text
    assert "nothing was changed" not in text.casefold()


def callback_statuses(w: World, rec) -> list[int]:
    return [r.status for r in w.fake.requests_to("POST", rf"^/interactions/{rec.id}/[^/]+/callback$")]


async def test_a_grant_whose_answer_is_refused_says_it_was_saved(world: World):
    w = world
    await longest_currency(w)
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(
        w.mod, "credits grant", member=w.alice.id, amount="12.50", categories=CATEGORY_TEXT, reason=reason(6)
    )
    await rec.wait_until(lambda r: r.message is not None)
    assert rec.ephemeral
    assert callback_statuses(w, rec) == [400, 200]
    told_what_was_done(rec.content, f"Granted 12.50 Galactic gold crowns of promo credit to <@{w.alice.id}>.")
    assert len(rec.content) <= 2000
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).promo == 1250  # committed, once
    assert len(await w.ledger.lots(w.guild.id, w.alice.id)) == 1
    assert fields_of(await audit_post(w, "Credit granted")) == {"Reason": reason(6)}  # posted all the same
    assert w.fake.dms(w.mod.id) == []


async def test_a_grant_whose_answer_times_out_is_told_by_dm(world: World):
    w = world
    w.fake.interaction_timeout = 0
    rec = await w.run(w.mod, "credits grant", member=w.alice.id, amount="40", reason=reason(7))
    await w.fake.wait_for(lambda: len(w.fake.dms(w.mod.id)) == 1, what="the DM saying what was done")
    assert rec.rejection_codes == [10062]
    assert not rec.acknowledged
    (dm,) = w.fake.dms(w.mod.id)
    told_what_was_done(dm.content, f"Granted 40 credits of promo credit to <@{w.alice.id}>.")
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).promo == 40
    assert len(await w.ledger.lots(w.guild.id, w.alice.id)) == 1


async def role_of_two(w: World) -> None:
    for member in (w.alice, w.bob):
        w.fake.set_member_roles(w.guild.id, member.id, [w.vip_role.id])
    vip = w.bot.get_guild(w.guild.id).get_role(w.vip_role.id)
    await w.fake.wait_for(lambda: len(vip.members) == 2, what="role members in the cache")


async def test_a_grant_role_whose_followup_is_refused_says_it_was_saved(world: World):
    w = world
    await role_of_two(w)
    w.fake.fail_next("POST", FOLLOWUP, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, "credits grant-role", role=w.vip_role.id, amount="25", reason=reason(8))
    message = await rec.wait_for_followup(1)
    assert message.ephemeral
    told_what_was_done(message.content, f"to each of the 2 members of <@&{w.vip_role.id}>")
    assert [r.status for r in w.fake.requests_to("POST", FOLLOWUP)] == [400, 200]
    for member in (w.alice, w.bob):
        assert (await w.ledger.balance(w.guild.id, member.id)).promo == 25
        assert len(await w.ledger.lots(w.guild.id, member.id)) == 1
    assert w.fake.dms(w.mod.id) == []


async def test_a_grant_role_whose_token_expired_is_told_by_dm(world: World):
    w = world
    await role_of_two(w)
    w.fake.interaction_token_lifetime = 0
    rec = await w.run(w.mod, "credits grant-role", role=w.vip_role.id, amount="25", reason=reason(9))
    assert rec.deferred
    await w.fake.wait_for(lambda: len(w.fake.dms(w.mod.id)) == 1, what="the DM saying what was done")
    (dm,) = w.fake.dms(w.mod.id)
    done = f"Granted 25 credits of promo credit to each of the 2 members of <@&{w.vip_role.id}>"
    told_what_was_done(dm.content, done)
    assert 401 in [r.status for r in w.fake.requests_to("POST", FOLLOWUP)]
    for member in (w.alice, w.bob):
        assert (await w.ledger.balance(w.guild.id, member.id)).promo == 25
        assert len(await w.ledger.lots(w.guild.id, member.id)) == 1


async def test_an_error_before_the_write_still_says_nothing_was_changed(world: World, monkeypatch):
    w = world
    # A user's mistake: the refusal as before, no error id, nothing written.
    await refused(w, w.mod, "credits grant", "amount", member=w.alice.id, amount="abc")
    await role_of_two(w)
    await refused(w, w.mod, "credits grant-role", "amount", role=w.vip_role.id, amount="0")
    # The bot's own error before anything was written: "nothing was changed" is true, and said.
    before = db_dump(w)

    async def broken(*args, **kwargs):
        raise RuntimeError("the store is on fire")

    monkeypatch.setattr(w.bot.ledger, "grant", broken)
    rec = await w.run(w.mod, "credits grant", member=w.alice.id, amount="5")
    assert rec.ephemeral
    assert "nothing was changed" in rec.content
    assert re.search(r"Error id `[0-9a-f]{8}`", rec.content)
    assert db_dump(w) == before
