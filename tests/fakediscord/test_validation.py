"""The strict fake refuses what Discord refuses: one bad payload per rule, each beside a good one
that passes, so a rule that stopped catching anything (or started refusing good bodies) fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from fakediscord import FakeDiscord
from fakediscord.validation import SPEC_DIR, check_request, errors_object

CALLBACK = "/interactions/1/tok/callback"
FOLLOWUP = "/webhooks/1/tok"
EDIT_ORIGINAL = "/webhooks/1/tok/messages/@original"
CHANNEL_MESSAGE = "/channels/1/messages"
COMMANDS = "/applications/1/commands"
GUILD_COMMANDS = "/applications/1/guilds/2/commands"


def reply(**data: Any) -> dict[str, Any]:
    return {"type": 4, "data": data}


def row(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(buttons)}


def button(custom_id: str, label: str = "Go") -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id}


def option(name: str, *, required: bool = False, kind: int = 3, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, "description": "an option", "required": required, **extra}


def command(name: str = "shop", **extra: Any) -> dict[str, Any]:
    return {"type": 1, "name": name, "description": "a command", **extra}


def choices(n: int, name: str = "x", value: str = "x") -> dict[str, Any]:
    return {"type": 8, "data": {"choices": [{"name": name, "value": value} for _ in range(n)]}}


def embed(**fields: Any) -> dict[str, Any]:
    return {"title": "t", **fields}


# (rule, method, path, good body, bad body, where the bad one is refused)
CASES: list[tuple[str, str, str, Any, Any, str]] = [
    ("content 2,000", "POST", CHANNEL_MESSAGE, {"content": "x" * 2000}, {"content": "x" * 2001}, "content"),
    (
        "content 2,000 in a reply",
        "POST",
        CALLBACK,
        reply(content="x" * 2000),
        reply(content="x" * 2001),
        "data.content",
    ),
    ("content 2,000 in a followup", "POST", FOLLOWUP, {"content": "x" * 2000}, {"content": "x" * 2001}, "content"),
    ("content 2,000 in an edit", "PATCH", EDIT_ORIGINAL, {"content": "x" * 2000}, {"content": "x" * 2001}, "content"),
    (
        "title 256",
        "POST",
        CALLBACK,
        reply(embeds=[embed(title="x" * 256)]),
        reply(embeds=[embed(title="x" * 257)]),
        "data.embeds.0.title",
    ),
    (
        "description 4,096",
        "POST",
        FOLLOWUP,
        {"embeds": [embed(description="x" * 4096)]},
        {"embeds": [embed(description="x" * 4097)]},
        "embeds.0.description",
    ),
    (
        "field value 1,024",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(fields=[{"name": "n", "value": "v" * 1024}])]},
        {"embeds": [embed(fields=[{"name": "n", "value": "v" * 1025}])]},
        "embeds.0.fields.0.value",
    ),
    (
        "field name 256",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(fields=[{"name": "n" * 256, "value": "v"}])]},
        {"embeds": [embed(fields=[{"name": "n" * 257, "value": "v"}])]},
        "embeds.0.fields.0.name",
    ),
    (
        "25 fields",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(fields=[{"name": "n", "value": "v"}] * 25)]},
        {"embeds": [embed(fields=[{"name": "n", "value": "v"}] * 26)]},
        "embeds.0.fields",
    ),
    (
        "footer 2,048",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(footer={"text": "f" * 2048})]},
        {"embeds": [embed(footer={"text": "f" * 2049})]},
        "embeds.0.footer.text",
    ),
    ("10 embeds", "POST", CHANNEL_MESSAGE, {"embeds": [embed()] * 10}, {"embeds": [embed()] * 11}, "embeds"),
    (
        "6,000 across the embeds",
        "POST",
        CALLBACK,
        reply(embeds=[embed(title="", description="x" * 3000), embed(title="", description="x" * 3000)]),
        reply(embeds=[embed(title="", description="x" * 3000), embed(title="", description="x" * 3001)]),
        "data.embeds",
    ),
    (
        "6,000 counts fields too",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(title="", description="x" * 4000, fields=[{"name": "n", "value": "v" * 999}] * 2)]},
        {"embeds": [embed(title="", description="x" * 4000, fields=[{"name": "n", "value": "v" * 1000}] * 2)]},
        "embeds",
    ),
    ("unknown field", "POST", CALLBACK, reply(content="hi", flags=64), reply(content="hi", ephemral=True), "data"),
    (
        "unknown field in an embed",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(color=1)]},
        {"embeds": [embed(colour=1)]},
        "embeds.0",
    ),
    ("wrong type", "POST", CHANNEL_MESSAGE, {"content": "5"}, {"content": 5}, "content"),
    (
        "wrong type in a field",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(fields=[{"name": "n", "value": "v"}])]},
        {"embeds": [embed(fields=[{"name": "n", "value": 5}])]},
        "embeds.0.fields.0.value",
    ),
    (
        "required field",
        "POST",
        CHANNEL_MESSAGE,
        {"embeds": [embed(fields=[{"name": "n", "value": "v"}])]},
        {"embeds": [embed(fields=[{"name": "n"}])]},
        "embeds.0.fields.0.value",
    ),
    ("callback type", "POST", CALLBACK, reply(content="hi"), {"type": 42, "data": {"content": "hi"}}, "type"),
    (
        "5 action rows",
        "POST",
        CALLBACK,
        reply(components=[row(button(f"b{i}")) for i in range(5)]),
        reply(components=[row(button(f"b{i}")) for i in range(6)]),
        "data.components",
    ),
    (
        "5 buttons a row",
        "POST",
        FOLLOWUP,
        {"components": [row(*(button(f"b{i}") for i in range(5)))]},
        {"components": [row(*(button(f"b{i}") for i in range(6)))]},
        "components.0.components",
    ),
    (
        "button label 80",
        "POST",
        FOLLOWUP,
        {"components": [row(button("a", "x" * 80))]},
        {"components": [row(button("a", "x" * 81))]},
        "components.0.components.0.label",
    ),
    (
        "custom_id 100",
        "POST",
        FOLLOWUP,
        {"components": [row(button("a" * 100))]},
        {"components": [row(button("a" * 101))]},
        "components.0.components.0.custom_id",
    ),
    (
        "unique custom_ids",
        "PATCH",
        EDIT_ORIGINAL,
        {"components": [row(button("a")), row(button("b"))]},
        {"components": [row(button("a")), row(button("a"))]},
        "components",
    ),
    (
        "10 attachments",
        "POST",
        CHANNEL_MESSAGE,
        {"attachments": [{"id": i} for i in range(10)]},
        {"attachments": [{"id": i} for i in range(11)]},
        "attachments",
    ),
    ("25 autocomplete choices", "POST", CALLBACK, choices(25), choices(26), "data.choices"),
    (
        "choice name 1-100",
        "POST",
        CALLBACK,
        choices(1, name="n" * 100),
        choices(1, name="n" * 101),
        "data.choices.0.name",
    ),
    ("empty choice name", "POST", CALLBACK, choices(1, name="n"), choices(1, name=""), "data.choices.0.name"),
    (
        "choice value 100",
        "POST",
        CALLBACK,
        choices(1, value="v" * 100),
        choices(1, value="v" * 101),
        "data.choices.0.value",
    ),
    (
        "modal title 45",
        "POST",
        CALLBACK,
        {
            "type": 9,
            "data": {
                "custom_id": "m",
                "title": "t" * 45,
                "components": [
                    {"type": 1, "components": [{"type": 4, "custom_id": "r", "style": 1, "label": "Reason"}]}
                ],
            },
        },
        {
            "type": 9,
            "data": {
                "custom_id": "m",
                "title": "t" * 46,
                "components": [
                    {"type": 1, "components": [{"type": 4, "custom_id": "r", "style": 1, "label": "Reason"}]}
                ],
            },
        },
        "data.title",
    ),
    ("lower-case command name", "PUT", COMMANDS, [command("shop")], [command("Shop")], "0.name"),
    ("command name pattern", "PUT", GUILD_COMMANDS, [command("grant-role")], [command("grant role")], "0.name"),
    ("command name 32", "PUT", COMMANDS, [command("x" * 32)], [command("x" * 33)], "0.name"),
    (
        "lower-case option name",
        "PUT",
        COMMANDS,
        [command(options=[option("item")])],
        [command(options=[option("Item")])],
        "0.options.0.name",
    ),
    (
        "description 100",
        "PUT",
        COMMANDS,
        [command(description="d" * 100)],
        [command(description="d" * 101)],
        "0.description",
    ),
    (
        "required options first",
        "PUT",
        COMMANDS,
        [command(options=[option("a", required=True), option("b")])],
        [command(options=[option("b"), option("a", required=True)])],
        "0.options.1.required",
    ),
    (
        "required options first in a subcommand",
        "PUT",
        COMMANDS,
        [command(options=[option("add", kind=1, options=[option("a", required=True), option("b")])])],
        [command(options=[option("add", kind=1, options=[option("b"), option("a", required=True)])])],
        "0.options.0.options.1.required",
    ),
    (
        "25 options",
        "PUT",
        COMMANDS,
        [command(options=[option(f"o{i}") for i in range(25)])],
        [command(options=[option(f"o{i}") for i in range(26)])],
        "0.options",
    ),
    (
        "25 subcommands",
        "PUT",
        COMMANDS,
        [command(options=[option(f"s{i}", kind=1) for i in range(25)])],
        [command(options=[option(f"s{i}", kind=1) for i in range(26)])],
        "0.options",
    ),
    (
        "25 option choices",
        "PUT",
        COMMANDS,
        [command(options=[option("c", choices=[{"name": f"n{i}", "value": f"v{i}"} for i in range(25)])])],
        [command(options=[option("c", choices=[{"name": f"n{i}", "value": f"v{i}"} for i in range(26)])])],
        "0.options.0.choices",
    ),
    (
        "8,000 per command",
        "PUT",
        COMMANDS,
        # 5 subcommands of 14 options with 100-character descriptions fit; of 15 they do not.
        [
            command(
                options=[
                    option(
                        f"s{i:02}",
                        kind=1,
                        description="d" * 100,
                        options=[option(f"o{j:02}", description="d" * 100) for j in range(14)],
                    )
                    for i in range(5)
                ]
            )
        ],
        [
            command(
                options=[
                    option(
                        f"s{i:02}",
                        kind=1,
                        description="d" * 100,
                        options=[option(f"o{j:02}", description="d" * 100) for j in range(15)],
                    )
                    for i in range(5)
                ]
            )
        ],
        "0",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "good", "bad", "where"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_each_rule_refuses_the_bad_body_and_passes_the_good_one(
    method: str, path: str, good: Any, bad: Any, where: str
) -> None:
    assert check_request(method, path, good) == []
    problems = check_request(method, path, bad)
    assert problems, f"{method} {path} passed a body Discord refuses"
    assert where in [p.where for p in problems], problems


def test_8000_case_sits_on_both_sides_of_the_limit() -> None:
    """The 8,000 case above only proves something if good and bad straddle the limit."""
    from fakediscord.validation import _command_length

    good, bad = next(case for case in CASES if case[0] == "8,000 per command")[3:5]
    assert _command_length(good[0]) <= 8000 < _command_length(bad[0])


def test_too_many_uploaded_files_are_refused() -> None:
    assert check_request("POST", CHANNEL_MESSAGE, {"content": "x"}, uploads=10) == []
    assert [p.where for p in check_request("POST", CHANNEL_MESSAGE, {"content": "x"}, uploads=11)] == ["attachments"]


def test_errors_object_nests_like_discord() -> None:
    problems = check_request("POST", CALLBACK, reply(embeds=[embed(title="x" * 257)]))
    assert errors_object(problems) == {
        "data": {
            "embeds": {
                "0": {
                    "title": {
                        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]
                    }
                }
            }
        }
    }


def test_the_spec_is_discords_own_copy() -> None:
    """The copy in the package is the one in shared/ (when a folder above the checkout has it)."""
    candidates = (parent / "shared" / "discord-api-spec" for parent in Path(__file__).resolve().parents)
    shared = next((c for c in candidates if c.is_dir()), None)
    if shared is None:
        pytest.skip("no shared/discord-api-spec above this checkout")
    for name in ("openapi.json", "VERSION"):
        assert (SPEC_DIR / name).read_bytes() == (shared / name).read_bytes(), name


async def test_a_violation_is_answered_as_discord_does_and_recorded() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        fake.add_guild()
        channel = next(iter(fake.channels.values()))
        headers = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_base}/channels/{channel.id}/messages"
        async with session.post(url, json={"embeds": [{"title": "x" * 300}]}, headers=headers) as r:
            assert r.status == 400
            body = await r.json()
        assert body["code"] == 50035
        assert body["message"] == "Invalid Form Body"
        assert body["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        assert fake.channel_messages(channel.id) == []  # nothing was posted

        # payload_json of a multipart upload is checked the same way
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps({"content": "x" * 2001}), content_type="application/json")
        form.add_field("files[0]", b"a,b\n", filename="a.csv", content_type="text/csv")
        async with session.post(url, data=form, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["errors"]["content"]["_errors"]

        async with session.post(url, json={"content": "fine"}, headers=headers) as r:
            assert r.status == 200
        assert [v.path for v in fake.violations] == [f"/channels/{channel.id}/messages"] * 2
        with pytest.raises(AssertionError, match=r"embeds\.0\.title"):
            fake.assert_clean()


async def test_discordpy_sees_the_refusal_as_an_http_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real client: what the bot's error handling will meet."""
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        channel_id = next(c.id for c in fake.channels.values() if c.guild_id == guild.id)
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        client = discord.Client(intents=discord.Intents.none())
        await client.login(fake.token)
        try:
            channel = await client.fetch_channel(channel_id)
            assert isinstance(channel, discord.TextChannel)
            with pytest.raises(discord.HTTPException) as caught:
                await channel.send(embed=discord.Embed(description="x" * 4097))
            assert caught.value.status == 400
            assert caught.value.code == 50035
            await channel.send(embed=discord.Embed(description="x" * 4096))  # the longest that fits
        finally:
            await client.close()
        assert len(fake.violations) == 1
