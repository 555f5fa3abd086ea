"""Orders in Discord: how each status reads, an order's line in /orders and in /fulfil queue, the
post in the fulfilment channel and what it becomes once someone acted, the DMs that tell the
member, and the buttons on them.

The buttons are routed: their custom ids carry the order id (`order:fulfil:12`), and the
DynamicItems registered at start (cogs/fulfil.py: Fulfil and Deny; cogs/orders.py: Cancel) handle
every click on them, whatever message they are on and whichever run of the bot sent it. A view that
shows them (a page of /orders, the post) sends them as RoutedButtons, which the view itself never
dispatches: discord.py unregisters a DynamicItem's pattern for good when a view holding one stops
(a page's view times out after a few minutes), which would leave every post's buttons dead.

Everything here is bounded: an item name of limits.ITEM_NAME, a note or reason of limits.REASON,
a code of limits.ITEM_CODE characters fit each text with room to spare.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.discordbot import fit
from bot.discordbot.render import GREEN, GREY, ORANGE, money, ts
from bot.domain.models import GuildSettings, Order

FULFIL_ID = "order:fulfil:{order_id}"
DENY_ID = "order:deny:{order_id}"
CANCEL_ID = "order:cancel:{order_id}"
#: The DynamicItems' templates: the same ids, read back.
FULFIL_TEMPLATE = r"order:fulfil:(?P<order_id>[0-9]{1,20})"
DENY_TEMPLATE = r"order:deny:(?P<order_id>[0-9]{1,20})"
CANCEL_TEMPLATE = r"order:cancel:(?P<order_id>[0-9]{1,20})"

#: How each status reads after "Order #12 is …".
STATUS_WORDS = {
    "completed": "completed",
    "pending": "waiting for staff",
    "fulfilled": "fulfilled",
    "cancelled": "cancelled",
    "refunded": "refunded",
}
BUTTONS_PER_ROW = 5


def status_word(order: Order) -> str:
    return STATUS_WORDS.get(order.status, order.status)


def bought(order: Order) -> str:
    return f"{order.quantity} × {order.item_name}"


def code_text(code: str) -> str:
    """A code as the buyer copies it: in a code span, unless it holds a backtick (a span cannot
    hold one), then with Discord's markdown escaped. Mentions in it never ping (allowed_mentions)."""
    if "`" not in code:
        return f"`{code}`"
    return discord.utils.escape_markdown(code)


def acted(order: Order) -> str:
    """Who moved the order to its status, and when: "fulfilled by <@9> <t:…:R>"."""
    when = ts(order.acted_at or order.refunded_at or order.created_at)
    by = f" by <@{order.acted_by}>" if order.acted_by is not None else ""
    if order.status == "cancelled":
        return f"cancelled by the member {when}"
    if order.status == "refunded" and order.acted_by is None:
        return f"refunded automatically {when}"
    if order.status in ("fulfilled", "refunded"):
        return f"{order.status}{by} {when}"
    return status_word(order)


def member_line(order: Order, settings: GuildSettings, code: str | None = None) -> str:
    """One order in the member's /orders: `#12` <t:…:R> · 2 × Sword · 60 credits · **fulfilled**,
    then the fulfil note, the deny reason or the code on a line of its own. At most ~420 characters."""
    line = (
        f"`#{order.id}` {ts(order.created_at)} · {bought(order)} · {money(settings, order.total)} · "
        f"**{status_word(order)}**"
    )
    if order.status in ("fulfilled", "refunded") and order.note:
        # The fulfil note or the deny reason: an order fulfilled and then refunded keeps its note.
        line += f"\n  staff note: {fit.clip(order.note, fit.FIELD_VALUE)}"
    if code is not None:
        line += f"\n  your code: {code_text(code)}"
    return line


def queue_line(order: Order, settings: GuildSettings) -> str:
    """One pending order in /fulfil queue: `#12` <t:…:R> · <@11> · 2 × Sword · 60 credits."""
    return (
        f"`#{order.id}` {ts(order.created_at)} · <@{order.user_id}> · {bought(order)} · {money(settings, order.total)}"
    )


def choice_label(order: Order, settings: GuildSettings, member: str | None = None) -> str:
    """An order as an autocomplete choice (100 characters): `#12 · 2 × Sword · alice · 60 credits`,
    the item's name cut first."""
    tail = f" · {member}" if member else ""
    tail = fit.clip(tail, 40) + f" · {money(settings, order.total)}"
    head = f"#{order.id} · {order.quantity} × "
    return fit.clip(head + fit.clip(order.item_name, max(fit.CHOICE_NAME - len(head) - len(tail), 1)) + tail, 100)


# --- the post in the fulfilment channel ------------------------------------------------------------


def post_embed(order: Order, settings: GuildSettings) -> discord.Embed:
    """The post of a staff order: waiting (orange, with the buttons), or as someone left it (green
    once fulfilled, grey once refunded or cancelled), saying who acted and when."""
    pending = order.status == "pending"
    colour = ORANGE if pending else GREEN if order.status == "fulfilled" else GREY
    title = f"Order #{order.id}: {bought(order)}"
    embed = discord.Embed(title=fit.clip(title, fit.TITLE), colour=colour)
    embed.add_field(name="Member", value=f"<@{order.user_id}>")
    embed.add_field(name="Paid", value=money(settings, order.total))
    embed.add_field(name="Ordered", value=ts(order.created_at))
    if pending:
        embed.description = (
            "Waiting for staff. **Fulfil** it once the member has what they bought, or **Deny** it "
            "with a reason: they are refunded in full and told why."
        )
    else:
        embed.description = f"**{acted(order)[0].upper()}{acted(order)[1:]}**."
        if order.note:
            label = "Note" if order.status == "fulfilled" else "Reason"
            embed.add_field(name=label, value=fit.clip(order.note, fit.FIELD_VALUE), inline=False)
    embed.set_footer(text=f"Order #{order.id} · /fulfil queue lists every waiting order")
    return embed


class RoutedButton(discord.ui.Button[Any]):
    """A button whose clicks a DynamicItem registered at start handles, found by its custom id.
    The view that shows it never dispatches it, and does not unregister that DynamicItem when it
    stops."""

    def is_dispatchable(self) -> bool:
        return False


def fulfil_button(order_id: int, row: int | None = None) -> RoutedButton:
    return RoutedButton(
        label=f"Fulfil #{order_id}",
        style=discord.ButtonStyle.success,
        custom_id=FULFIL_ID.format(order_id=order_id),
        row=row,
    )


def deny_button(order_id: int, row: int | None = None) -> RoutedButton:
    return RoutedButton(
        label=f"Deny #{order_id}",
        style=discord.ButtonStyle.danger,
        custom_id=DENY_ID.format(order_id=order_id),
        row=row,
    )


def cancel_button(order_id: int, row: int | None = None) -> RoutedButton:
    return RoutedButton(
        label=f"Cancel #{order_id}",
        style=discord.ButtonStyle.secondary,
        custom_id=CANCEL_ID.format(order_id=order_id),
        row=row,
    )


def post_view(order: Order) -> discord.ui.View:
    """The post's buttons while the order waits; none once someone acted on it."""
    view = discord.ui.View(timeout=None)
    if order.status == "pending":
        view.add_item(fulfil_button(order.id))
        view.add_item(deny_button(order.id))
    return view


def staff_rows(orders: list[Order] | tuple[Order, ...]) -> list[discord.ui.Item[Any]]:
    """Fulfil and Deny for each order of a queue page, one row per order (at most four: the fifth
    row holds the page buttons)."""
    return [
        button
        for row, order in enumerate(orders)
        for button in (fulfil_button(order.id, row), deny_button(order.id, row))
    ]


def cancel_rows(orders: list[Order] | tuple[Order, ...]) -> list[discord.ui.Item[Any]]:
    """A Cancel button for each pending staff order of a page of /orders, five to a row."""
    waiting = [order for order in orders if order.status == "pending"]
    return [cancel_button(order.id, index // BUTTONS_PER_ROW) for index, order in enumerate(waiting)]


# --- the DMs that tell the member ------------------------------------------------------------------


def _refunded_part(order: Order, settings: GuildSettings) -> str:
    return (
        f"The {money(settings, order.total)} you paid went back to your balance (credit that expired in "
        "the meantime stays expired)."
    )


def status_dm(action: str, order: Order, settings: GuildSettings, guild_name: str) -> str:
    """What the member is told when their order changes status (at most ~800 characters)."""
    what = f"Your order #{order.id} ({bought(order)}) in **{fit.clip(guild_name, 100)}**"
    note = fit.clip(order.note or "", fit.FIELD_VALUE)
    if action == "dm_fulfilled":
        text = f"{what} was fulfilled by the staff."
        if note:
            text += f"\nTheir note: {note}"
    elif action == "dm_denied":
        text = (
            f"{what} was denied by the staff" + (f": {note}" if note else ".") + "\n" + _refunded_part(order, settings)
        )
    elif action == "dm_cancelled":
        text = f"{what} is cancelled, as you asked. {_refunded_part(order, settings)}"
    else:  # dm_refunded: a moderator's refund (the order's note is what an earlier fulfil said)
        text = f"{what} was refunded by the staff.\n{_refunded_part(order, settings)}"
    return fit.clip(text, fit.CONTENT)
