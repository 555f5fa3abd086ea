"""The websocket gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME, chunks.

Frames are plain TEXT JSON (discord.py asks for ``compress=zlib-stream`` in the URL but
handles text frames without it). Every outgoing payload goes through one queue per
connection, so events reach the client in exactly the order the fake produced them.

Member lists arrive as on Discord: GUILD_CREATE carries only the bot (see
``FakeDiscord._guild_create_payload``), and the client asks for the rest with op 8
(REQUEST_GUILD_MEMBERS), answered by GUILD_MEMBERS_CHUNK events of at most 1000 members.
Chunks can be slowed (``FakeDiscord.member_chunk_delay``) or held until a test releases them
(``FakeDiscord.hold_member_chunks`` / ``release_member_chunks``).

Sharding is served as Discord serves it: several sessions may be live at once, each IDENTIFYing
with ``shard: [shard_id, num_shards]``, possibly from different processes. A session gets READY,
GUILD_CREATE and every event of a guild only for the guilds of its shard
(``(guild_id >> 22) % num_shards``); events without a guild (DMs, interactions in DMs) go to shard 0
only. A session without ``shard`` gets everything. IDENTIFY is closed with 4010 "Invalid shard" for
a shard id outside ``[0, num_shards)`` (or a count that differs from another live session's), and
with 4011 "Sharding required" when the session would have more than
``FakeDiscord.max_guilds_per_shard`` guilds (Discord: 2,500).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads
from .models import Intent, shard_of
from .records import RecordLog

if TYPE_CHECKING:
    from .fake import FakeDiscord

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

#: Events the client only receives with the GUILD_MEMBERS intent.
MEMBER_EVENTS = frozenset({"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"})
#: Message events: a guild channel's need GUILD_MESSAGES, a DM's DIRECT_MESSAGES.
MESSAGE_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"})

REPLAY_BUFFER = 1000
#: Discord sends at most this many members per GUILD_MEMBERS_CHUNK.
CHUNK_SIZE = 1000
#: IDENTIFY's ``large_threshold`` when the client sends none (Discord's default).
DEFAULT_LARGE_THRESHOLD = 50
#: Close codes Discord uses for a bad ``shard`` and for a session with too many guilds.
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011
#: Events whose guild is the payload's ``id`` (the others carry ``guild_id``).
GUILD_ID_EVENTS = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})


def event_guild(event: str, data: dict[str, Any]) -> int | None:
    """The guild an event belongs to, or None (a DM's events, and others without a guild)."""
    raw = data.get("id") if event in GUILD_ID_EVENTS else data.get("guild_id")
    return None if raw is None else int(raw)


class _Connection:
    """One websocket: an ordered outgoing queue drained by a writer task."""

    def __init__(self, ws: web.WebSocketResponse, on_sent: Callable[[], None]) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[dict[str, Any] | asyncio.Event] = asyncio.Queue()
        self.session: Session | None = None
        self._on_sent = on_sent
        self.writer = asyncio.create_task(self._write(), name="fakediscord-gateway-writer")

    def send(self, payload: dict[str, Any]) -> None:
        self.queue.put_nowait(payload)

    def marker(self) -> asyncio.Event:
        """An event set once everything queued before it has been written."""
        event = asyncio.Event()
        self.queue.put_nowait(event)
        return event

    async def _write(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, asyncio.Event):
                item.set()
            elif not self.ws.closed:
                await self.ws.send_str(json.dumps(item))
            self._on_sent()


class Session:
    """A gateway session: survives its connection so the client can RESUME it."""

    def __init__(
        self, session_id: str, intents: int, shard: list[int] | None, large_threshold: int = DEFAULT_LARGE_THRESHOLD
    ) -> None:
        self.session_id = session_id
        self.intents = intents
        self.shard = shard
        self.large_threshold = large_threshold
        self.seq = 0
        #: True once READY and every GUILD_CREATE (or RESUMED) has been written to the client.
        self.ready = False
        self.buffer: deque[dict[str, Any]] = deque(maxlen=REPLAY_BUFFER)
        self.connection: _Connection | None = None

    @property
    def shard_id(self) -> int | None:
        return None if self.shard is None else self.shard[0]

    def serves(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of ``guild_id`` (None: DMs, which go to shard 0)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, count) == shard_id

    def wants(self, event: str, data: dict[str, Any] | None = None) -> bool:
        if not self.serves(event_guild(event, data or {})):
            return False
        if event in MESSAGE_EVENTS:
            needed = Intent.GUILD_MESSAGES if (data or {}).get("guild_id") else Intent.DIRECT_MESSAGES
            return bool(self.intents & needed)
        return event not in MEMBER_EVENTS or bool(self.intents & Intent.GUILD_MEMBERS)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        payload = {"op": DISPATCH, "s": self.seq, "t": event, "d": data}
        self.buffer.append(payload)
        if self.connection is not None:
            self.connection.send(payload)


class Gateway:
    """Serves ``ws://127.0.0.1:PORT/`` for :class:`FakeDiscord`."""

    def __init__(self, fake: FakeDiscord, heartbeat_interval: float = 41.25) -> None:
        self.fake = fake
        self.heartbeat_interval = heartbeat_interval
        self.sessions: dict[str, Session] = {}
        self.connections: set[_Connection] = set()
        #: Every op the client sent but heartbeats (the newest ``fake.max_records``).
        self.received: RecordLog[dict[str, Any]] = RecordLog(fake.max_records)
        self.identify_count = 0
        self.resume_count = 0
        self.ready = asyncio.Event()
        #: Every GUILD_MEMBERS_CHUNK sent, in order: guild_id, chunk_index, chunk_count, members
        #: (how many), nonce.
        self.chunks_sent: RecordLog[dict[str, Any]] = RecordLog(fake.max_records)
        # Chunks waiting to go out, oldest first; None: they flow, a number: how many more may go.
        self._pending_chunks: deque[tuple[Session, dict[str, Any]]] = deque()
        self._chunk_allowance: int | None = None
        self._chunks_released = asyncio.Event()
        self._chunk_pump: asyncio.Task[None] | None = None

    @property
    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.connection is not None]

    @property
    def ready_shards(self) -> list[int | None]:
        """The shard ids of the live sessions that are ready (None for a session without ``shard``)."""
        return sorted((s.shard_id for s in self.live_sessions if s.ready), key=lambda i: -1 if i is None else i)

    def serving(self, guild_id: int | None) -> list[Session]:
        """The live sessions that get ``guild_id``'s events (None: DMs)."""
        return [s for s in self.live_sessions if s.serves(guild_id)]

    def _update_ready(self) -> None:
        if any(s.ready for s in self.live_sessions):
            self.ready.set()
        else:
            self.ready.clear()

    # -- outgoing
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Queue a DISPATCH for every session (buffered for resume while disconnected)."""
        for session in self.sessions.values():
            if session.wants(event, data):
                session.emit(event, data)

    def send_reconnect(self) -> None:
        """Ask every connected client to reconnect and RESUME (op 7)."""
        for session in self.live_sessions:
            assert session.connection is not None
            session.connection.send({"op": RECONNECT, "d": None, "s": None, "t": None})

    async def flush(self) -> None:
        """Wait until every payload queued so far has been written."""
        markers = [c.marker() for c in list(self.connections)]
        for marker in markers:
            await marker.wait()

    # -- member chunks
    @property
    def pending_member_chunks(self) -> int:
        return len(self._pending_chunks)

    def hold_member_chunks(self) -> None:
        self._chunk_allowance = 0

    def release_member_chunks(self, count: int | None = None) -> None:
        if count is None:
            self._chunk_allowance = None
        else:
            self._chunk_allowance = (self._chunk_allowance or 0) + count
        self._chunks_released.set()

    def _queue_chunks(self, session: Session, events: list[dict[str, Any]]) -> None:
        if self._chunk_allowance is None and self.fake.member_chunk_delay <= 0 and not self._pending_chunks:
            for event in events:  # nothing holds them: in the same turn, as before any other op
                self._emit_chunk(session, event)
            return
        self._pending_chunks.extend((session, event) for event in events)
        if self._chunk_pump is None or self._chunk_pump.done():
            self._chunk_pump = asyncio.create_task(self._pump_chunks(), name="fakediscord-member-chunks")

    async def _pump_chunks(self) -> None:
        while self._pending_chunks:
            while self._chunk_allowance == 0:
                self._chunks_released.clear()
                await self._chunks_released.wait()
            session, event = self._pending_chunks.popleft()
            if self._chunk_allowance is not None:
                self._chunk_allowance -= 1
            self._emit_chunk(session, event)
            self.fake._notify()
            if self._pending_chunks and self.fake.member_chunk_delay > 0:
                await asyncio.sleep(self.fake.member_chunk_delay)

    def _emit_chunk(self, session: Session, event: dict[str, Any]) -> None:
        self.chunks_sent.append(
            {
                "guild_id": int(event["guild_id"]),
                "chunk_index": event["chunk_index"],
                "chunk_count": event["chunk_count"],
                "members": len(event["members"]),
                "nonce": event.get("nonce"),
            }
        )
        session.emit("GUILD_MEMBERS_CHUNK", event)

    async def close_all(self, code: int = 1001) -> None:
        if self._chunk_pump is not None:
            self._chunk_pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chunk_pump
        self._pending_chunks.clear()
        for connection in list(self.connections):
            connection.writer.cancel()
            with contextlib.suppress(Exception):
                await connection.ws.close(code=code, message=b"fakediscord stopping")

    # -- incoming
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = _Connection(ws, self.fake._notify)
        self.connections.add(connection)
        _log.debug("gateway: client connected")
        connection.send(
            {
                "op": HELLO,
                "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000), "_trace": ["fake"]},
                "s": None,
                "t": None,
            }
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_message(connection, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(connection)
            connection.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection.writer
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                session.ready = False
                self._update_ready()
                # A client closing with 1000/1001 ends its session; other codes may RESUME.
                if ws.close_code in (1000, 1001):
                    self.sessions.pop(session.session_id, None)
            _log.debug("gateway: client disconnected (%s)", ws.close_code)
            self.fake._notify()
        return ws

    async def _on_message(self, connection: _Connection, message: dict[str, Any]) -> None:
        op = message.get("op")
        data: dict[str, Any] = message["d"] if isinstance(message.get("d"), dict) else {}
        if op == HEARTBEAT:
            connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            return
        recorded = dict(message)
        if "token" in data:
            recorded["d"] = {**data, "token": "<redacted>"}
        self.received.append(recorded)
        if op == IDENTIFY:
            await self._identify(connection, data)
        elif op == RESUME:
            await self._resume(connection, data)
        elif op == REQUEST_MEMBERS:
            self._request_members(connection, data)
        elif op in (PRESENCE, VOICE_STATE):
            pass
        else:
            _log.debug("gateway: ignoring op %s", op)
        self.fake._notify()

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.fake.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        if not self.fake.privileged_members_intent and int(data.get("intents", 0)) & Intent.GUILD_MEMBERS:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None:
            refusal = self._shard_refusal(shard)
            if refusal is not None:
                _log.debug("gateway: refusing shard %r: %s", shard, refusal)
                await connection.ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
                return
            shard = [int(shard[0]), int(shard[1])]
        session = Session(
            secrets.token_hex(16),
            int(data.get("intents", 0)),
            shard,
            int(data.get("large_threshold") or DEFAULT_LARGE_THRESHOLD),
        )
        guild_ids = [g for g in self.fake.guilds if session.serves(g)]
        if len(guild_ids) > self.fake.max_guilds_per_shard:
            await connection.ws.close(code=SHARDING_REQUIRED, message=b"Sharding required.")
            return
        self.identify_count += 1
        self.sessions[session.session_id] = session
        session.connection = connection
        connection.session = session
        fake = self.fake
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**payloads.user(fake.bot_user), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": fake.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        session.emit("READY", ready)
        for guild_id in guild_ids:
            session.emit("GUILD_CREATE", fake._guild_create_payload(guild_id, session))
        await connection.marker().wait()
        session.ready = session.connection is connection
        self._update_ready()

    def _shard_refusal(self, shard: Any) -> str | None:
        """Why Discord would close an IDENTIFY with this ``shard`` with 4010, or None."""
        if not (isinstance(shard, list) and len(shard) == 2 and all(type(v) is int for v in shard)):
            return "shard must be [shard_id, num_shards]"
        shard_id, count = shard
        if count < 1 or not 0 <= shard_id < count:
            return f"shard id {shard_id} is not in [0, {count})"
        for other in self.live_sessions:
            if other.shard is not None and other.shard[1] != count:
                return f"num_shards {count} differs from a live session's {other.shard[1]}"
        return None

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq") or 0
        oldest = session.buffer[0]["s"] if session and session.buffer else 1
        if session is None or data.get("token") != self.fake.token or seq < oldest - 1:
            connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        if previous is not None:  # a zombie connection the client gave up on: take over
            previous.session = None
            previous.writer.cancel()
            with contextlib.suppress(Exception):
                await previous.ws.close(code=4000)
        self.resume_count += 1
        session.connection = connection
        connection.session = session
        for payload in session.buffer:
            if payload["s"] > seq:
                connection.send(payload)
        session.emit("RESUMED", {"_trace": ["fake"]})
        await connection.marker().wait()
        session.ready = session.connection is connection
        self._update_ready()

    def _request_members(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = connection.session
        if session is None:
            return
        guild_id = int(data["guild_id"])
        if not session.serves(guild_id):  # Discord answers only for the guilds of the session's shard
            _log.debug("gateway: op 8 for guild %s, not on shard %s", guild_id, session.shard)
            return
        members, not_found = self.fake._query_members(
            guild_id,
            query=data.get("query") or "",
            limit=int(data.get("limit") or 0),
            user_ids=[int(u) for u in data.get("user_ids") or []],
            intents=session.intents,
        )
        chunks = [members[i : i + CHUNK_SIZE] for i in range(0, len(members), CHUNK_SIZE)] or [[]]
        events = []
        for index, chunk in enumerate(chunks):
            event: dict[str, Any] = {
                "guild_id": str(guild_id),
                "members": [payloads.member(m) for m in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
                "not_found": [str(u) for u in not_found] if index == 0 else [],
            }
            if data.get("nonce") is not None:
                event["nonce"] = data["nonce"]
            events.append(event)
        self._queue_chunks(session, events)
