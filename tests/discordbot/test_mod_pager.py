"""Page buttons of moderator views check moderator rights again on every click: a moderator who
opened a list and then lost the role (or Manage Server) cannot keep paging it. Every moderator view
that pages: /credits inspect, /credits schedule list, /promo list, /giftcard list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.e2e import World, button, text_of

NOT_A_MODERATOR = "This command is for moderators"


async def many_entries(w: World) -> tuple[str, dict]:
    for n in range(1, 13):
        await w.ledger.grant(w.guild.id, w.alice.id, n, actor_id=w.mod.id, key=f"g{n}", reason=f"grant number {n}")
    return "credits inspect", {"member": w.alice.id}


async def many_schedules(w: World) -> tuple[str, dict]:
    for n in range(1, 13):
        await w.ledger.add_schedule(w.guild.id, w.vip_role.id, n, f"0 12 {n} * *", actor_id=w.mod.id, key=f"s{n}")
    return "credits schedule list", {}


async def many_promos(w: World) -> tuple[str, dict]:
    for n in range(1, 40):  # lines of about 200 characters: a 4,096-character page holds about 20
        await w.ledger.create_promo(
            w.guild.id,
            f"CODE{n:03}",
            n,
            actor_id=w.mod.id,
            key=f"p{n}",
            categories=",".join(f"category-{n}-{c}" for c in "abcdefgh"),
        )
    return "promo list", {}


async def many_gift_cards(w: World) -> tuple[str, dict]:
    await w.ledger.issue_gift_cards(w.guild.id, 5, 25, actor_id=w.mod.id, key="cards")
    return "giftcard list", {}


VIEWS: dict[str, Callable[[World], Awaitable[tuple[str, dict]]]] = {
    "credits inspect": many_entries,
    "credits schedule list": many_schedules,
    "promo list": many_promos,
    "giftcard list": many_gift_cards,
}


@pytest.mark.parametrize("view", sorted(VIEWS))
async def test_a_demoted_moderator_cannot_turn_the_pages_of_a_moderator_view(world: World, view: str):
    w = world
    command, options = await VIEWS[view](w)
    rec = await w.run(w.mod, command, **options)
    first = text_of(rec)
    nxt = button(rec, "pager:next:")
    assert rec.message.component(nxt).get("disabled") is not True, first

    w.fake.set_member_roles(w.guild.id, w.mod.id, [])  # loses the Moderators role (Manage Server)
    before = list(rec.message.history), rec.message.embeds
    refused = await w.fake.click(rec, nxt, w.mod.id)
    assert refused.ephemeral
    assert refused.response_type == 4
    assert NOT_A_MODERATOR in text_of(refused), text_of(refused)
    assert (list(rec.message.history), rec.message.embeds) == before  # the page did not turn
    assert text_of(rec) == first

    # Given the role back, the same buttons work again: the check is the commands' own rule.
    w.fake.set_member_roles(w.guild.id, w.mod.id, [w.mod_role.id])
    turned = await w.fake.click(rec, nxt, w.mod.id)
    assert turned.response_type == 7
    assert text_of(turned) != first


async def test_the_server_moderator_role_is_checked_on_every_click_too(world: World):
    """A moderator by /settings modrole (no Manage Server) pages while the role is theirs, and is
    refused once it is taken away; the page stays as it was."""
    w = world
    helper = w.fake.add_role(w.guild.id, "Helpers", position=3)
    await w.ledger.update_settings(w.guild.id, actor_id=w.owner.id, key="modrole", mod_role_id=helper.id)
    w.fake.set_member_roles(w.guild.id, w.bob.id, [helper.id])
    command, options = await many_entries(w)
    # Discord shows /credits to Manage Server by default; the server owner opened it to Helpers.
    rec = await w.fake.invoke(w.guild.id, w.bob.id, command, options, enforce_permissions=False)
    nxt = button(rec, "pager:next:")
    turned = await w.fake.click(rec, nxt, w.bob.id)
    assert turned.response_type == 7
    assert "Ledger (page 2 of 2)" in text_of(turned)

    back = button(turned, "pager:previous:")
    w.fake.set_member_roles(w.guild.id, w.bob.id, [])
    page2 = text_of(rec)
    refused = await w.fake.click(rec, back, w.bob.id)
    assert refused.ephemeral
    assert NOT_A_MODERATOR in text_of(refused)
    assert text_of(rec) == page2
    assert "Ledger (page 2 of 2)" in page2


async def test_member_views_still_page_without_moderator_rights(world: World):
    """/history is a member's own view: no moderator check on its buttons."""
    w = world
    for n in range(1, 13):
        await w.ledger.grant(w.guild.id, w.alice.id, n, actor_id=w.mod.id, key=f"h{n}")
    rec = await w.run(w.alice, "history")
    turned = await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
    assert turned.response_type == 7
    assert "Page 2 of 2" in text_of(turned)
