"""The one error path (users' mistakes, our bugs, Discord's 3-second window, double answers) and
the rule that no token or redeemable code ever reaches a log line, at any LOG_LEVEL."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import discord
import pytest

from bot.config import Settings
from bot.discordbot.client import point_at
from bot.domain.codes import gift_code_key
from bot.logs import CHATTY_LOGGERS, OWN_LOGGERS, setup_logging
from fakediscord import FakeDiscord, Perm
from tests.conftest import Clock
from tests.e2e import World, start_bot, stop_bot, text_of

ERROR_ID = re.compile(r"Error id `([0-9a-f]{8})`")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- users' mistakes and our bugs ---------------------------------------------------------------------


async def test_a_wrong_code_is_a_short_private_answer_and_no_error_in_the_log(
    world: World, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    rec = await world.run(world.alice, "redeem", code="NOT-A-REAL-CODE")
    assert rec.response_type == 4
    assert rec.ephemeral
    text = text_of(rec).strip()
    assert text
    assert len(text) < 200
    assert "Error id" not in text
    assert "Sorry" not in text
    assert "NOT-A-REAL-CODE" not in text.upper()  # the refusal does not echo what was typed
    assert errors_logged(caplog) == []


async def test_a_bug_gets_an_apology_with_an_error_id_and_the_log_has_the_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def broken(*args, **kwargs):
        raise RuntimeError("balance query exploded (internal detail)")

    monkeypatch.setattr(world.bot.ledger, "balance", broken)
    caplog.set_level(logging.INFO)
    rec = await world.run(world.alice, "balance")
    assert rec.response_type == 4
    assert rec.ephemeral
    text = text_of(rec)
    assert "Sorry" in text
    assert "internal detail" not in text  # the member sees no internals
    match = ERROR_ID.search(text)
    assert match, text
    error_id = match.group(1)

    [record] = [r for r in errors_logged(caplog) if error_id in r.getMessage()]
    assert record.name == "bot.discordbot.errors"
    assert "/balance" in record.getMessage()
    assert record.exc_info
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback (most recent call last)" in caplog.text
    assert "RuntimeError: balance query exploded" in caplog.text
    # Two failures get two different ids: an admin can tell them apart in the log.
    again = await world.run(world.alice, "balance")
    second = ERROR_ID.search(text_of(again))
    assert second
    assert second.group(1) != error_id


async def test_a_bug_after_deferring_is_reported_in_the_followup(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def broken(*args, **kwargs):
        raise RuntimeError("export failed")

    monkeypatch.setattr(world.bot.ledger, "export_csv", broken)
    rec = await world.run(world.mod, "credits export")
    assert rec.deferred
    assert rec.ephemeral
    followup = await rec.wait_for_followup(1)
    match = ERROR_ID.search(followup.content)
    assert match, followup.content
    assert followup.ephemeral
    assert not followup.loading
    assert any(match.group(1) in r.getMessage() for r in errors_logged(caplog))


# -- Discord's 3-second window -------------------------------------------------------------------------


def slowed(monkeypatch: pytest.MonkeyPatch, obj: object, name: str, seconds: float) -> None:
    original = getattr(obj, name)

    async def slow(*args, **kwargs):
        await asyncio.sleep(seconds)
        return await original(*args, **kwargs)

    monkeypatch.setattr(obj, name, slow)


async def test_slow_commands_defer_before_the_work(world: World, monkeypatch: pytest.MonkeyPatch):
    """With the window shrunk to 0.3 s and the ledger work slowed to 0.6 s, only a command that
    defers first still gets its answer to the member."""
    w = world
    w.fake.interaction_timeout = 0.3
    slowed(monkeypatch, w.bot.ledger, "export_csv", 0.6)
    slowed(monkeypatch, w.bot.ledger, "grant_many", 0.6)
    w.fake.set_member_roles(w.guild.id, w.alice.id, [w.vip_role.id])
    w.fake.set_member_roles(w.guild.id, w.bob.id, [w.vip_role.id])
    await w.fake.wait_for(
        lambda: len(w.bot.get_guild(w.guild.id).get_role(w.vip_role.id).members) == 2, what="role members"
    )

    export = await w.run(w.mod, "credits export")
    granted = await w.run(w.mod, "credits grant-role", role=w.vip_role.id, amount="5")
    for rec in (export, granted):
        assert rec.deferred
        assert rec.ephemeral
        assert rec.rejection_codes == []
    exported = await export.wait_for_followup(1)
    assert exported.attachments
    assert exported.attachments[0].filename.endswith(".csv")
    done = await granted.wait_for_followup(1)
    assert "each of the 2 members" in done.content
    assert (await w.ledger.balance(w.guild.id, w.bob.id)).total == 5


async def test_an_answer_after_the_window_is_a_warning_not_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    w = world
    caplog.set_level(logging.INFO)
    w.fake.interaction_timeout = 0.2
    with monkeypatch.context() as patch:
        slowed(patch, w.bot.ledger, "balance", 0.4)
        rec = await w.run(w.alice, "balance")
    assert rec.rejection_codes == [10062]
    assert not rec.acknowledged
    await w.fake.wait_for(lambda: any("expired" in r.getMessage() for r in caplog.records), what="the expiry warning")
    [warning] = [r for r in caplog.records if "expired" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert str(rec.id) in warning.getMessage()
    await asyncio.sleep(0.1)  # nothing else follows: no apology attempt, no "Ignoring exception"
    assert rec.attempts == 1
    assert errors_logged(caplog) == []

    w.fake.interaction_timeout = 3.0
    later = await w.run(w.alice, "balance")
    assert later.acknowledged
    assert later.rejection_codes == []


async def test_an_interaction_answered_elsewhere_is_a_warning_not_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """40060: another process with the same token (a second copy of the bot) answered first."""
    w = world
    caplog.set_level(logging.INFO)
    original = w.bot.ledger.balance

    async def answered_elsewhere_first(*args, **kwargs):
        rec = w.fake.interactions[-1]
        url = f"{w.fake.api_base}/interactions/{rec.id}/{rec.token}/callback"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url, json={"type": 4, "data": {"content": "answered by the other copy", "flags": 64}}
            ) as response,
        ):
            assert response.status == 204
        return await original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(w.bot.ledger, "balance", answered_elsewhere_first)
        rec = await w.run(w.alice, "balance")
        await rec.wait_until(lambda r: 40060 in r.rejection_codes)
    await w.fake.wait_for(
        lambda: any("already acknowledged" in r.getMessage() for r in caplog.records), what="the warning"
    )
    await asyncio.sleep(0.1)
    assert rec.content == "answered by the other copy"
    assert rec.followups == []  # no apology pushed into someone else's answer
    assert errors_logged(caplog) == []
    [warning] = [r for r in caplog.records if "already acknowledged" in r.getMessage()]
    assert warning.levelno == logging.WARNING

    later = await w.run(w.alice, "balance")
    assert later.acknowledged
    assert "Your balance" in text_of(later)


# -- no secrets in the log -----------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = (*OWN_LOGGERS, *CHATTY_LOGGERS, "discord", "discord.gateway")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
async def logged_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> AsyncIterator[tuple[World, io.StringIO, str]]:
    """Like `world`, but logging is set up as `python -m bot` does at LOG_LEVEL=DEBUG, before the
    bot logs in, writing to a buffer the test reads."""
    token = "test-token-" + secrets.token_urlsafe(24)
    fake = FakeDiscord(token=token)
    await fake.start()
    guild = fake.add_guild(name="Shop Guild")
    owner = fake.add_member(guild.id, name="owner")
    mod_role = fake.add_role(guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
    vip_role = fake.add_role(guild.id, "VIP", position=2)
    mod = fake.add_member(guild.id, name="mod", roles=[mod_role.id])
    alice = fake.add_member(guild.id, name="alice")
    bob = fake.add_member(guild.id, name="bob")
    settings = Settings(
        discord_token=token,
        database_path=tmp_path / "bot.sqlite3",
        dev_guild_id=None,
        log_level="DEBUG",
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
    )
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    point_at(settings)
    buffer = io.StringIO()
    setup_logging(settings.log_level, secrets=(settings.discord_token,), stream=buffer)
    clock = Clock()
    bot, task = await start_bot(settings, fake, clock)
    try:
        yield (
            World(fake, bot, clock, guild, owner, mod, alice, bob, mod_role, vip_role, 0, settings),
            buffer,
            token,
        )
    finally:
        await stop_bot(bot, task)
        await fake.stop()
    fake.assert_clean()


async def test_no_token_or_code_in_the_log_at_debug(logged_world: tuple[World, io.StringIO, str]):
    w, buffer, token = logged_world
    issued = await w.run(w.mod, "giftcard issue", amount="10", count=2)
    cards = re.findall(r"`([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})`", issued.content)
    assert len(cards) == 2, issued.content
    promo = "SPRING-SALE-7Q"
    created = await w.run(w.mod, "promo create", code=promo, amount="5")
    assert "Promo code created" in text_of(created)

    first = await w.run(w.alice, "redeem", code=cards[0])
    second = await w.run(w.bob, "redeem", code=cards[1].lower().replace("-", " "))
    third = await w.run(w.alice, "redeem", code=promo.lower())
    for rec in (first, second, third):
        assert "Code redeemed" in text_of(rec), text_of(rec)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 15

    # A rate-limited interaction callback: discord.py logs the URL, which holds the interaction token.
    w.fake.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", status=429, retry_after=0.05)
    limited = await w.run(w.bob, "balance")
    assert limited.acknowledged
    await asyncio.sleep(0.1)

    out = buffer.getvalue()
    assert "synced" in out  # the capture works: our INFO lines are there
    assert "database" in out
    assert "rate limited" in out  # discord.py's warning about it was written
    assert token not in out
    assert limited.token not in out
    for card in cards:
        canonical = gift_code_key(card)
        assert canonical is not None
        for form in (card, canonical, card.lower(), canonical.lower()):
            assert form not in out
    assert promo.lower() not in out.lower()
    assert promo.replace("-", "").lower() not in out.lower()
    # Other libraries' DEBUG lines (gateway payloads, HTTP bodies, aiosqlite calls) never appear.
    debug_from = {m.group(1) for m in re.finditer(r" DEBUG +(\S+):", out)}
    assert all(name.split(".")[0] in OWN_LOGGERS for name in debug_from), debug_from
    assert "WebSocket Event" not in out


def test_library_debug_records_are_dropped_even_if_their_logger_is_turned_up(restore_logging: None):
    buffer = io.StringIO()
    setup_logging("DEBUG", stream=buffer)
    logging.getLogger("discord.gateway").setLevel(logging.DEBUG)  # e.g. someone debugging discord.py
    logging.getLogger("discord.gateway").debug("WebSocket Event: %s", {"options": [{"value": "SPRING-SALE-7Q"}]})
    logging.getLogger("discord.gateway").info("Shard ID None has connected")
    logging.getLogger("bot.discordbot.client").debug("our own debug line")
    out = buffer.getvalue()
    assert "SPRING-SALE-7Q" not in out
    assert "has connected" in out
    assert "our own debug line" in out


def test_the_formatter_masks_tokens_and_gift_codes_in_tracebacks(restore_logging: None):
    buffer = io.StringIO()
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
    setup_logging("INFO", secrets=("my-own-secret",), stream=buffer)
    try:
        raise RuntimeError(f"leak {token} 7KQ2-M9XD-3F8B-ZT1C my-own-secret")
    except RuntimeError:
        logging.getLogger("bot.discordbot.client").exception(
            "GET /webhooks/123/aW50ZXJhY3Rpb246MTIzNDU2Nzg5/messages/@original failed"
        )
    out = buffer.getvalue()
    assert "Traceback" in out
    assert token not in out
    assert "my-own-secret" not in out
    assert "7KQ2-M9XD-3F8B" not in out
    assert "ZT1C" in out  # only the last 4 remain
    assert "aW50ZXJhY3Rpb24" not in out
    assert "/webhooks/123/[redacted]/messages" in out


async def test_a_command_discord_still_shows_after_an_update_gets_a_hint_not_an_apology(
    world: World, caplog: pytest.LogCaptureFixture
):
    world.bot.tree.remove_command("history")  # the bot was updated; Discord's list is not yet
    rec = await world.run(world.alice, "history")
    assert rec.ephemeral
    assert "changed in an update" in text_of(rec)
    assert "Error id" not in text_of(rec)
    assert errors_logged(caplog) == []
