"""The Discord side of the jobs: reminder DMs (one per member per guild and lead), and deliveries
(give or take back an order's role, post a staff order to the fulfilment channel and edit that post
once someone acted, DM the member what happened to their order)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import aiohttp
import discord

from bot.app.delivery_worker import DeliveryImpossible, DeliveryRetry, nonce_for
from bot.app.ledger import Ledger
from bot.app.reminder_dispatch import DmClosed, SendFailed
from bot.discordbot import fit
from bot.discordbot import orders as order_text
from bot.discordbot.lines import lot_categories
from bot.discordbot.render import ORANGE, ts
from bot.discordbot.roles import grant_refusal
from bot.discordbot.shards import serves_guild
from bot.domain import delivery as deliveries
from bot.domain.models import Delivery, DueReminder, GuildSettings, Lot, Order
from bot.domain.money import Currency, format_amount
from bot.domain.timeparse import format_lead_times

CLOSED_DMS = 50007
UNKNOWN_USER = 10013
MISSING_PERMISSIONS = 50013
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
#: Deliveries that post or edit in a guild channel (a 403 there: the bot may not post in it).
CHANNEL_ACTIONS = (deliveries.POST_ORDER, deliveries.EDIT_POST)
#: Deliveries that DM the member what happened to their order.
STATUS_DMS = (deliveries.DM_FULFILLED, deliveries.DM_DENIED, deliveries.DM_CANCELLED, deliveries.DM_REFUNDED)
#: What the bot needs in the fulfilment channel.
POST_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)


def reminder_line(lot: Lot, currency: Currency) -> str:
    """One lot of the DM, at most about 250 characters whatever the lot."""
    when = ts(lot.expires_at or 0)
    exact = ts(lot.expires_at or 0, "f")
    kind = "gift" if lot.kind == "gift" else "promotional"
    only = f" (only: {lot_categories(lot.categories)})" if lot.categories else ""
    return f"• **{format_amount(lot.remaining, currency)}** {kind} credit expires {when} ({exact}){only}"


async def reminder_embed(ledger: Ledger, guild_name: str, due: DueReminder, lots: Sequence[Lot]) -> discord.Embed:
    """Discord refuses a description over 4,096 characters (and a message's embeds over 6,000): a
    member with many lots in one window gets the soonest ones listed and a line for the rest, with
    what they add up to, instead of a DM that is refused on every attempt and never arrives."""
    settings = await ledger.settings(due.guild_id)
    currency = settings.currency
    total = sum(lot.remaining for lot in lots)
    tail = f"\n\nSpend it with `/shop` and `/buy` in **{guild_name}** before it's gone."
    ordered = sorted(lots, key=lambda lot: (lot.expires_at or 0, lot.id))
    # held[i]: what ordered[i:] hold together; the lots left out are always the last ones.
    held = list(itertools.accumulate((lot.remaining for lot in reversed(ordered)), initial=0))[::-1]

    def more(count: int) -> str:
        amount = format_amount(held[len(ordered) - count], currency)
        return f"• …and {count} more, **{amount}** in all: see `/balance`"

    lines = [reminder_line(lot, currency) for lot in ordered]
    embed = discord.Embed(
        title=fit.clip(f"Your credit in {guild_name} expires soon", fit.TITLE),
        description=fit.fit_lines(lines, fit.DESCRIPTION - len(tail), more=more) + tail,
        colour=ORANGE,
    )
    embed.add_field(name="Expiring", value=format_amount(total, currency))
    embed.set_footer(
        text=f"Reminders come {format_lead_times(settings.reminder_leads)} before expiry. "
        "Turn them off in that server with /reminders enabled:False."
    )
    return embed


class DiscordReminderSender:
    def __init__(self, client: discord.Client, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.guild_name = GuildNames(client)

    async def __call__(self, due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        # The scheduler's first tick runs at start, before the gateway has delivered the guilds:
        # guild_name waits for them instead of DMing "your credit in your server". (A close meanwhile
        # cancels the tick; the claim then stays 'pending' and is resent under its nonce or settled.)
        name = await self.guild_name(due.guild_id)
        try:
            user = self.client.get_user(due.user_id) or await self.client.fetch_user(due.user_id)
            embed = await reminder_embed(self.ledger, name, due, lots)
            await user.send(embed=embed, nonce=nonce)
        except discord.Forbidden as exc:
            if exc.code == CLOSED_DMS:
                raise DmClosed(str(exc)) from exc
            raise SendFailed(str(exc)) from exc
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_USER:  # the account is gone: there is nobody to retry for
                raise DmClosed(str(exc)) from exc
            raise SendFailed(str(exc)) from exc
        except discord.HTTPException as exc:
            raise SendFailed(str(exc)) from exc


def refund_dm(order: Order, settings: GuildSettings, guild_name: str, reason: str | None) -> str:
    """What a member whose order could not be delivered is told (at most ~500 characters)."""
    return fit.clip(
        f"Your order #{order.id} ({order.quantity} × {order.item_name}) in **{guild_name}** was refunded "
        f"automatically because {deliveries.describe(reason)}: {format_amount(order.total, settings.currency)} "
        "is back in your balance. Please tell a moderator there.",
        fit.CONTENT,
    )


class GuildNames:
    """Guild names for DMs: from the cache (once the gateway has delivered the guilds of this
    process's shards: the first tick runs at start, before), else over REST (a guild on a shard
    another process serves, SPEC §5), else a stand-in. A name fetched over REST is kept for
    ``NAME_SECONDS``: a reminder run DMs many members of one guild, and one GET per DM would spend
    the rate limit on the same answer."""

    NAME_SECONDS = 600.0
    KEEP = 1000  # guilds remembered at most, the oldest forgotten first

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._fetched: dict[int, tuple[str, float]] = {}

    async def __call__(self, guild_id: int) -> str:
        client = self.client
        if client.get_guild(guild_id) is None and serves_guild(client, guild_id) and not client.is_ready():
            await client.wait_until_ready()
        guild = client.get_guild(guild_id)
        if guild is not None:
            return guild.name
        now = asyncio.get_running_loop().time()
        known = self._fetched.get(guild_id)
        if known is not None and now - known[1] < self.NAME_SECONDS:
            return known[0]
        try:
            name = (await client.fetch_guild(guild_id, with_counts=False)).name
        except discord.HTTPException:
            return "your server"
        self._fetched.pop(guild_id, None)
        self._fetched[guild_id] = (name, now)
        while len(self._fetched) > self.KEEP:
            del self._fetched[next(iter(self._fetched))]
        return name


class DiscordDeliverySender:
    """Carries out one delivery over REST (SPEC §5: the job runner needs no gateway connection).
    A role that is gone or above the bot is known to be impossible before asking Discord to give
    it: from the cache when this process serves the guild, else from the guild's roles and the
    bot's member fetched over REST (a guild on another process's shard)."""

    def __init__(self, client: discord.Client, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.guild_name = GuildNames(client)

    async def __call__(self, delivery: Delivery) -> None:
        try:
            if delivery.action == deliveries.DM_REFUND:
                await self._dm_refund(delivery)
            elif delivery.action == deliveries.POST_ORDER:
                await self._post_order(delivery)
            elif delivery.action == deliveries.EDIT_POST:
                await self._edit_post(delivery)
            elif delivery.action in STATUS_DMS:
                await self._dm_status(delivery)
            else:
                await self._role(delivery)
        except (DeliveryImpossible, DeliveryRetry):
            raise
        except discord.Forbidden as exc:
            if exc.code == CLOSED_DMS:
                raise DeliveryImpossible(deliveries.DM_CLOSED, _http(exc)) from exc
            if delivery.action in CHANNEL_ACTIONS:  # Missing Access / Permissions in that channel
                raise DeliveryImpossible(deliveries.NO_CHANNEL_ACCESS, _http(exc)) from exc
            reason = deliveries.MISSING_PERMISSIONS if exc.code == MISSING_PERMISSIONS else deliveries.REFUSED
            raise DeliveryImpossible(reason, _http(exc)) from exc
        except discord.NotFound as exc:
            reason = {
                UNKNOWN_ROLE: deliveries.ROLE_DELETED,
                UNKNOWN_MEMBER: deliveries.MEMBER_LEFT,
                UNKNOWN_USER: deliveries.MEMBER_LEFT,
                UNKNOWN_GUILD: deliveries.GUILD_GONE,
                UNKNOWN_CHANNEL: deliveries.CHANNEL_GONE,
                UNKNOWN_MESSAGE: deliveries.POST_GONE,
            }.get(exc.code, deliveries.REFUSED)
            raise DeliveryImpossible(reason, _http(exc)) from exc
        except discord.HTTPException as exc:  # 429 after discord.py's own retries, 5xx: passing
            if exc.status == 429 or exc.status >= 500:
                raise DeliveryRetry(_http(exc)) from exc
            raise DeliveryImpossible(deliveries.REFUSED, _http(exc)) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryRetry(f"{type(exc).__name__}: {exc}") from exc

    async def _role(self, delivery: Delivery) -> None:
        assert delivery.role_id is not None
        guild = self.client.get_guild(delivery.guild_id)
        if guild is not None:
            refusal = grant_refusal(guild.get_role(delivery.role_id), guild.me)
        elif not serves_guild(self.client, delivery.guild_id):
            refusal = await self._rest_refusal(delivery.guild_id, delivery.role_id)
        else:  # ours but not (yet) in the cache: Discord's answer tells
            refusal = None
        if refusal is not None:
            raise DeliveryImpossible(refusal)
        if delivery.action == deliveries.ADD_ROLE:
            await self.client.http.add_role(
                delivery.guild_id,
                delivery.user_id,
                delivery.role_id,
                reason=f"Promo Balance order #{delivery.order_id}",
            )
        else:
            await self.client.http.remove_role(
                delivery.guild_id,
                delivery.user_id,
                delivery.role_id,
                reason=f"Promo Balance refund of order #{delivery.order_id}",
            )

    async def _rest_refusal(self, guild_id: int, role_id: int) -> str | None:
        """grant_refusal for a guild this process has no cache of: its roles come with GET
        /guilds/{id}, the bot's roles with GET /guilds/{id}/members/{bot}. A guild Discord does not
        know (or no longer shows the bot) raises NotFound / Forbidden, mapped as any answer."""
        assert self.client.user is not None
        guild = await self.client.fetch_guild(guild_id, with_counts=False)
        try:
            me = await guild.fetch_member(self.client.user.id)
        except discord.NotFound as exc:  # the bot is no longer in the guild
            raise DeliveryImpossible(deliveries.GUILD_GONE, _http(exc)) from exc
        return grant_refusal(guild.get_role(role_id), me)

    async def _dm_refund(self, delivery: Delivery) -> None:
        order = await self.ledger.order(delivery.guild_id, delivery.order_id)
        assert order is not None
        settings = await self.ledger.settings(delivery.guild_id)
        text = refund_dm(order, settings, await self.guild_name(delivery.guild_id), delivery.reason)
        channel = await self.client.create_dm(discord.Object(delivery.user_id))
        await channel.send(text, nonce=nonce_for(delivery))

    async def _order(self, delivery: Delivery) -> tuple[Order, GuildSettings]:
        order = await self.ledger.order(delivery.guild_id, delivery.order_id)
        assert order is not None  # deliveries belong to orders, which are never deleted
        return order, await self.ledger.settings(delivery.guild_id)

    def _check_channel(self, guild_id: int, channel_id: int) -> None:
        """When this process has the guild in its cache, a channel that is gone or closed to the
        bot is known to be impossible without asking Discord; otherwise Discord's answer says so."""
        guild = self.client.get_guild(guild_id)
        if guild is None:
            return
        channel = guild.get_channel(channel_id)
        if channel is None:
            raise DeliveryImpossible(deliveries.CHANNEL_GONE, f"channel {channel_id} is not in the guild")
        if not channel.permissions_for(guild.me).is_superset(POST_PERMISSIONS):
            raise DeliveryImpossible(deliveries.NO_CHANNEL_ACCESS, f"no View / Send / Embed Links in {channel_id}")

    async def _post_order(self, delivery: Delivery) -> None:
        """Post a staff order to the fulfilment channel (as it was when the order was placed) with
        Fulfil and Deny, under the delivery's nonce (sent again after a crash, Discord keeps one),
        and record where the post is so that acting on the order can edit it."""
        order, settings = await self._order(delivery)
        channel_id = delivery.channel_id or settings.fulfilment_channel_id
        if channel_id is None:
            raise DeliveryImpossible(deliveries.CHANNEL_GONE, "no fulfilment channel is set")
        self._check_channel(delivery.guild_id, channel_id)
        channel = self.client.get_partial_messageable(channel_id, guild_id=delivery.guild_id)
        message = await channel.send(
            embed=order_text.post_embed(order, settings), view=order_text.post_view(order), nonce=nonce_for(delivery)
        )
        await self.ledger.record_order_post(delivery.guild_id, order.id, channel_id, message.id)

    async def _edit_post(self, delivery: Delivery) -> None:
        """Show on the order's post who acted and when, without the buttons."""
        order, settings = await self._order(delivery)
        if order.post_channel_id is None or order.post_message_id is None:
            raise DeliveryImpossible(deliveries.POST_GONE, "the order was never posted")
        channel = self.client.get_partial_messageable(order.post_channel_id, guild_id=delivery.guild_id)
        post = channel.get_partial_message(order.post_message_id)
        await post.edit(embed=order_text.post_embed(order, settings), view=None)

    async def _dm_status(self, delivery: Delivery) -> None:
        order, settings = await self._order(delivery)
        text = order_text.status_dm(delivery.action, order, settings, await self.guild_name(delivery.guild_id))
        channel = await self.client.create_dm(discord.Object(delivery.user_id))
        await channel.send(text, nonce=nonce_for(delivery))


def _http(exc: discord.HTTPException) -> str:
    return f"{exc.status} {exc.code} {exc.text}".strip()
