"""FakeDiscord for the fulfilment flows, against the real discord.py client: an attachment option
the bot downloads from the fake's CDN, buttons on a channel post that any member clicks (routed by
a DynamicItem, so they work without the View that sent them), a modal opened from such a button,
edits of the post, and a post or channel deleted by hand (404 10008 / 10003 afterwards)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from fakediscord import FakeDiscord, Guild, InvalidInvocation, Member
from fakediscord.fake import ATTACHMENT_SIZE_LIMIT
from fakediscord.models import Intent


class Approve(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"approve:(?P<id>\d+)"):
    def __init__(self, ident: int) -> None:
        super().__init__(discord.ui.Button(label="Approve", custom_id=f"approve:{ident}"))
        self.ident = ident

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Approve:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        assert interaction.message is not None
        await interaction.response.send_message(f"approved {self.ident} by {interaction.user.id}", ephemeral=True)
        await interaction.message.edit(content=f"approved by <@{interaction.user.id}>", view=None)


class Reason(discord.ui.Modal, title="Why?"):
    reason: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Reason", custom_id="reason", max_length=200)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"denied: {self.reason.value}", ephemeral=True)


class Deny(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"deny:(?P<id>\d+)"):
    def __init__(self, ident: int) -> None:
        super().__init__(discord.ui.Button(label="Deny", custom_id=f"deny:{ident}"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Deny:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Reason())


@dataclass
class Env:
    fake: FakeDiscord
    bot: commands.Bot
    guild: Guild
    alice: Member
    bob: Member
    seen: dict[str, Any]


def make_bot(seen: dict[str, Any]) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    bot.add_dynamic_items(Approve, Deny)

    @bot.tree.command(description="Upload a file")
    async def upload(interaction: discord.Interaction, file: discord.Attachment) -> None:
        seen["size"] = file.size
        data = await file.read()
        seen["data"] = data
        await interaction.response.send_message(f"{file.filename}: {len(data.splitlines())} lines", ephemeral=True)

    @bot.tree.command(description="Post a request")
    async def post(interaction: discord.Interaction, ident: app_commands.Range[int, 1]) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Approve(ident))
        view.add_item(Deny(ident))
        assert isinstance(interaction.channel, discord.TextChannel)
        message = await interaction.channel.send(f"request {ident}", view=view)
        seen["post"] = message
        await interaction.response.send_message("posted", ephemeral=True)

    return bot


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild(name="Shop")
    alice = fake.add_member(guild.id, name="alice")
    bob = fake.add_member(guild.id, name="bob")
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    seen: dict[str, Any] = {}
    bot = make_bot(seen)
    await bot.login(fake.token)
    runner = asyncio.create_task(bot.connect())
    try:
        await fake.wait_until_ready()
        await bot.tree.sync()
        yield Env(fake, bot, guild, alice, bob, seen)
    finally:
        await bot.close()
        await asyncio.wait_for(runner, timeout=5)
        await fake.stop()
    fake.assert_clean()


async def test_an_attachment_option_is_downloaded_from_the_fake_cdn(env: Env) -> None:
    body = b"AAAA-1111\nBBBB-2222\n\nCCCC-3333\n"
    rec = await env.fake.invoke(env.guild.id, env.alice.id, "upload", {"file": ("codes.txt", body, "text/plain")})
    assert rec.content == "codes.txt: 4 lines"
    assert env.seen == {"size": len(body), "data": body}
    [attachment] = rec.payload["data"]["resolved"]["attachments"].values()
    assert attachment["filename"] == "codes.txt"
    assert attachment["content_type"] == "text/plain"
    assert attachment["url"].startswith(env.fake.base_url + "/attachments/")


async def test_the_client_refuses_an_attachment_over_the_size_limit(env: Env) -> None:
    too_big = b"x" * (ATTACHMENT_SIZE_LIMIT + 1)
    with pytest.raises(InvalidInvocation):
        await env.fake.invoke(env.guild.id, env.alice.id, "upload", {"file": ("big.txt", too_big)})
    assert env.fake.interactions == []
    assert "data" not in env.seen


async def post(env: Env, ident: int = 7):
    await env.fake.invoke(env.guild.id, env.alice.id, "post", {"ident": ident})
    [message] = env.fake.channel_messages(env.guild.text_channels()[0].id)
    return message


async def test_any_member_clicks_a_channel_post_and_the_bot_edits_it(env: Env) -> None:
    message = await post(env)
    assert message.custom_ids == ["approve:7", "deny:7"]
    assert not message.ephemeral
    click = await env.fake.click(message, "approve:7", env.bob.id)  # not the member who posted it
    assert click.content == f"approved 7 by {env.bob.id}"
    assert click.ephemeral
    await env.fake.wait_for(lambda: message.edits, what="the post's edit")
    assert message.content == f"approved by <@{env.bob.id}>"
    assert message.custom_ids == []
    assert message.payload["edited_timestamp"] is not None
    with pytest.raises(InvalidInvocation):  # the buttons are gone: Discord's client shows none
        await env.fake.click(message, "approve:7", env.alice.id)


async def test_a_button_on_a_post_opens_a_modal_whose_submission_comes_back(env: Env) -> None:
    message = await post(env, 8)
    opened = await env.fake.click(message, "deny:8", env.bob.id)
    assert opened.response_type == 9
    assert opened.modal is not None
    with pytest.raises(InvalidInvocation):  # required: Discord's client does not send it empty
        await env.fake.submit_modal(opened, {"reason": ""})
    with pytest.raises(InvalidInvocation):  # nor longer than the input's max_length
        await env.fake.submit_modal(opened, {"reason": "r" * 201})
    submitted = await env.fake.submit_modal(opened, {"reason": "out of stock"})
    assert submitted.content == "denied: out of stock"
    assert submitted.user_id == env.bob.id
    assert submitted.source_message is message


async def test_a_post_deleted_by_hand_is_unknown_to_edits(env: Env) -> None:
    message = await post(env)
    env.fake.delete_message(message.id)
    assert env.fake.channel_messages(message.channel_id) == []
    with pytest.raises(discord.NotFound) as gone:
        await env.bot.get_partial_messageable(message.channel_id).get_partial_message(message.id).edit(content="late")
    assert gone.value.code == 10008


async def test_a_deleted_channel_is_gone_for_the_client_and_for_requests(env: Env) -> None:
    channel = env.fake.add_channel(env.guild.id, "fulfilment")
    await env.fake.wait_for(lambda: env.bot.get_channel(channel.id) is not None, what="CHANNEL_CREATE")
    sent = await env.bot.http.send_message(channel.id, params=discord.http.handle_message_parameters(content="hi"))
    env.fake.delete_channel(channel.id)
    await env.fake.wait_for(lambda: env.bot.get_channel(channel.id) is None, what="CHANNEL_DELETE")
    assert env.fake.channel_messages(channel.id) == []
    assert env.fake.message(int(sent["id"])).deleted
    with pytest.raises(discord.NotFound) as gone:
        await env.bot.http.send_message(channel.id, params=discord.http.handle_message_parameters(content="hi"))
    assert gone.value.code == 10003
    with pytest.raises(discord.NotFound) as edit:
        await env.bot.get_partial_messageable(channel.id).get_partial_message(int(sent["id"])).edit(content="x")
    assert edit.value.code == 10003


async def test_message_events_need_the_message_intents(env: Env) -> None:
    """The bot above asks for no message intents: a deleted message's MESSAGE_DELETE never reaches it."""
    message = await post(env)
    sessions = list(env.fake.gateway.sessions.values())
    before = [s.seq for s in sessions]
    env.fake.delete_message(message.id)
    await env.fake.flush()
    assert [s.seq for s in sessions] == before
    session = sessions[0]
    assert not session.wants("MESSAGE_DELETE", {"guild_id": "1"})
    session.intents |= Intent.GUILD_MESSAGES
    assert session.wants("MESSAGE_DELETE", {"guild_id": "1"})
    assert not session.wants("MESSAGE_DELETE", {})
