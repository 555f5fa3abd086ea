"""Orders in Discord (bot/discordbot/orders.py) without a Discord: the status words, codes as the
buyer copies them, the bounds of every text at the longest input, and the routed buttons: the
ids the cogs' DynamicItems read back, and views that never dispatch (nor unregister) them."""

from __future__ import annotations

import re
from dataclasses import replace

import discord
import pytest

from bot.discordbot import fit
from bot.discordbot import orders as text
from bot.domain import limits
from bot.domain.models import GuildSettings, Order
from bot.domain.money import MAX_AMOUNT
from cogs.fulfil import DenyButton, FulfilButton
from cogs.orders import ORDERS_PAGE, CancelButton

SETTINGS = GuildSettings(1, currency_name="golden dragon scales", decimals=2)
ORDER = Order(
    id=10**12, guild_id=1, user_id=2**63 - 1, item_id=3, item_name="N" * limits.ITEM_NAME, quantity=100,
    unit_price=MAX_AMOUNT, total=MAX_AMOUNT, promo_applied=0, gift_applied=MAX_AMOUNT, forfeited=0, role_id=None,
    status="pending", created_at=1798761599, delivery="staff",
)  # fmt: skip
NOTE = "n" * limits.REASON


def test_every_status_has_words():
    assert text.STATUS_WORDS.keys() == {"completed", "pending", "fulfilled", "cancelled", "refunded"}
    assert text.status_word(ORDER) == "waiting for staff"


@pytest.mark.parametrize(
    ("code", "shown"),
    [("ABC-123", "`ABC-123`"), ("a`b", "a\\`b"), ("**x**", "`**x**`"), ("<@1> @everyone", "`<@1> @everyone`")],
)
def test_a_code_is_shown_to_be_copied(code: str, shown: str):
    assert text.code_text(code) == shown


def test_who_acted_and_when():
    fulfilled = replace(ORDER, status="fulfilled", acted_by=9, acted_at=100)
    assert text.acted(fulfilled) == "fulfilled by <@9> <t:100:R>"
    assert text.acted(replace(ORDER, status="cancelled", acted_by=2, acted_at=5)) == "cancelled by the member <t:5:R>"
    assert text.acted(replace(ORDER, status="refunded", refunded_at=7)) == "refunded automatically <t:7:R>"
    assert text.acted(replace(ORDER, status="refunded", acted_by=9, acted_at=8)) == "refunded by <@9> <t:8:R>"


def test_the_longest_texts_fit_discord():
    worst = replace(ORDER, status="refunded", note=NOTE, acted_by=9, acted_at=1)
    line = text.member_line(worst, SETTINGS, "C" * limits.ITEM_CODE)
    assert ORDERS_PAGE * (len(line) + 1) <= fit.DESCRIPTION  # a page of the worst lines fits whole
    assert len(text.choice_label(ORDER, SETTINGS, "m" * 32)) <= fit.CHOICE_NAME
    for action in ("dm_fulfilled", "dm_denied", "dm_cancelled", "dm_refunded"):
        assert len(text.status_dm(action, worst, SETTINGS, "G" * 100)) <= fit.CONTENT
    for order in (ORDER, worst, replace(worst, status="fulfilled")):
        embed = text.post_embed(order, SETTINGS)
        assert len(embed) <= fit.EMBEDS_TOTAL
        assert len(embed.title or "") <= fit.TITLE


def test_a_refund_dm_never_shows_a_fulfil_note_as_its_reason():
    refunded = replace(ORDER, status="refunded", note="collect it at the desk", acted_by=9, acted_at=1)
    assert "collect it" not in text.status_dm("dm_refunded", refunded, SETTINGS, "Shop")
    assert "Their note: collect it" in text.status_dm("dm_fulfilled", refunded, SETTINGS, "Shop")
    assert "denied by the staff: collect it" in text.status_dm("dm_denied", refunded, SETTINGS, "Shop")


@pytest.mark.parametrize(
    ("make", "item"),
    [(text.fulfil_button, FulfilButton), (text.deny_button, DenyButton), (text.cancel_button, CancelButton)],
)
def test_routed_buttons_carry_the_ids_their_dynamic_items_read(make, item):
    button = make(10**19)
    assert button.custom_id is not None
    assert len(button.custom_id) <= 100
    assert len(button.label or "") <= fit.BUTTON_LABEL
    match = re.fullmatch(item.__discord_ui_compiled_template__, button.custom_id)
    assert match is not None
    assert int(match["order_id"]) == 10**19
    assert not button.is_dispatchable()


async def test_views_of_routed_buttons_are_laid_out_in_rows_and_never_dispatch():
    orders = [replace(ORDER, id=n) for n in range(1, 5)]
    view = discord.ui.View(timeout=None)
    for button in text.staff_rows(orders):
        view.add_item(button)
    rows = view.to_components()
    assert [[c["custom_id"] for c in row["components"]] for row in rows] == [
        [f"order:fulfil:{n}", f"order:deny:{n}"] for n in range(1, 5)
    ]
    assert not view.is_dispatchable()  # discord.py stores no view for it: nothing to time out
    waiting = [replace(ORDER, id=n, status="pending" if n % 2 else "fulfilled") for n in range(1, 13)]
    cancel = discord.ui.View(timeout=None)
    for button in text.cancel_rows(waiting):
        cancel.add_item(button)
    assert [len(row["components"]) for row in cancel.to_components()] == [5, 1]
    assert text.post_view(replace(ORDER, status="fulfilled")).children == []
