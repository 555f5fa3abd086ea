"""The playground's web page and its API (aiohttp), on 127.0.0.1 only.

`GET /` is the page (plain HTML, CSS and JavaScript from `static/`, no build step, nothing fetched
from the internet). The API does what a member does in Discord's client, through the fake Discord:

- `GET /api/state`: the server (members and their roles, channels), the bot, the playground's time;
- `GET /api/commands?user=ID[&channel=dm]`: the commands this member may use here, as Discord's
  client lists them when they type `/` (`FakeDiscord.visible_commands`);
- `POST /api/invoke` `{user, channel, command, options}`: run a slash command (`FakeDiscord.invoke`;
  what Discord's client would not send, such as a missing required option, is a 400 saying why);
- `POST /api/autocomplete` `{user, channel, command, options, focused}`: the bot's choices;
- `POST /api/click` `{user, message, custom_id, values?}`: press a button or pick in a select;
- `POST /api/modal` `{user, interaction, values}`: submit the modal the bot opened;
- `POST /api/clock` `{step}`: "hour", "day", "week" or "next-reminder", then the jobs due run;
- `GET /api/attachments/{id}/{filename}`: a file the bot sent (a CSV export, the report chart);
- `GET /api/live`: a websocket: a snapshot of the messages, then each message created, edited or
  deleted, the clock when it moves, and the server when its members' roles change.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from bot.playground.feed import content_type_of
from fakediscord import InteractionRecord, InvalidInvocation

if TYPE_CHECKING:
    from bot.playground.app import Playground

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PLAYGROUND: web.AppKey[Playground] = web.AppKey("playground")
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")
#: Seconds the API waits for the bot's first answer (Discord gives the bot 3 s, then says "The
#: application did not respond").
ANSWER_TIMEOUT = 5.0
STATE_EVERY = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(playground: Playground) -> web.Application:
    app = web.Application(middlewares=[_only_local, _json_errors], client_max_size=16 * 1024 * 1024)
    app[PLAYGROUND] = playground
    app[SOCKETS] = set()
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/commands", _commands)
    app.router.add_post("/api/invoke", _invoke)
    app.router.add_post("/api/autocomplete", _autocomplete)
    app.router.add_post("/api/click", _click)
    app.router.add_post("/api/modal", _modal)
    app.router.add_post("/api/clock", _clock)
    app.router.add_get("/api/attachments/{id}/{filename}", _attachment)
    app.router.add_get("/api/live", _live)
    app.on_shutdown.append(_close_sockets)
    return app


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@web.middleware
async def _only_local(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages of other sites can't reach the playground through a name that points at 127.0.0.1."""
    host = (request.host or "").rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        return web.json_response({"error": "the playground answers only on 127.0.0.1"}, status=403)
    return await handler(request)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    if request.path.startswith("/api/") and request.path != "/api/live" and not playground.ready.is_set():
        return web.json_response({"error": "the playground is still starting"}, status=503)
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except InvalidInvocation as exc:  # what Discord's client would not let the member send
        return web.json_response({"error": str(exc), "refused_by": "discord"}, status=400)


# -------------------------------------------------------------------- reading requests
async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object")
    return body


def _int(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ApiError(400, f"{what} must be an id")


def _member(playground: Playground, value: Any) -> int:
    user_id = _int(value, "user")
    if user_id not in playground.fake.guilds[playground.guild_id].members:
        raise ApiError(400, f"user {user_id} is not in the playground's server")
    return user_id


def _where(playground: Playground, value: Any) -> tuple[int | None, int | None]:
    """(guild id, channel id) of a channel named by the page: a channel of the server, or "dm"."""
    if value in (None, "", "dm"):
        return (None, None) if value == "dm" else (playground.guild_id, None)
    channel_id = _int(value, "channel")
    if channel_id not in playground.fake.guilds[playground.guild_id].channels:
        raise ApiError(400, f"channel {channel_id} is not in the playground's server")
    return playground.guild_id, channel_id


def _options(raw: Any) -> dict[str, Any]:
    """Option values as the page sends them; a file is ``{"filename", "data": base64, "content_type"}``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "options must be an object")
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            try:
                data = base64.b64decode(str(value["data"]), validate=True)
                options[name] = (str(value["filename"]), data, str(value.get("content_type") or "") or None)
            except (KeyError, binascii.Error):
                raise ApiError(400, f"option {name}: a file needs a filename and base64 data") from None
        else:
            options[name] = value
    return options


def _answer(record: InteractionRecord) -> dict[str, Any]:
    return {
        "interaction": str(record.id),
        "responded": record.acknowledged,
        "modal": record.modal,
        "rejections": list(record.rejections),
    }


async def _waited(record: InteractionRecord) -> dict[str, Any]:
    with contextlib.suppress(TimeoutError):
        await record.wait_for_response(ANSWER_TIMEOUT)
    return _answer(record)


# -------------------------------------------------------------------- handlers
async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def state_of(playground: Playground) -> dict[str, Any]:
    fake = playground.fake
    guild = fake.guilds[playground.guild_id]
    roles = sorted((r for r in guild.roles.values() if r.id != guild.id and not r.managed), key=lambda r: -r.position)
    position = {r.id: r.position for r in roles}
    members = []
    for member in guild.members.values():
        if member.user.bot:
            continue
        own = sorted((r for r in member.roles if r in position), key=lambda r: -position[r])
        members.append(
            {
                "id": str(member.id),
                "name": member.nick or member.user.global_name or member.user.username,
                "username": member.user.username,
                "owner": member.id == guild.owner_id,
                "roles": [str(r) for r in own],
            }
        )
    channels = sorted(guild.text_channels(), key=lambda c: c.position)
    return {
        "guild": {"id": str(guild.id), "name": guild.name},
        "bot": {"id": str(fake.bot_user.id), "name": fake.bot_user.username},
        "members": members,
        "roles": [{"id": str(r.id), "name": r.name, "color": r.color} for r in roles],
        "channels": [{"id": str(c.id), "name": c.name, "topic": c.topic} for c in channels],
        "clock": playground.clock_state(),
    }


async def _state(request: web.Request) -> web.StreamResponse:
    return web.json_response(state_of(request.app[PLAYGROUND]))


async def _commands(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    user_id = _member(playground, request.query.get("user"))
    guild_id, _ = _where(playground, request.query.get("channel"))
    return web.json_response({"commands": playground.fake.visible_commands(guild_id, user_id)})


async def _invoke(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    body = await _body(request)
    user_id = _member(playground, body.get("user"))
    guild_id, channel_id = _where(playground, body.get("channel"))
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ApiError(400, "command is the command's path, e.g. 'credits grant'")
    record = await playground.fake.invoke(
        guild_id, user_id, command, _options(body.get("options")), channel_id=channel_id, wait=False
    )
    return web.json_response(await _waited(record))


async def _autocomplete(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    body = await _body(request)
    user_id = _member(playground, body.get("user"))
    guild_id, channel_id = _where(playground, body.get("channel"))
    focused = body.get("focused")
    if not isinstance(focused, str):
        raise ApiError(400, "focused names the option being typed")
    options = {k: v for k, v in _options(body.get("options")).items() if not isinstance(v, tuple)}
    try:
        choices = await playground.fake.autocomplete(
            guild_id,
            user_id,
            str(body.get("command") or ""),
            options,
            focused=focused,
            channel_id=channel_id,
            timeout=ANSWER_TIMEOUT,
        )
    except (AssertionError, TimeoutError):  # the bot sent no choices: Discord's client shows none
        choices = []
    return web.json_response({"choices": choices})


async def _click(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    body = await _body(request)
    user_id = _member(playground, body.get("user"))
    try:
        message = playground.fake.message(_int(body.get("message"), "message"))
    except KeyError:
        raise ApiError(404, "that message is gone") from None
    custom_id = body.get("custom_id")
    if not isinstance(custom_id, str):
        raise ApiError(400, "custom_id names the button")
    values = body.get("values")
    record = await playground.fake.click(
        message, custom_id, user_id, values=[str(v) for v in values] if isinstance(values, list) else None, wait=False
    )
    return web.json_response(await _waited(record))


async def _modal(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    body = await _body(request)
    user_id = _member(playground, body.get("user"))
    try:
        opened_by = playground.fake.interaction(_int(body.get("interaction"), "interaction"))
    except KeyError:
        raise ApiError(404, "that interaction is gone") from None
    values = body.get("values")
    if not isinstance(values, dict):
        raise ApiError(400, "values maps each text input's custom_id to its text")
    record = await playground.fake.submit_modal(opened_by, values, user_id=user_id, wait=False)
    return web.json_response(await _waited(record))


async def _clock(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    body = await _body(request)
    try:
        return web.json_response(await playground.move_clock(str(body.get("step"))))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


async def _attachment(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    try:
        upload = playground.fake.attachment(_int(request.match_info["id"], "attachment"))
    except KeyError:
        raise ApiError(404, "that file is gone") from None
    if upload.filename != request.match_info["filename"]:
        raise ApiError(404, "that file is gone")
    content_type = content_type_of(upload)
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    return web.Response(
        body=upload.data,
        content_type=content_type,
        headers={"Content-Disposition": f'{disposition}; filename="{upload.filename}"'},
    )


async def _live(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    queue = playground.feed.subscribe()
    reader = asyncio.create_task(_drain(ws))
    try:
        await playground.ready.wait()
        state = state_of(playground)
        await ws.send_json({"type": "hello", "state": state, "messages": playground.feed.snapshot()})
        while not ws.closed and not reader.done():
            try:
                event = await asyncio.wait_for(queue.get(), STATE_EVERY)
            except TimeoutError:
                now = state_of(playground)
                if now["members"] != state["members"] or now["roles"] != state["roles"]:
                    state = now
                    await ws.send_json({"type": "state", "state": state})
                continue
            if event["type"] == "resync":
                await ws.send_json(
                    {"type": "hello", "state": state_of(playground), "messages": playground.feed.snapshot()}
                )
                continue
            await ws.send_json(event)
    except (ConnectionResetError, RuntimeError):  # the page went away mid-send
        pass
    finally:
        playground.feed.unsubscribe(queue)
        reader.cancel()
        request.app[SOCKETS].discard(ws)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the page sends, until it closes."""
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            break


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in [*sockets]:
        await ws.close(code=1001, message=b"the playground stopped")
