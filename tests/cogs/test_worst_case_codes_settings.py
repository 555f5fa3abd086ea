"""/promo, /giftcard and /settings at the longest inputs and the most rows the bot accepts, through
the strict fake Discord (any request Discord would refuse fails the test at teardown); and what a
moderator is told when the answer to a settings change (or a code) fails after it was saved."""

from __future__ import annotations

import copy
import csv
import io
import re

import pytest

from bot.app.ledger import MAX_GIFT_CARDS
from bot.discordbot import fit
from bot.domain import codes, limits
from bot.domain.money import MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH
from bot.domain.timeparse import MAX_LEAD_TIMES
from cogs.settings import zone_names
from fakediscord import InvalidInvocation
from tests.e2e import World, button, refused, text_of

GIFT_CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\b")
CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
LONG_NAME = "abcdefghijklmnopqrst"  # the longest currency name
LONG_SYMBOL = "€¥£₹₩"  # the longest symbol
MAX_MONEY = "10,000,000,000.00 " + LONG_NAME  # 10^12 minor units with 2 decimals: the longest amount shown
# Ten categories of 50 characters, typed as one option: the longest list a code accepts.
CATEGORIES = [f"{i:02d}-" + "c" * (limits.CATEGORY - 3) for i in range(limits.CATEGORIES_PER_LIST)]
PAGE_FOOTER = re.compile(r"Page (\d+) of (\d+)")

assert len(LONG_NAME) == MAX_NAME_LENGTH
assert len(LONG_SYMBOL) == MAX_SYMBOL_LENGTH
assert len(", ".join(CATEGORIES)) <= limits.CATEGORIES_INPUT


# helpers -------------------------------------------------------------------------------------------
async def longest_currency(w: World, symbol: str = "") -> None:
    await w.ledger.update_settings(
        w.guild.id, actor_id=w.mod.id, key=None, currency_name=LONG_NAME, currency_symbol=symbol, decimals=2
    )


async def set_audit(w: World) -> None:
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, audit_channel_id=w.audit_channel_id)


async def audit_post(w: World, title: str, n: int = 1) -> dict:
    """The n-th audit post with this title (waits for it)."""

    def posts() -> list[dict]:
        return [e for m in w.fake.channel_messages(w.audit_channel_id) for e in m.embeds if e.get("title") == title]

    await w.fake.wait_for(lambda: len(posts()) >= n, what=f"audit post {title!r}")
    return posts()[n - 1]


def promo_code(i: int) -> str:
    """A distinct code of the longest length (32)."""
    code = f"LONG-{i:04d}-" + "X" * codes.PROMO_MAX_LENGTH
    return code[: codes.PROMO_MAX_LENGTH]


def footer_page(embed: dict) -> tuple[int, int]:
    match = PAGE_FOOTER.search(embed["footer"]["text"])
    assert match, embed
    return int(match.group(1)), int(match.group(2))


async def all_pages(w: World, rec) -> list[dict]:
    """Click Next until the last page; returns a copy of every page's embed, first to last (the
    message itself is edited in place)."""
    message = rec.message
    pages = [copy.deepcopy(message.embeds[0])]
    while True:
        page, count = footer_page(pages[-1])
        assert page == len(pages)
        if count == 1 or message.component(button(message, "pager:next:"))["disabled"]:
            assert page == count
            return pages
        clicked = await w.fake.click(message, button(message, "pager:next:"), w.mod.id)
        assert clicked.message is message
        pages.append(copy.deepcopy(message.embeds[0]))


# /promo --------------------------------------------------------------------------------------------
async def test_promo_create_and_disable_with_the_longest_everything(world: World):
    w = world
    await longest_currency(w)
    await set_audit(w)
    code = promo_code(1)
    rec = await w.run(
        w.mod,
        "promo create",
        code=code.lower(),
        amount="10,000,000,000.00",
        uses=10**9,
        per_member=1000,
        redeem_by="52w",
        credit_expires="1y",
        categories=", ".join(CATEGORIES),
        one_time=True,
        role=w.vip_role.id,
        min_member_days=3650,
    )
    assert rec.ephemeral
    assert rec.rejection_codes == []
    content = rec.content
    assert len(content) <= fit.CONTENT
    # Everything the moderator chose is shown, in full: no category is cut.
    assert content.startswith(f"Promo code created: `{code}` · **{MAX_MONEY}** · used 0/1000000000")
    for shown in (
        "1000 per member",
        "redeem by <t:",
        "credit expires <t:",
        "one-time",
        f"<@&{w.vip_role.id}>",
        "members of 3650+ days",
        "only: " + ", ".join(CATEGORIES),
    ):
        assert shown in content, shown
    (promo,) = await w.ledger.promos(w.guild.id)
    assert promo.categories == tuple(CATEGORIES)
    assert promo.amount == 10**12
    posted = await audit_post(w, "Promo code created")
    assert posted["description"] == content

    # Typed loosely, up to the option's 64 characters: found, and the answer names the code.
    loose = " ".join(code.lower())[: limits.REDEEM_INPUT]
    assert codes.normalise_code(loose) == codes.normalise_code(code)
    off = await w.run(w.mod, "promo disable", code=loose)
    assert off.content == f"Promo code `{code}` is disabled; credit already redeemed stays."
    assert not (await w.ledger.promos(w.guild.id))[0].active
    assert (await audit_post(w, "Promo code disabled"))["description"] == off.content


async def test_promo_create_options_carry_the_limits_of_the_ledger(world: World):
    w = world
    (promo,) = [c for c in w.fake.synced_commands() if c["name"] == "promo"]
    create = next(o for o in promo["options"] if o["name"] == "create")
    lengths = {o["name"]: (o.get("min_length"), o.get("max_length")) for o in create["options"]}
    assert lengths["code"] == (codes.PROMO_MIN_LENGTH, codes.PROMO_MAX_LENGTH)
    assert lengths["amount"][1] == limits.AMOUNT_INPUT
    assert lengths["redeem_by"][1] == lengths["credit_expires"][1] == limits.WHEN_INPUT
    assert lengths["categories"][1] == limits.CATEGORIES_INPUT
    disable = next(o for o in promo["options"] if o["name"] == "disable")
    assert disable["options"][0]["max_length"] == limits.REDEEM_INPUT
    # Eleven categories are refused, and nothing is written.
    eleven = ", ".join(f"cat{i}" for i in range(limits.CATEGORIES_PER_LIST + 1))
    await refused(
        w,
        w.mod,
        "promo create",
        f"At most {limits.CATEGORIES_PER_LIST} categories",
        code="TOO-MANY",
        amount="5",
        categories=eleven,
    )


async def test_promo_list_pages_through_many_long_codes(world: World):
    w = world
    await longest_currency(w)
    total = 60
    for i in range(total):
        await w.ledger.create_promo(
            w.guild.id,
            promo_code(i),
            10**12,
            actor_id=w.mod.id,
            key=None,
            uses=10**9,
            per_member=1000,
            redeem_by="52w",
            credit_expires="1y",
            categories=CATEGORIES,
            one_time=True,
            role_id=w.vip_role.id,
            min_member_days=3650,
        )
    for i in range(0, total, 7):
        await w.ledger.disable_promo(w.guild.id, promo_code(i), actor_id=w.mod.id, key=None)
    disabled = len(range(0, total, 7))

    rec = await w.run(w.mod, "promo list")
    assert rec.ephemeral
    pages = await all_pages(w, rec)
    assert len(pages) >= total * 800 // fit.DESCRIPTION  # each line has over 800 characters
    footers = [e["footer"]["text"] for e in pages]
    assert all(f.endswith(f"{total} codes, {total - disabled} active") for f in footers), footers[0]
    lines = [line for e in pages for line in e["description"].split("\n")]
    # Every code once, each line whole (never cut, no "… and N more" needed), in the list's order.
    assert [line.split("`")[1] for line in lines] == [p.code for p in await w.ledger.promos(w.guild.id)]
    assert len(lines) == total
    assert all(line.endswith(("members of 3650+ days", "**disabled**")) for line in lines)
    assert all("only: " + ", ".join(CATEGORIES) in line for line in lines)
    assert sum("**disabled**" in line for line in lines) == disabled
    # Back from the last page to the one before it.
    back = await w.fake.click(rec.message, button(rec.message, "pager:previous:"), w.mod.id)
    assert back.message.embeds[0]["description"] == pages[-2]["description"]


async def test_promo_autocomplete_with_many_long_codes(world: World):
    w = world
    for i in range(40):
        await w.ledger.create_promo(w.guild.id, promo_code(i), 5, actor_id=w.mod.id, key=None)
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "promo disable", {"code": "long"}, focused="code")
    assert len(choices) == fit.CHOICES
    assert all(c["name"] == c["value"] and len(c["value"]) == codes.PROMO_MAX_LENGTH for c in choices)


# /giftcard -----------------------------------------------------------------------------------------
async def test_giftcard_issue_of_the_most_cards_at_the_largest_value(world: World):
    w = world
    await longest_currency(w)
    await set_audit(w)
    rec = await w.run(w.mod, "giftcard issue", amount="10,000,000,000.00", count=MAX_GIFT_CARDS, claim_by="1y")
    assert rec.ephemeral
    assert rec.rejection_codes == []
    assert len(rec.content) <= fit.CONTENT
    assert rec.content.startswith(f"{MAX_GIFT_CARDS} gift card(s) of {MAX_MONEY}. Redeem by <t:")
    assert not GIFT_CODE.search(rec.content)
    (attachment,) = rec.attachments
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
    assert len(rows) == MAX_GIFT_CARDS == len({r["code"] for r in rows})
    assert {r["amount"] for r in rows} == {MAX_MONEY}
    # The audit post names the first 20 cards by their last 4 and counts the rest.
    posted = await audit_post(w, "Gift cards issued")
    assert posted["description"].endswith(f", … and {MAX_GIFT_CARDS - 20} more")
    assert posted["description"].count("…") == 21
    assert not GIFT_CODE.search(posted["description"])
    with pytest.raises(InvalidInvocation):  # Discord's client stops more than 500 (max_value)
        await w.run(w.mod, "giftcard issue", amount="1", count=MAX_GIFT_CARDS + 1)


async def test_giftcard_issue_of_five_cards_shows_every_code_in_the_answer(world: World):
    w = world
    await longest_currency(w)
    rec = await w.run(w.mod, "giftcard issue", amount="10,000,000,000.00", count=5, claim_by="1y")
    assert rec.attachments == []
    assert len(rec.content) <= fit.CONTENT
    issued = GIFT_CODE.findall(rec.content)
    assert len(set(issued)) == 5
    assert sorted(c.last4 for c in await w.ledger.gift_cards(w.guild.id)) == sorted(c[-4:] for c in issued)

    # Void one of them, typed as the list shows it with room to spare (the option allows 9).
    last4 = issued[2][-4:]
    typed = f" …{last4.lower()}  "
    assert len(typed) <= limits.GIFT_LAST4_INPUT
    void = await w.run(w.mod, "giftcard void", last4=typed)
    assert f"`…{last4}` is voided" in void.content


async def test_giftcard_list_pages_thousands_of_cards_of_the_largest_value(world: World):
    w = world
    await longest_currency(w)
    issues = 6
    issued: list[str] = []
    for _ in range(issues):
        cards = await w.ledger.issue_gift_cards(
            w.guild.id, 10**12, MAX_GIFT_CARDS, actor_id=w.mod.id, key=None, claim_by="1y"
        )
        issued += cards.codes
    # Another server's cards never show here.
    await w.ledger.issue_gift_cards(w.guild.id + 1, 10**12, 50, actor_id=w.mod.id, key=None)
    # Redeemed cards have the longest lines: a member mention and a timestamp.
    for code in issued[-30:]:
        await w.ledger.redeem(w.guild.id, w.alice.id, code, key=None)
    total = issues * MAX_GIFT_CARDS

    rec = await w.run(w.mod, "giftcard list")
    assert rec.ephemeral
    first = copy.deepcopy(rec.message.embeds[0])
    page, pages = footer_page(first)
    assert (page, pages) == (1, total // 20)
    assert f"{total} cards, {total - 30} unredeemed · newest first" in first["footer"]["text"]
    lines = first["description"].split("\n")
    assert len(lines) == 20
    cards = await w.ledger.gift_cards(w.guild.id)
    assert lines[0].startswith(f"`#{cards[0].id}` `…{cards[0].last4}` {MAX_MONEY} · redeemed by <@{w.alice.id}> <t:")
    assert all(" · redeemed by " in line for line in lines)

    embeds = await all_pages(w, rec)
    assert len(embeds) == pages
    assert embeds[0] == first
    shown = [line.split("`")[1] for e in embeds for line in e["description"].split("\n")]
    assert shown == [f"#{c.id}" for c in cards]  # every card once, newest first
    last = embeds[-1]["description"].split("\n")[-1]
    assert last.startswith(f"`#{cards[-1].id}` `…{cards[-1].last4}` {MAX_MONEY} · unredeemed · claim by <t:")


# /settings -----------------------------------------------------------------------------------------
async def test_settings_at_every_limit_fit_and_show_everything(world: World):
    w = world
    await w.run(w.mod, "settings auditlog", channel=w.audit_channel_id)
    rec = await w.run(w.mod, "settings currency", name=LONG_NAME, symbol=LONG_SYMBOL, decimals=2)
    assert f"{LONG_NAME} ({LONG_SYMBOL}), 2 decimals" in text_of(rec)
    # Ten lead times, each in its longest spelling (minutes just under a year).
    leads = ",".join(f"{525599 - i}m" for i in range(MAX_LEAD_TIMES))
    assert len(leads) <= limits.LEAD_TIMES_INPUT
    rec = await w.run(w.mod, "settings reminders", lead_times=leads)
    assert f"Reminder lead times: {leads}." == rec.content
    longest_zone = max(zone_names(), key=len)
    assert len(longest_zone) <= limits.TIMEZONE
    rec = await w.run(w.mod, "settings timezone", tz=longest_zone.lower())
    assert rec.content == f"Timezone: {longest_zone}."
    await w.run(w.mod, "settings modrole", role=w.mod_role.id)

    excluded = [f"{i:02d}-" + "e" * (limits.CATEGORY - 3) for i in range(limits.EXCLUDED_CATEGORIES)]
    for category in excluded[:-1]:
        await w.ledger.set_category_excluded(w.guild.id, category, True, actor_id=w.mod.id, key=None)
    rec = await w.run(w.mod, "settings exclude-category", category=excluded[-1])
    assert rec.content == f"Promotional credit can no longer be spent on `{excluded[-1]}`."
    await refused(
        w,
        w.mod,
        "settings exclude-category",
        f"At most {limits.EXCLUDED_CATEGORIES} categories",
        category="one-too-many",
    )

    shown = await w.run(w.mod, "settings show")
    for message in (rec.message, shown.message):
        (embed,) = message.embeds
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Currency"] == f"{LONG_NAME} ({LONG_SYMBOL}), 2 decimals"
        assert fields["Reminder lead times"] == leads
        assert fields["Timezone"] == longest_zone
        assert fields["Moderator role"] == f"<@&{w.mod_role.id}>"
        assert fields["Audit channel"] == f"<#{w.audit_channel_id}>"
        # All 25 categories, none cut, over the field and its continuation.
        listed = fields["Promo credit excluded on"] + ", " + fields["Promo credit excluded on (continued)"]
        assert listed == ", ".join(f"`{c}`" for c in excluded)
        assert all(len(v) <= fit.FIELD_VALUE for v in fields.values())
    posted = await audit_post(w, "Settings changed", 6)
    assert posted["description"] == rec.content

    # Included again one by one: the embed goes back to one field, then to "none".
    for category in excluded[:-1]:
        await w.ledger.set_category_excluded(w.guild.id, category, False, actor_id=w.mod.id, key=None)
    back = await w.run(w.mod, "settings include-category", category=excluded[-1].upper())
    assert back.content == f"Promotional credit can be spent on `{excluded[-1].upper()}` again."
    fields = {f["name"]: f["value"] for f in back.message.embeds[0]["fields"]}
    assert fields["Promo credit excluded on"] == "none"
    assert "Promo credit excluded on (continued)" not in fields


async def test_settings_options_carry_the_limits_of_the_ledger(world: World):
    w = world
    (settings,) = [c for c in w.fake.synced_commands() if c["name"] == "settings"]
    options = {sub["name"]: {o["name"]: o for o in sub.get("options", [])} for sub in settings["options"]}
    assert options["currency"]["name"]["max_length"] == MAX_NAME_LENGTH
    assert options["currency"]["symbol"]["max_length"] == MAX_SYMBOL_LENGTH
    assert options["reminders"]["lead_times"]["max_length"] == limits.LEAD_TIMES_INPUT
    assert options["exclude-category"]["category"]["max_length"] == limits.CATEGORY
    assert options["include-category"]["category"]["max_length"] == limits.CATEGORY
    assert options["timezone"]["tz"]["max_length"] == limits.TIMEZONE
    (giftcard,) = [c for c in w.fake.synced_commands() if c["name"] == "giftcard"]
    sub = {s["name"]: {o["name"]: o for o in s.get("options", [])} for s in giftcard["options"]}
    assert sub["issue"]["amount"]["max_length"] == limits.AMOUNT_INPUT
    assert sub["issue"]["claim_by"]["max_length"] == limits.WHEN_INPUT
    assert sub["issue"]["count"]["max_value"] == MAX_GIFT_CARDS
    assert sub["void"]["last4"]["max_length"] == limits.GIFT_LAST4_INPUT
    # Eleven lead times are refused by the ledger with its own message.
    eleven = ",".join(f"{i}m" for i in range(1, MAX_LEAD_TIMES + 2))
    await refused(w, w.mod, "settings reminders", f"At most {MAX_LEAD_TIMES} lead times", lead_times=eleven)


async def test_timezone_autocomplete_choices_fit(world: World):
    w = world
    assert all(len(z) <= fit.CHOICE_NAME for z in zone_names())
    for typed in ("", "a", "/", "comod", "america/argentina"):
        choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "settings timezone", {"tz": typed}, focused="tz")
        assert 0 < len(choices) <= fit.CHOICES, typed
        assert all(c["name"] == c["value"] and 1 <= len(c["name"]) <= fit.CHOICE_NAME for c in choices)
    choices = await w.fake.autocomplete(
        w.guild.id, w.mod.id, "settings timezone", {"tz": "x" * limits.TIMEZONE}, focused="tz"
    )
    assert choices == []


# what a moderator is told when the answer fails after the write ------------------------------------
def told(w: World, rec) -> str:
    """What the moderator finally saw of this interaction: the accepted answer."""
    assert rec.message is not None, rec.rejection_codes
    return text_of(rec.message)


async def test_settings_currency_answer_refused_still_says_what_was_saved(world: World):
    w = world
    await set_audit(w)
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, "settings currency", name="gems")
    await rec.wait_until(lambda r: r.acknowledged)
    assert [r.status for r in w.fake.requests_to("POST", CALLBACK)] == [400, 200]  # refused, then the apology
    assert (await w.ledger.settings(w.guild.id)).currency_name == "gems"  # committed
    text = told(w, rec)
    assert rec.ephemeral
    assert "Currency updated." in text
    assert "error id" in text.lower()
    assert "nothing was changed" not in text.lower()
    assert "no need to do it again" in text
    # The audit post went out although the answer failed.
    assert (await audit_post(w, "Settings changed"))["description"] == "Currency updated."


async def test_settings_exclude_category_answer_timed_out_is_told_by_dm(world: World):
    w = world
    w.fake.interaction_timeout = 0
    rec = await w.run(w.mod, "settings exclude-category", category="games")
    assert rec.rejection_codes == [10062]
    assert not rec.acknowledged
    assert (await w.ledger.settings(w.guild.id)).promo_excluded_categories == ("games",)
    await w.fake.wait_for(lambda: w.fake.dms(w.mod.id), what="the DM to the moderator")
    (dm,) = w.fake.dms(w.mod.id)
    assert "Promotional credit can no longer be spent on `games`." in dm.content
    assert "error id" in dm.content.lower()
    assert "nothing was changed" not in dm.content.lower()


async def test_settings_refused_or_failed_before_the_write_still_say_nothing_changed(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    w = world
    # A moderator's mistake: the short explanation, as before.
    await refused(w, w.mod, "settings timezone", "Unknown timezone", tz="Mars/Olympus_Mons")
    await refused(w, w.mod, "settings exclude-category", "category", category="   ")

    # The bot failing before anything was written: the apology says nothing changed.
    async def broken(*args, **kwargs):
        raise RuntimeError("the store is down")

    monkeypatch.setattr(w.bot.ledger, "update_settings", broken)
    rec = await w.run(w.mod, "settings currency", name="gems")
    text = told(w, rec)
    assert "nothing was changed" in text
    assert "Error id" in text
    assert (await w.ledger.settings(w.guild.id)).currency_name == "credits"


async def test_promo_create_answer_refused_still_says_what_was_saved(world: World):
    w = world
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, "promo create", code="SAVED-ANYWAY", amount="5", categories=", ".join(CATEGORIES))
    await rec.wait_until(lambda r: r.acknowledged)
    text = told(w, rec)
    assert text.startswith("Promo code created: `SAVED-ANYWAY`")
    assert "error id" in text.lower()
    assert len(rec.message.content) <= fit.CONTENT
    assert "nothing was changed" not in text.lower()
    assert [p.code for p in await w.ledger.promos(w.guild.id)] == ["SAVED-ANYWAY"]


async def test_giftcard_issue_answer_timed_out_tells_the_issuer_to_void_the_cards(world: World):
    w = world
    w.fake.interaction_timeout = 0
    rec = await w.run(w.mod, "giftcard issue", amount="50", count=3)
    assert rec.rejection_codes == [10062]
    cards = await w.ledger.gift_cards(w.guild.id)
    assert len(cards) == 3
    assert all(c.status == "unredeemed" for c in cards)
    await w.fake.wait_for(lambda: w.fake.dms(w.mod.id), what="the DM to the moderator")
    (dm,) = w.fake.dms(w.mod.id)
    assert dm.content.startswith("3 gift card(s) of 50 credits. They were issued, but their codes could not be shown")
    assert "/giftcard void" in dm.content
    assert "error id" in dm.content.lower()
    assert all(f"…{c.last4}" in dm.content for c in cards)
    assert not GIFT_CODE.search(dm.content)  # the codes are never sent anywhere but the answer
