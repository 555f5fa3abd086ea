"""The messages the page shows, live: every message the bot creates, edits or deletes in the fake
Discord, as JSON for the page, pushed to each open websocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from fakediscord import FakeDiscord, FileUpload, SentMessage

log = logging.getLogger(__name__)

#: Messages the page can scroll back through (older ones are forgotten, as the fake forgets them).
KEEP_MESSAGES = 2_000
#: Events a slow page may fall behind by before it is sent a fresh snapshot instead.
QUEUE_LIMIT = 500


def attachment_url(upload_id: int, filename: str) -> str:
    return f"/api/attachments/{upload_id}/{filename}"


def content_type_of(upload: FileUpload) -> str:
    """The file's type as Discord tells clients: from its name when the upload said only "bytes"
    (discord.py sends every file as application/octet-stream)."""
    given = (upload.content_type or "").split(";")[0]
    if given and given != "application/octet-stream":
        return given
    return mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"


class Feed:
    """Listens to the fake's messages, stamps each with the playground time it was first seen, and
    tells every subscriber (a websocket) about it."""

    def __init__(self, fake: FakeDiscord, now: Callable[[], float], *, keep: int = KEEP_MESSAGES) -> None:
        self.fake = fake
        self.now = now
        self.keep = keep
        self._messages: OrderedDict[int, tuple[SentMessage, float]] = OrderedDict()
        self._hidden: set[int] = set()  # interactions whose answers the page leaves out (the demo's set-up)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._remove = fake.add_message_listener(self._heard)

    def close(self) -> None:
        self._remove()

    def hide_interactions(self, ids: Iterable[int]) -> None:
        """Leave out the answers to these interactions (and forget the ones already heard)."""
        self._hidden.update(ids)
        for message_id, (message, _) in list(self._messages.items()):
            if message.interaction_id in self._hidden:
                del self._messages[message_id]

    # ---------------------------------------------------------------- the fake tells us
    def _heard(self, event: str, message: SentMessage) -> None:
        if message.interaction_id in self._hidden:
            return
        known = self._messages.get(message.id)
        at = known[1] if known else self.now()
        self._messages[message.id] = (message, at)
        self._messages.move_to_end(message.id)
        while len(self._messages) > self.keep:
            self._messages.popitem(last=False)
        self.publish({"type": "message", "event": event, "message": self.view(message, at)})

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE_LIMIT:  # a page that stopped reading: it gets a snapshot when it reads again
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait({"type": "resync"})
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    # ---------------------------------------------------------------- what the page reads
    def snapshot(self) -> list[dict[str, Any]]:
        """Every message kept, oldest first (deleted ones left out)."""
        return [self.view(m, at) for m, at in self._messages.values() if not m.deleted]

    def view(self, message: SentMessage, at: float) -> dict[str, Any]:
        payload = message.payload
        metadata = payload.get("interaction_metadata") or {}
        interaction: dict[str, Any] | None = None
        if metadata:
            interaction = {"user_id": metadata["user"]["id"], "type": metadata["type"], "command": None}
            with contextlib.suppress(KeyError):
                interaction["command"] = self.fake.interaction(int(metadata["id"])).command
        channel = self.fake.channels.get(message.channel_id)
        return {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "dm_user_id": str(channel.recipient_id) if channel is not None and channel.recipient_id else None,
            "at": at,
            "edited": payload.get("edited_timestamp") is not None,
            "content": payload.get("content") or "",
            "embeds": payload.get("embeds") or [],
            "components": payload.get("components") or [],
            "ephemeral": message.ephemeral,
            "loading": message.loading,
            "deleted": message.deleted,
            "interaction": interaction,
            "attachments": [
                {
                    "id": str(f.id),
                    "filename": f.filename,
                    "content_type": content_type_of(f),
                    "size": len(f.data),
                    "description": f.description,
                    "url": attachment_url(f.id, f.filename),
                }
                for f in message.files
            ],
        }
