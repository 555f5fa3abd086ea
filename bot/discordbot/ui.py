"""What every cog shares: the bot and its ledger, idempotency keys, the moderator check, answers
to committed writes, the audit channel and page buttons. Cogs stay thin: parse, call the ledger,
render (bot/discordbot/render.py, lines.py), and let bot/discordbot/errors.py answer refusals."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.app.ledger import Ledger
from bot.discordbot import fit
from bot.discordbot.client import PromoBalanceBot
from bot.discordbot.errors import record_committed, report_error, send_ephemeral
from bot.discordbot.render import GREY
from bot.domain.models import Delivery, MemberFacts
from bot.domain.timeparse import to_unix

log = logging.getLogger(__name__)

VIEW_TIMEOUT = 300


def bot_of(interaction: discord.Interaction) -> PromoBalanceBot:
    return cast(PromoBalanceBot, interaction.client)


def ledger_of(interaction: discord.Interaction) -> Ledger:
    return bot_of(interaction).ledger


def key_of(interaction: discord.Interaction, purpose: str = "") -> str:
    """The idempotency key of a write: the interaction's id, which Discord never reuses."""
    return f"{purpose}:{interaction.id}" if purpose else str(interaction.id)


def guild_id_of(interaction: discord.Interaction) -> int:
    assert interaction.guild_id is not None  # every command is guild-only
    return interaction.guild_id


def member_facts(member: discord.abc.User) -> MemberFacts:
    if isinstance(member, discord.Member):
        joined = to_unix(member.joined_at) if member.joined_at else None
        return MemberFacts(frozenset(role.id for role in member.roles), joined)
    return MemberFacts()


class NotModerator(app_commands.CheckFailure):
    def __init__(self) -> None:
        super().__init__("This command is for moderators: members with Manage Server or this server's moderator role.")


async def is_moderator(interaction: discord.Interaction) -> bool:
    """Checked at run time too: server owners can change who sees a command in Discord's settings."""
    member = interaction.user
    if not isinstance(member, discord.Member):
        return False
    perms = member.guild_permissions
    if perms.manage_guild or perms.administrator:
        return True
    settings = await ledger_of(interaction).settings(guild_id_of(interaction))
    return settings.mod_role_id is not None and any(r.id == settings.mod_role_id for r in member.roles)


async def moderator_predicate(interaction: discord.Interaction) -> bool:
    if not await is_moderator(interaction):
        raise NotModerator()
    return True


def moderator_commands(name: str, description: str) -> app_commands.Group:
    """A guild-only command group that Discord shows to members with Manage Server by default."""
    return app_commands.Group(
        name=name,
        description=description,
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )


class ModeratorCog(commands.Cog):
    """A cog of moderator commands, each checked again at run time (Manage Server or the
    moderator role), because server owners can change who sees a command in Discord's settings."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await moderator_predicate(interaction)


async def answer_committed(
    interaction: discord.Interaction,
    summary: str,
    *,
    audit: str | None = None,
    audit_fields: dict[str, str] | None = None,
    **message: Any,
) -> None:
    """Answer a committed write privately: ``summary`` is the content (unless ``message`` gives
    one) and what the error handler says if the answer fails; the audit post (``audit`` is its
    title) goes out whether or not the answer did."""
    record_committed(interaction, summary)
    message.setdefault("content", summary)
    try:
        await send_ephemeral(interaction, **message)
    finally:
        if audit is not None:
            await post_audit(interaction, audit, summary, audit_fields)


async def post_audit(
    interaction: discord.Interaction, title: str, description: str, fields: dict[str, str] | None = None
) -> None:
    """Post a moderator action to the audit channel, when one is set. Never fails the action.
    Texts are cut to Discord's limits here: the audit post copies what the answer said."""
    guild = interaction.guild
    if guild is None:
        return
    settings = await ledger_of(interaction).settings(guild.id)
    if settings.audit_channel_id is None:
        return
    channel = guild.get_channel(settings.audit_channel_id)
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("audit channel %s of guild %s is gone", settings.audit_channel_id, guild.id)
        return
    embed = discord.Embed(title=fit.clip(title, fit.TITLE), colour=GREY)
    embed.set_author(name=fit.clip(str(interaction.user), fit.AUTHOR), icon_url=interaction.user.display_avatar.url)
    for name, value in list((fields or {}).items())[: fit.FIELDS]:
        embed.add_field(name=fit.clip(name, fit.FIELD_NAME), value=fit.clip(value, fit.FIELD_VALUE), inline=True)
    embed.set_footer(text=f"by {interaction.user.id}")
    embed.timestamp = discord.utils.utcnow()
    # The description gets what the 6,000 characters of one message leave it.
    embed.description = fit.clip(description, min(fit.DESCRIPTION, fit.EMBEDS_TOTAL - len(embed)))
    try:
        await channel.send(embed=embed)
    except discord.HTTPException:
        log.warning("could not post to the audit channel of guild %s", guild.id)


async def delivery_of(interaction: discord.Interaction, guild_id: int, order_id: int, action: str) -> Delivery | None:
    """The order's delivery of ``action`` (a role to give or take back, bot/domain/delivery.py)
    once the delivery worker has carried it out, or as it stands when an answer can wait no
    longer (it goes on in the background); None when the order has no such delivery."""
    states = await bot_of(interaction).deliveries.wait(guild_id, order_id)
    return next((delivery for delivery in states if delivery.action == action), None)


PageRenderer = Callable[[int], Awaitable[tuple[discord.Embed, int]]]
#: A check run on every click besides "is it the invoker": raises a CheckFailure whose text the
#: clicker sees (moderator_predicate), or returns False.
PageCheck = Callable[[discord.Interaction], Awaitable[bool]]
#: The buttons of the page rendered last (bot/discordbot/orders.py: RoutedButtons, whose clicks
#: DynamicItems handle), in rows 0-3; the page buttons take row 4 then.
PageButtons = Callable[[], Sequence[discord.ui.Item[Any]]]
PAGER_ROW = 4


class Pager(discord.ui.View):
    """Previous / Next buttons over pages rendered on demand; only the invoker may turn pages, and
    only while ``check`` (when given) still allows them: a moderator view passes the moderator
    check, so a moderator who loses the role stops seeing further pages."""

    def __init__(
        self,
        owner_id: int,
        render: PageRenderer,
        page: int,
        pages: int,
        origin_id: int,
        check: PageCheck | None = None,
        buttons: PageButtons | None = None,
    ) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.previous.custom_id = f"pager:previous:{origin_id}"
        self.next.custom_id = f"pager:next:{origin_id}"
        self.owner_id = owner_id
        self.render = render
        self.page = page
        self.pages = pages
        self.check = check
        self.buttons = buttons
        self._page_items: list[discord.ui.Item[Any]] = []
        if buttons is not None:  # placed again: a view lays its items out as they are added
            for own in (self.previous, self.next):
                self.remove_item(own)
                own.row = PAGER_ROW
                self.add_item(own)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.page <= 1
        self.next.disabled = self.page >= self.pages
        if self.buttons is not None:
            for item in self._page_items:
                self.remove_item(item)
            self._page_items = list(self.buttons())
            for item in self._page_items:
                self.add_item(item)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("These buttons belong to someone else.", ephemeral=True)
            return False
        if self.check is not None:
            reason = "You can no longer turn these pages."
            try:
                allowed = await self.check(interaction)
            except app_commands.CheckFailure as refusal:
                allowed, reason = False, str(refusal) or reason
            if not allowed:
                await interaction.response.send_message(reason, ephemeral=True)
                return False
        return True

    async def _turn(self, interaction: discord.Interaction, page: int) -> None:
        embed, self.pages = await self.render(page)
        self.page = min(max(page, 1), self.pages)
        self._sync_buttons()
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._turn(interaction, self.page - 1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._turn(interaction, self.page + 1)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
        await report_error(interaction, error)


def page_of_lines(
    embed: discord.Embed, lines: Sequence[str], page: int, *, empty: str, per_page: int | None = None
) -> tuple[int, int]:
    """Fill ``embed``'s description with page ``page`` of ``lines``, whole lines packed to fit
    (``empty`` when there are none); returns the page shown and the number of pages."""
    pages = fit.pack_pages(lines, fit.DESCRIPTION, per_page=per_page)
    if not pages:
        embed.description = empty
        return 1, 1
    page = min(max(page, 1), len(pages))
    embed.description = pages[page - 1]
    return page, len(pages)


async def send_paged(
    interaction: discord.Interaction,
    render: PageRenderer,
    page: int = 1,
    ephemeral: bool = True,
    *,
    check: PageCheck | None = None,
    buttons: PageButtons | None = None,
) -> None:
    """The first page, with page buttons when there are more; ``check`` runs again on every click
    (moderator views pass moderator_predicate, the rule their commands use). ``buttons`` gives the
    routed buttons of each page rendered (Fulfil / Deny, Cancel), shown with or without pages."""
    embed, pages = await render(page)
    view: discord.ui.View | None = None
    if pages > 1:
        view = Pager(interaction.user.id, render, page, pages, interaction.id, check, buttons)
    elif buttons is not None and (items := buttons()):
        view = discord.ui.View(timeout=None)  # routed buttons only: not dispatched by this view
        for item in items:
            view.add_item(item)
    if view is None:
        await interaction.response.send_message(embed=embed, ephemeral=ephemeral)
    else:
        await interaction.response.send_message(embed=embed, view=view, ephemeral=ephemeral)
