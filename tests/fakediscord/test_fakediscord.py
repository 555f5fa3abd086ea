"""FakeDiscord against the real discord.py client: a tiny bot defined here, driven end to end."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from fakediscord import DEFAULT_MAX_RECORDS, FakeDiscord, Guild, InvalidInvocation, Member, Perm, Role

ITEMS = ["sword", "swan", "shield"]


@dataclass
class Seen:
    """What the bot's handlers observed, for the tests to assert on."""

    values: dict[str, Any] = field(default_factory=dict)
    slow_delay: float = 0.0


class ConfirmView(discord.ui.View):
    def __init__(self, seen: Seen) -> None:
        super().__init__(timeout=30)
        self.seen = seen

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.green, custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.seen.values["clicked_by"] = interaction.user.id
        button.disabled = True
        await interaction.response.edit_message(content="Confirmed", view=self)
        await interaction.followup.send("thanks", ephemeral=True)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.grey, custom_id="cancel")
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="Cancelled", view=None)


class PickView(discord.ui.View):
    @discord.ui.select(
        custom_id="color",
        options=[discord.SelectOption(label="Red", value="red"), discord.SelectOption(label="Blue", value="blue")],
    )
    async def color(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.send_message(f"picked {select.values[0]}", ephemeral=True)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput = discord.ui.TextInput(label="Your feedback", custom_id="text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"got: {self.text.value}", ephemeral=True)


def make_bot(seen: Seen) -> commands.Bot:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)

    @bot.tree.command(description="Echo text back")
    async def echo(interaction: discord.Interaction, text: str, target: discord.Member) -> None:
        seen.values["echo_target"] = target
        await interaction.response.send_message(f"{text} -> {target.name}", ephemeral=True)

    credits = app_commands.Group(name="credits", description="Store credit")

    @credits.command(name="grant", description="Grant credit")
    async def grant(
        interaction: discord.Interaction, member: discord.Member, amount: app_commands.Range[int, 1, 1000]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        seen.values["amount"] = amount
        await interaction.followup.send(f"granted {amount} to {member.name}")

    bot.tree.add_command(credits)

    @bot.tree.command(description="Ask for confirmation")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Sure?", view=ConfirmView(seen), ephemeral=True)

    @bot.tree.command(description="Buy an item")
    async def buy(interaction: discord.Interaction, item: str) -> None:
        receipt = discord.Embed(title="Receipt", description=f"1 x {item}")
        await interaction.response.send_message(f"bought {item}", embed=receipt)

    @buy.autocomplete("item")
    async def item_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=i.title(), value=i) for i in ITEMS if i.startswith(current)]

    @bot.tree.command(description="DM a member")
    async def notify(interaction: discord.Interaction, member: discord.Member) -> None:
        try:
            await member.send("You received store credit!")
        except discord.Forbidden as exc:
            seen.values["dm_error"] = exc
            await interaction.response.send_message("their DMs are closed", ephemeral=True)
        else:
            await interaction.response.send_message("sent", ephemeral=True)

    @bot.tree.command(description="Export the ledger")
    async def export(interaction: discord.Interaction) -> None:
        file = discord.File(io.BytesIO(b"user,amount\nbob,50\n"), filename="ledger.csv")
        await interaction.response.send_message("here it is", file=file)

    @bot.tree.command(description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(seen.slow_delay)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            seen.values["slow_error"] = exc

    @bot.tree.command(description="Answers twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first")
        try:  # a second InteractionResponse bypasses discord.py's own guard
            await discord.interactions.InteractionResponse(interaction).send_message("second")
        except discord.HTTPException as exc:
            seen.values["twice_error"] = exc

    @bot.tree.command(description="Give a member a role")
    async def vip(interaction: discord.Interaction, member: discord.Member, role: discord.Role) -> None:
        try:
            await member.add_roles(role)
        except discord.Forbidden as exc:
            await interaction.response.send_message(f"cannot: {exc.code}", ephemeral=True)
        else:
            await interaction.response.send_message("done", ephemeral=True)

    @bot.tree.command(description="Show a balance")
    async def balance(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="Balance: 120 credits")

    @bot.tree.command(description="Pick a color")
    async def pick(interaction: discord.Interaction) -> None:
        await interaction.channel.send("Pick one", view=PickView())  # type: ignore[union-attr]
        await interaction.response.send_message("posted", ephemeral=True)

    @bot.tree.command(description="Send feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal())

    @bot.tree.command(description="Admins only")
    @app_commands.default_permissions(manage_guild=True)
    async def admin(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)

    return bot


@dataclass
class Env:
    fake: FakeDiscord
    bot: commands.Bot
    seen: Seen
    guild: Guild
    alice: Member
    bob: Member


@contextlib.asynccontextmanager
async def running(monkeypatch: pytest.MonkeyPatch, max_records: int | None = DEFAULT_MAX_RECORDS) -> AsyncIterator[Env]:
    fake = FakeDiscord(max_records=max_records)
    await fake.start()
    guild = fake.add_guild(name="Shop")
    alice = fake.add_member(guild.id, name="alice")
    bob = fake.add_member(guild.id, name="bob")
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    seen = Seen()
    bot = make_bot(seen)
    await bot.login(fake.token)
    runner = asyncio.create_task(bot.connect())
    try:
        await fake.wait_until_ready()
        await bot.tree.sync()
        yield Env(fake, bot, seen, guild, alice, bob)
    finally:
        await bot.close()
        await asyncio.wait_for(runner, timeout=5)
        await fake.stop()
    fake.assert_clean()


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    async with running(monkeypatch) as value:
        yield value


async def test_login_connect_and_sync(env: Env) -> None:
    fake, bot = env.fake, env.bot
    assert bot.user is not None
    assert bot.user.id == fake.bot_user_id
    assert bot.application_id == fake.application_id
    await asyncio.wait_for(bot.wait_until_ready(), timeout=5)
    guild = bot.get_guild(env.guild.id)
    assert guild is not None
    assert guild.chunked
    assert {m.name for m in guild.members} == {"Promo Balance", "alice", "bob"}
    synced = {c["name"]: c for c in fake.synced_commands()}
    assert {"echo", "credits", "ask", "buy", "notify", "export"} <= set(synced)
    assert synced["credits"]["options"][0]["type"] == 1  # subcommand
    assert fake.sync_count == 1
    assert fake.gateway.received[0]["op"] == 2
    assert fake.gateway.received[0]["d"]["intents"] & (1 << 1)  # GUILD_MEMBERS


async def test_string_and_user_option_ephemeral_reply(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "echo", {"text": "hi", "target": env.bob.id})
    assert result.response_type == 4
    assert result.content == "hi -> bob"
    assert result.ephemeral
    target = env.seen.values["echo_target"]
    assert isinstance(target, discord.Member)
    assert target.id == env.bob.id
    assert target.guild.id == env.guild.id
    assert result.payload["data"]["resolved"]["members"][str(env.bob.id)]["permissions"]
    assert env.fake.channel_messages(result.channel_id) == []  # ephemeral: not in the channel


async def test_subcommand_defer_then_followup(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "credits grant", {"member": env.bob.id, "amount": "50"})
    assert result.response_type == 5
    assert result.deferred
    assert result.payload["data"]["options"][0]["name"] == "grant"
    followup = await result.wait_for_followup()
    assert followup.content == "granted 50 to bob"
    assert followup.ephemeral  # ephemerality comes from the defer
    assert result.original is followup
    assert not followup.loading
    assert env.seen.values["amount"] == 50


async def test_invalid_invocations_are_refused_before_sending(env: Env) -> None:
    fake = env.fake
    with pytest.raises(InvalidInvocation, match="outside"):
        await fake.invoke(env.guild.id, env.alice.id, "credits grant", {"member": env.bob.id, "amount": 0})
    with pytest.raises(InvalidInvocation, match="missing required"):
        await fake.invoke(env.guild.id, env.alice.id, "credits grant", {"amount": 5})
    with pytest.raises(InvalidInvocation, match="needs a subcommand"):
        await fake.invoke(env.guild.id, env.alice.id, "credits")
    with pytest.raises(InvalidInvocation, match="no synced slash command"):
        await fake.invoke(env.guild.id, env.alice.id, "nope")
    with pytest.raises(InvalidInvocation, match="default_member_permissions"):
        await fake.invoke(env.guild.id, env.alice.id, "admin")
    manager = fake.add_role(env.guild.id, "manager", permissions=Perm.MANAGE_GUILD)
    fake.set_member_roles(env.guild.id, env.alice.id, [manager])
    await fake.flush()
    result = await fake.invoke(env.guild.id, env.alice.id, "admin")
    assert result.content == "ok"
    assert fake.interactions == [result]


async def test_button_click_updates_message(env: Env) -> None:
    fake = env.fake
    asked = await fake.invoke(env.guild.id, env.alice.id, "ask")
    assert asked.content == "Sure?"
    assert asked.custom_ids == ["confirm", "cancel"]
    with pytest.raises(InvalidInvocation, match="ephemeral"):
        await fake.click(asked, "confirm", env.bob.id)
    click = await fake.click(asked, "confirm", env.alice.id)
    assert click.response_type == 7
    assert click.message is asked.message
    assert asked.content == "Confirmed"
    assert asked.message is not None
    assert asked.message.component("confirm")["disabled"] is True
    assert env.seen.values["clicked_by"] == env.alice.id
    thanks = await click.wait_for_followup()
    assert thanks.content == "thanks"
    assert thanks.ephemeral
    with pytest.raises(InvalidInvocation, match="disabled"):
        await fake.click(asked, "confirm", env.alice.id)


async def test_deferred_click_then_edit_original(env: Env) -> None:
    asked = await env.fake.invoke(env.guild.id, env.alice.id, "ask")
    click = await env.fake.click(asked, "cancel", env.alice.id)
    assert click.response_type == 6
    edited = await click.wait_for_edit()
    assert edited is asked.message
    assert edited.content == "Cancelled"
    assert edited.components == []
    assert edited.history[0]["content"] == "Sure?"


async def test_autocomplete_choices(env: Env) -> None:
    choices = await env.fake.autocomplete(env.guild.id, env.alice.id, "buy", {"item": "sw"}, focused="item")
    assert choices == [{"name": "Sword", "value": "sword"}, {"name": "Swan", "value": "swan"}]
    record = env.fake.interactions[-1]
    assert record.type == 4
    assert record.response_type == 8
    bought = await env.fake.invoke(env.guild.id, env.alice.id, "buy", {"item": "swan"})
    assert bought.content == "bought swan"
    assert not bought.ephemeral
    assert bought.embeds[0]["title"] == "Receipt"
    assert bought.message is not None
    assert "1 x swan" in bought.message.embed_text
    assert env.fake.channel_messages(bought.channel_id) == [bought.message]


async def test_command_in_dm(env: Env) -> None:
    result = await env.fake.invoke(None, env.alice.id, "buy", {"item": "shield"})
    assert result.guild_id is None
    assert "member" not in result.payload
    assert result.content == "bought shield"
    assert env.fake.dms(env.alice.id) == [result.message]


async def test_defer_then_edit_original(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "balance")
    assert result.response_type == 5
    message = await result.wait_for_edit()
    assert message.content == "Balance: 120 credits"
    assert not message.loading
    assert not message.ephemeral
    assert result.followups == []
    assert env.fake.channel_messages(result.channel_id) == [message]


async def test_select_on_channel_message(env: Env) -> None:
    fake = env.fake
    await fake.invoke(env.guild.id, env.alice.id, "pick")
    [posted] = fake.channel_messages(env.guild.text_channels()[0].id)
    assert posted.content == "Pick one"
    assert posted.interaction_id is None
    picked = await fake.click(posted, "color", env.bob.id, values=["blue"])
    assert picked.content == "picked blue"
    assert picked.ephemeral
    assert picked.payload["message"]["id"] == str(posted.id)


async def test_dm_is_recorded(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "notify", {"member": env.bob.id})
    assert result.content == "sent"
    [dm] = env.fake.dms(env.bob.id)
    assert dm.content == "You received store credit!"
    assert env.fake.dms(env.alice.id) == []


async def test_closed_dms_raise_forbidden_50007(env: Env) -> None:
    env.fake.close_dms(env.bob.id)
    result = await env.fake.invoke(env.guild.id, env.alice.id, "notify", {"member": env.bob.id})
    assert result.content == "their DMs are closed"
    error = env.seen.values["dm_error"]
    assert isinstance(error, discord.Forbidden)
    assert error.code == 50007
    assert env.fake.dms(env.bob.id) == []


async def test_rate_limited_dm_is_retried(env: Env) -> None:
    rule = env.fake.fail_next("POST", r"^/channels/\d+/messages$", 429, retry_after=0.05)
    result = await env.fake.invoke(env.guild.id, env.alice.id, "notify", {"member": env.bob.id})
    assert result.content == "sent"
    assert len(rule.hits) == 1
    assert rule.times == 0
    assert len(env.fake.requests_to("POST", r"^/channels/\d+/messages$")) == 2
    assert len(env.fake.dms(env.bob.id)) == 1


async def test_response_after_timeout_is_unknown_interaction(env: Env) -> None:
    env.fake.interaction_timeout = 0.2
    env.seen.slow_delay = 0.35
    result = await env.fake.invoke(env.guild.id, env.alice.id, "slow")
    assert result.response_type is None
    assert result.rejection_codes == [10062]
    await env.fake.wait_for(lambda: "slow_error" in env.seen.values)
    error = env.seen.values["slow_error"]
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062


async def test_double_response_is_already_acknowledged(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "twice")
    await env.fake.wait_for(lambda: "twice_error" in env.seen.values)
    assert result.content == "first"
    assert result.rejection_codes == [40060]
    assert env.seen.values["twice_error"].code == 40060


async def test_a_redelivered_interaction_reaches_the_bot_again_and_its_second_answer_is_40060(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "echo", {"text": "hi", "target": env.bob.id})
    assert result.content == "hi -> bob"
    assert result.attempts == 1
    again = await env.fake.redeliver(result)
    assert again is result  # one interaction, delivered twice: the same id, token and record
    assert result.attempts == 2
    assert result.rejection_codes == [40060]
    assert result.content == "hi -> bob"  # Discord keeps the first answer
    assert len(env.fake.interactions) == 1


async def test_file_upload_bytes_captured(env: Env) -> None:
    result = await env.fake.invoke(env.guild.id, env.alice.id, "export")
    assert result.content == "here it is"
    [upload] = result.attachments
    assert upload.filename == "ledger.csv"
    assert upload.data == b"user,amount\nbob,50\n"
    async with aiohttp.ClientSession() as session:  # the attachment URL serves the bytes
        url = result.message.payload["attachments"][0]["url"]  # type: ignore[union-attr]
        async with session.get(url) as response:
            assert await response.read() == upload.data


async def test_role_grant_respects_hierarchy(env: Env) -> None:
    fake, guild = env.fake, env.guild
    vip: Role = fake.add_role(guild.id, "VIP", position=1)
    staff: Role = fake.add_role(guild.id, "Staff", position=200)  # above the bot's role
    await fake.flush()
    ok = await fake.invoke(guild.id, env.alice.id, "vip", {"member": env.bob.id, "role": vip.id})
    assert ok.content == "done"
    assert vip.id in fake.member(guild.id, env.bob.id).roles
    bot_guild = env.bot.get_guild(guild.id)
    assert bot_guild is not None

    def cached_roles() -> list[str]:
        cached = bot_guild.get_member(env.bob.id)
        return [] if cached is None else [r.name for r in cached.roles]

    await fake.wait_for(lambda: cached_roles() == ["@everyone", "VIP"], what="GUILD_MEMBER_UPDATE")
    refused = await fake.invoke(guild.id, env.alice.id, "vip", {"member": env.bob.id, "role": staff.id})
    assert refused.content == "cannot: 50013"
    assert staff.id not in fake.member(guild.id, env.bob.id).roles


async def test_a_deleted_role_leaves_its_members_and_is_unknown_to_role_requests(env: Env) -> None:
    fake, guild = env.fake, env.guild
    vip: Role = fake.add_role(guild.id, "VIP", position=1)
    fake.set_member_roles(guild.id, env.bob.id, [vip.id])
    bot_guild = env.bot.get_guild(guild.id)
    assert bot_guild is not None
    await fake.wait_for(lambda: bot_guild.get_role(vip.id) is not None, what="GUILD_ROLE_CREATE")
    fake.delete_role(guild.id, vip.id)
    await fake.wait_for(lambda: bot_guild.get_role(vip.id) is None, what="GUILD_ROLE_DELETE")
    assert fake.member(guild.id, env.bob.id).roles == []
    with pytest.raises(discord.NotFound) as refused:
        await env.bot.http.add_role(guild.id, env.bob.id, vip.id)
    assert refused.value.code == 10011


async def test_modal_submit(env: Env) -> None:
    opened = await env.fake.invoke(env.guild.id, env.alice.id, "feedback")
    assert opened.response_type == 9
    assert opened.modal is not None
    submitted = await env.fake.submit_modal(opened, {"text": "great shop"})
    assert submitted.content == "got: great shop"


async def test_guild_sync_and_member_chunking(env: Env) -> None:
    fake, bot = env.fake, env.bot
    bot.tree.copy_global_to(guild=discord.Object(env.guild.id))
    await bot.tree.sync(guild=discord.Object(env.guild.id))
    assert {c["name"] for c in fake.synced_commands(env.guild.id)} >= {"echo", "credits"}
    assert fake.sync_count == 2
    result = await fake.invoke(env.guild.id, env.alice.id, "echo", {"text": "g", "target": env.alice.id})
    assert result.payload["data"]["guild_id"] == str(env.guild.id)
    assert result.content == "g -> alice"
    guild = bot.get_guild(env.guild.id)
    assert guild is not None
    found = await guild.query_members("al")
    assert [m.name for m in found] == ["alice"]
    assert any(op["op"] == 8 for op in fake.gateway.received)
    carol = fake.add_member(env.guild.id, name="carol")  # live: GUILD_MEMBER_ADD
    await fake.wait_for(lambda: guild.get_member(carol.id) is not None, what="carol in the cache")


@contextlib.asynccontextmanager
async def members_bot(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, **intents: bool
) -> AsyncIterator[commands.Bot]:
    """A bare discord.py bot with the Server Members intent (and ``intents``), connected to ``fake``."""
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    bot = commands.Bot(
        command_prefix="!", intents=discord.Intents(guilds=True, members=True, **intents), guild_ready_timeout=0.05
    )
    await bot.login(fake.token)
    runner = asyncio.create_task(bot.connect())
    try:
        await fake.wait_until_ready()
        yield bot
    finally:
        fake.release_member_chunks()
        await bot.close()
        await asyncio.wait_for(runner, timeout=5)


async def test_member_chunks_follow_op_8_in_batches_of_1000_and_wait_while_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on Discord: GUILD_CREATE of a bot without GUILD_PRESENCES carries only the bot; the client
    asks for the rest (op 8) and gets GUILD_MEMBERS_CHUNK events of at most 1000 members, which the
    fake holds until the test releases them, one at a time, then the rest with a delay between."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild(name="Big")
        for i in range(2499):  # and the bot: 2,500 members, three chunks
            fake.add_member(guild.id, name=f"m{i}")
        fake.hold_member_chunks()
        fake.member_chunk_delay = 0.01
        async with members_bot(fake, monkeypatch) as bot:
            identify = fake.gateway.received[0]["d"]
            assert identify["large_threshold"] == 250
            assert not identify["intents"] & (1 << 8)  # no GUILD_PRESENCES
            await fake.wait_for(lambda: fake.pending_member_chunks == 3, what="three chunks requested")
            cached = bot.get_guild(guild.id)
            assert cached is not None
            assert cached.member_count == 2500
            assert cached.large
            assert [m.id for m in cached.members] == [fake.bot_user_id]
            assert not cached.chunked
            (request,) = [m["d"] for m in fake.gateway.received if m["op"] == 8]
            assert (int(request["guild_id"]), request["query"], request["limit"]) == (guild.id, "", 0)

            fake.release_member_chunks(1)
            await fake.wait_for(lambda: len(cached.members) == 1000, what="the first chunk in the cache")
            assert fake.pending_member_chunks == 2
            assert not cached.chunked
            fake.release_member_chunks()
            await fake.wait_for(lambda: cached.chunked, what="every member in the cache")
            sent = fake.gateway.chunks_sent
            assert [(c["chunk_index"], c["chunk_count"], c["members"]) for c in sent] == [
                (0, 3, 1000),
                (1, 3, 1000),
                (2, 3, 500),
            ]
            assert {c["nonce"] for c in sent} == {request["nonce"]}
            assert fake.pending_member_chunks == 0
            await asyncio.wait_for(bot.wait_until_ready(), timeout=10)
    fake.assert_clean()


async def test_guild_create_members_depend_on_presences_and_the_large_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With GUILD_PRESENCES a guild of at most ``large_threshold`` members comes whole in
    GUILD_CREATE (no op 8 needed); a larger one leaves out offline members (in the fake: all but the
    bot) and the client chunks it."""
    async with FakeDiscord() as fake:
        small = fake.add_guild(name="Small")
        big = fake.add_guild(name="Big")
        for i in range(3):
            fake.add_member(small.id, name=f"s{i}")
        for i in range(300):
            fake.add_member(big.id, name=f"b{i}")
        async with members_bot(fake, monkeypatch, presences=True) as bot:
            await asyncio.wait_for(bot.wait_until_ready(), timeout=10)
            assert bot.get_guild(small.id).chunked  # type: ignore[union-attr]
            assert bot.get_guild(big.id).chunked  # type: ignore[union-attr]
            requested = [int(m["d"]["guild_id"]) for m in fake.gateway.received if m["op"] == 8]
            assert requested == [big.id]
    fake.assert_clean()


async def test_resume_after_reconnect(env: Env) -> None:
    fake = env.fake
    fake.send_reconnect()
    await fake.wait_for(lambda: fake.gateway.resume_count == 1, what="a RESUME")
    await fake.wait_until_ready()
    result = await fake.invoke(env.guild.id, env.alice.id, "echo", {"text": "back", "target": env.bob.id})
    assert result.content == "back -> bob"
    assert fake.gateway.identify_count == 1


async def test_raw_http_errors_without_a_bot() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        good = {"Authorization": f"Bot {fake.token}"}
        async with session.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot x"}) as r:
            assert r.status == 401
        async with session.get(f"{fake.api_base}/users/@me", headers=good) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json"
            assert (await r.json())["id"] == str(fake.bot_user_id)
        async with session.get(f"{fake.api_base}/no/such/route", headers=good) as r:
            assert r.status == 404
            assert (await r.json())["code"] == 0
        assert [(u.method, u.path) for u in fake.unhandled] == [("GET", "/no/such/route")]
        bad = [{"name": "Bad Name", "description": "x", "type": 1}]
        url = f"{fake.api_base}/applications/{fake.application_id}/commands"
        async with session.put(url, json=bad, headers=good) as r:
            assert r.status == 400
            assert (await r.json())["code"] == 50035
        fake.fail_next("GET", "^/users/@me$", 503, code=0, message="down")
        async with session.get(f"{fake.api_base}/users/@me", headers=good) as r:
            assert r.status == 503
            assert (await r.json())["message"] == "down"
        assert [r.status for r in fake.requests] == [401, 200, 404, 400, 503]


async def test_graceful_shutdown_leaves_nothing_open(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING):
            async with running(monkeypatch) as value:
                fake, bot = value.fake, value.bot
                await fake.invoke(value.guild.id, value.alice.id, "echo", {"text": "x", "target": value.bob.id})
            assert bot.is_closed()
            assert fake.gateway.connections == set()
            del bot, value
            gc.collect()
    problems = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    problems += [r.getMessage() for r in caplog.records if "nclosed" in r.getMessage()]
    assert problems == []


async def test_records_stay_bounded_in_a_long_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``max_records``, every record list and lookup table keeps only its newest entries, so a
    long-running fake (the playground) does not grow; what is kept still reads like a list."""
    async with running(monkeypatch, max_records=5) as env:
        fake = env.fake
        asked = await fake.invoke(env.guild.id, env.alice.id, "ask")  # ephemeral, with buttons
        bought = [await fake.invoke(env.guild.id, env.alice.id, "buy", {"item": f"item{n}"}) for n in range(8)]
        channel = bought[0].channel_id

        assert len(fake.interactions) == 5
        assert fake.interactions.dropped == 4
        assert fake.interactions == bought[-5:]
        assert fake.interactions[-1] is bought[-1]
        assert len(fake.requests) == 5
        assert fake.requests.total > 5
        assert fake.channel_messages(channel) == [rec.message for rec in bought[-5:]]
        assert len(fake._messages) == len(fake._interactions_by_id) == len(fake._interactions_by_token) == 5
        with pytest.raises(KeyError):
            fake.message(bought[0].message.id)  # dropped, as if Discord had forgotten it
        assert len(fake.gateway.received) <= 5
        assert fake.sync_count == 1  # counts dropped records too

        # The ephemeral message of a dropped interaction still knows whose it is.
        with pytest.raises(InvalidInvocation, match="only user"):
            await fake.click(asked, "confirm", env.bob.id)
        clicked = await fake.click(asked, "confirm", env.alice.id)
        assert clicked.content == "Confirmed"
        assert (await clicked.wait_for_followup()).content == "thanks"


async def test_records_are_bounded_by_default() -> None:
    fake = FakeDiscord()
    logs = [fake.requests, fake.unhandled, fake.violations, fake.interactions, fake.sync_log, fake.gateway.received]
    assert {log.maxlen for log in logs} == {DEFAULT_MAX_RECORDS}
    assert {table.maxlen for table in (fake._messages, fake._files, fake._nonces, fake._interactions_by_id)} == {
        DEFAULT_MAX_RECORDS
    }
    assert FakeDiscord(max_records=None).requests.maxlen is None  # None: keep everything (benchmarks)


async def test_visible_commands_follow_default_member_permissions_and_context(env: Env) -> None:
    """What Discord's client lists when a member types `/`: a front end (the playground) asks this."""
    fake = env.fake
    names = {c["name"] for c in fake.visible_commands(env.guild.id, env.alice.id)}
    assert "admin" not in names
    assert {"echo", "credits", "buy"} <= names
    manager = fake.add_role(env.guild.id, "manager", permissions=Perm.MANAGE_GUILD)
    fake.set_member_roles(env.guild.id, env.alice.id, [manager])
    assert "admin" in {c["name"] for c in fake.visible_commands(env.guild.id, env.alice.id)}
    owner = fake.add_member(env.guild.id, name="owner")
    env.guild.owner_id = owner.id
    assert "admin" in {c["name"] for c in fake.visible_commands(env.guild.id, owner.id)}
    listed = fake.visible_commands(env.guild.id, env.bob.id)
    listed[0]["name"] = "changed"  # a copy: the synced list stays as the bot sent it
    assert "changed" not in {c["name"] for c in fake.synced_commands()}


async def test_message_listeners_hear_creates_edits_and_deletes(env: Env) -> None:
    fake = env.fake
    heard: list[tuple[str, int, str]] = []
    remove = fake.add_message_listener(lambda event, message: heard.append((event, message.id, message.content)))
    asked = await fake.invoke(env.guild.id, env.alice.id, "ask")
    assert asked.message is not None
    assert heard == [("create", asked.message.id, "Sure?")]  # ephemeral ones too
    click = await fake.click(asked, "cancel", env.alice.id)
    await click.wait_for_edit()
    assert heard[-1] == ("edit", asked.message.id, "Cancelled")
    with pytest.raises(discord.NotFound):  # an ephemeral message is not the channel's: 10008, nothing heard
        await env.bot.http.delete_message(asked.channel_id, asked.message.id)
    assert heard[-1][0] == "edit"
    picked = await fake.invoke(env.guild.id, env.alice.id, "pick")
    posted = fake.channel_messages(picked.channel_id)[-1]
    await env.bot.http.delete_message(posted.channel_id, posted.id)
    assert heard[-1] == ("delete", posted.id, "Pick one")

    def broken(event: str, message: object) -> None:
        raise RuntimeError("a front end's bug")

    fake.add_message_listener(broken)
    remove()
    echoed = await fake.invoke(env.guild.id, env.bob.id, "echo", {"text": "hi", "target": env.alice.id})
    assert echoed.content == "hi -> alice"  # the broken listener did not break the request
    assert heard[-1][0] == "delete"  # removed: heard nothing more


async def test_attachment_and_interaction_lookups(env: Env) -> None:
    fake = env.fake
    exported = await fake.invoke(env.guild.id, env.alice.id, "export")
    [upload] = exported.attachments
    assert fake.attachment(upload.id).data == b"user,amount\nbob,50\n"
    assert fake.interaction(exported.id) is exported
    with pytest.raises(KeyError):
        fake.attachment(1)
