"""The Discord layer's rendering of the domain's sentences (bot/discordbot/render.py): the exact
markup members see, for every kind of value a template names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.discordbot.render import DISCORD, DiscordMarkup, discord_timestamp, error_text
from bot.domain.errors import Conflict, Forbidden, InvalidInput, RateLimited
from bot.domain.text import TIME_STYLES, render

AT = 1798761599  # 2026-12-31 23:59:59 UTC


def test_discord_markup_of_each_kind():
    markup = DiscordMarkup()
    assert markup.strong("Rare") == "**Rare**"
    assert markup.literal("0 12 1 * *") == "`0 12 1 * *`"
    assert [markup.time(AT, style) for style in "tTdDfFR"] == [f"<t:{AT}:{s}>" for s in "tTdDfFR"]
    assert markup.mention("user", 42) == "<@42>"
    assert markup.mention("role", 777) == "<@&777>"
    assert markup.mention("channel", 9) == "<#9>"


@pytest.mark.parametrize(
    ("template", "params", "shown"),
    [
        ("{item:b} is sold out.", {"item": "Rare"}, "**Rare** is sold out."),
        (
            "Kind must be {promo:lit} or {gift:lit}.",
            {"promo": "promo", "gift": "gift"},
            "Kind must be `promo` or `gift`.",
        ),
        ("Redeemable until {until:f}.", {"until": AT}, f"Redeemable until <t:{AT}:f>."),
        ("Lot #{lot} is not one of {user:user}'s lots.", {"lot": 1, "user": 42}, "Lot #1 is not one of <@42>'s lots."),
        ("Only for {role:role}.", {"role": 777}, "Only for <@&777>."),
        ("I can't post in {channel:channel}.", {"channel": 9}, "I can't post in <#9>."),
        ("{{literal}} {count:,}", {"count": 1000}, "{literal} 1,000"),
    ],
)
def test_templates_in_discord_markup(template: str, params: dict, shown: str):
    assert render(template, params, DISCORD) == shown


def test_error_text_is_what_members_read():
    assert error_text(Conflict("item_sold_out", "{item:b} is sold out.", item="Rare")) == "**Rare** is sold out."
    role = Forbidden("promo_role_required", "That code is only for members with the {role:role} role.", role=777)
    assert error_text(role) == "That code is only for members with the <@&777> role."
    limited = RateLimited(datetime.fromtimestamp(AT, UTC))
    assert error_text(limited) == f"Too many wrong codes. You can try again <t:{AT}:R>."
    assert error_text(InvalidInput("x_y", "{v:lit}", v="a*b")) == "`a*b`"


def test_discord_timestamp():
    when = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert discord_timestamp(when) == f"<t:{AT}:R>"
    assert discord_timestamp(when, "f") == f"<t:{AT}:f>"
    assert {discord_timestamp(when, s) for s in TIME_STYLES} == {DISCORD.time(AT, s) for s in TIME_STYLES}
    with pytest.raises(ValueError, match="unknown Discord timestamp style"):
        discord_timestamp(when, "x")
    with pytest.raises(ValueError, match="timezone-aware"):
        discord_timestamp(datetime(2026, 1, 1), "R")  # a naive time is refused
