"""What the bot did, as tests read it: messages, files, interactions, requests, syncs.

Every record keeps the raw dicts (exactly what Discord would have stored or returned)
and adds small read-only helpers on top.
"""

# The public API takes `timeout=` arguments on purpose (tests read better than with
# asyncio.timeout blocks around every call).
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, overload

#: ``await waiter(predicate, timeout, what)`` - resolves once ``predicate()`` is true.
Waiter = Callable[[Callable[[], bool], float, str], Awaitable[None]]

EPHEMERAL = 1 << 6
LOADING = 1 << 7

DEFAULT_TIMEOUT = 5.0

#: How many records each list (and each lookup table) keeps by default, newest kept.
DEFAULT_MAX_RECORDS = 10_000

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class RecordLog(Sequence[T]):
    """A list that keeps only the newest ``maxlen`` items (``None``: every item), oldest dropped.

    It reads like a list: ``len``, iteration, ``log[-1]``, ``log[a:b]`` (a list), and ``==`` with
    a list or another log. Only :meth:`append` and :meth:`clear` change it. ``dropped`` counts the
    items it let go, so a reader can tell a short log from a trimmed one.
    """

    __slots__ = ("_items", "dropped")

    def __init__(self, maxlen: int | None = DEFAULT_MAX_RECORDS, items: Iterable[T] = ()) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 or None, not {maxlen}")
        self._items: deque[T] = deque(maxlen=maxlen)
        self.dropped = 0
        for item in items:
            self.append(item)

    @property
    def maxlen(self) -> int | None:
        return self._items.maxlen

    def append(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)

    def clear(self) -> None:
        self.dropped += len(self._items)
        self._items.clear()

    @property
    def total(self) -> int:
        """How many items were ever appended (kept and dropped)."""
        return len(self._items) + self.dropped

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __reversed__(self) -> Iterator[T]:
        return reversed(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self._items)[index]
        return self._items[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordLog | list | tuple):
            return list(self._items) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"RecordLog({list(self._items)!r}, maxlen={self.maxlen})"


class BoundedDict(dict[K, V]):
    """A lookup table that forgets its oldest entries (by last write) beyond ``maxlen`` (``None``:
    never). Only item assignment adds entries; the fake uses nothing else to fill one."""

    def __init__(self, maxlen: int | None = DEFAULT_MAX_RECORDS) -> None:
        super().__init__()
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 or None, not {maxlen}")
        self.maxlen = maxlen

    def __setitem__(self, key: K, value: V) -> None:
        if key in self:
            super().__delitem__(key)  # a rewrite makes the entry the newest
        super().__setitem__(key, value)
        if self.maxlen is not None:
            while len(self) > self.maxlen:
                super().__delitem__(next(iter(self)))


@dataclass
class FileUpload:
    """One file the bot uploaded (multipart ``files[n]``), with its bytes."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode()


def iter_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, depth first, through action rows, sections, containers and labels."""
    for component in components:
        yield component
        yield from iter_components(component.get("components", []))
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from iter_components([component[key]])


@dataclass(eq=False)
class SentMessage:
    """A message the bot created (channel send, DM, interaction response or followup)."""

    payload: dict[str, Any]
    files: list[FileUpload] = field(default_factory=list)
    history: RecordLog[dict[str, Any]] = field(default_factory=RecordLog)  # earlier payloads, oldest first
    edits: RecordLog[dict[str, Any]] = field(default_factory=RecordLog)  # raw PATCH bodies, in order
    deleted: bool = False
    interaction_id: int | None = None

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def guild_id(self) -> int | None:
        value = self.payload.get("guild_id")
        return None if value is None else int(value)

    @property
    def content(self) -> str:
        return str(self.payload.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.payload.get("components") or [])

    @property
    def flags(self) -> int:
        return int(self.payload.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Still the "Bot is thinking..." placeholder of a deferred response."""
        return bool(self.flags & LOADING)

    @property
    def attachments(self) -> list[FileUpload]:
        return list(self.files)

    def all_components(self) -> list[dict[str, Any]]:
        return list(iter_components(self.components))

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.all_components() if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any]:
        for component in self.all_components():
            if component.get("custom_id") == custom_id:
                return component
        raise LookupError(f"message {self.id} has no component {custom_id!r}: {self.custom_ids}")

    @property
    def embed_text(self) -> str:
        """Titles, descriptions, field names/values and footers of all embeds, newline-joined."""
        parts: list[str] = []
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for f in embed.get("fields") or []:
                parts += [f.get("name") or "", f.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


@dataclass
class RequestRecord:
    """One REST request the client made (path relative to ``/api/v10``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[str]
    status: int = 0


@dataclass
class SyncCall:
    """One ``PUT`` of the application command list (global when ``guild_id`` is None)."""

    guild_id: int | None
    commands: list[dict[str, Any]]


class InteractionRecord:
    """One interaction the fake sent (``INTERACTION_CREATE``) and everything the bot answered.

    ``callback`` is the accepted initial response body (``{"type": ..., "data": ...}``);
    ``rejections`` are Discord errors the fake returned for this interaction (10062, 40060 ...).
    """

    def __init__(
        self,
        payload: dict[str, Any],
        created_at: float,
        waiter: Waiter,
        *,
        max_records: int | None = DEFAULT_MAX_RECORDS,
    ) -> None:
        self.payload = payload
        self.created_at = created_at
        self._waiter = waiter
        self.callback: dict[str, Any] | None = None
        self.rejections: RecordLog[dict[str, Any]] = RecordLog(max_records)
        self.original: SentMessage | None = None
        self.followups: RecordLog[SentMessage] = RecordLog(max_records)
        self.source_message: SentMessage | None = None  # the message a component sits on
        self.attempts = 0  # initial-callback attempts, accepted or not

    def __repr__(self) -> str:
        return (
            f"<InteractionRecord id={self.id} type={self.type} command={self.command!r} "
            f"response_type={self.response_type} followups={len(self.followups)}>"
        )

    # -- the interaction itself
    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def type(self) -> int:
        return int(self.payload["type"])

    @property
    def guild_id(self) -> int | None:
        value = self.payload.get("guild_id")
        return None if value is None else int(value)

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def user_id(self) -> int:
        user = self.payload["member"]["user"] if "member" in self.payload else self.payload["user"]
        return int(user["id"])

    @property
    def command(self) -> str | None:
        """``"credits grant"`` for application commands and autocomplete, else None."""
        if self.type not in (2, 4):
            return None
        data = self.payload["data"]
        parts = [data["name"]]
        options = data.get("options", [])
        while options and options[0].get("type") in (1, 2):
            parts.append(options[0]["name"])
            options = options[0].get("options", [])
        return " ".join(parts)

    @property
    def custom_id(self) -> str | None:
        custom_id = self.payload.get("data", {}).get("custom_id")
        return None if custom_id is None else str(custom_id)

    # -- the bot's answer
    @property
    def response_type(self) -> int | None:
        return None if self.callback is None else int(self.callback["type"])

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    @property
    def deferred(self) -> bool:
        return self.response_type in (5, 6)

    @property
    def data(self) -> dict[str, Any]:
        """The ``data`` of the initial callback (``{}`` for types without data)."""
        return dict((self.callback or {}).get("data") or {})

    @property
    def message(self) -> SentMessage | None:
        """The visible result: the response message, or the updated component message."""
        if self.response_type in (6, 7):
            return self.source_message
        return self.original

    @property
    def content(self) -> str:
        return self.message.content if self.message else str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.message.embeds if self.message else list(self.data.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.message.components if self.message else list(self.data.get("components") or [])

    @property
    def flags(self) -> int:
        return self.message.flags if self.message else int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def attachments(self) -> list[FileUpload]:
        return self.message.attachments if self.message else []

    @property
    def custom_ids(self) -> list[str]:
        return self.message.custom_ids if self.message else []

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete choices (callback type 8)."""
        return list(self.data.get("choices") or [])

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9)."""
        return self.data if self.response_type == 9 else None

    @property
    def rejection_codes(self) -> list[int]:
        return [int(r["code"]) for r in self.rejections]

    # -- waiting
    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            await self._waiter(predicate, timeout, what)
        except TimeoutError as exc:
            if self.rejections:
                raise TimeoutError(f"{exc}; the fake rejected: {self.rejections}") from None
            raise

    async def wait_for_response(self, timeout: float = DEFAULT_TIMEOUT) -> Self:
        """Wait for the first initial-callback attempt, accepted or rejected."""
        await self._wait(lambda: self.attempts > 0, timeout, f"a response to {self!r}")
        return self

    async def wait_for_followup(self, n: int = 1, timeout: float = DEFAULT_TIMEOUT) -> SentMessage:
        """Wait until the bot has sent ``n`` followups; return the ``n``-th (1-based)."""
        await self._wait(lambda: self.followups.total >= n, timeout, f"followup #{n} of {self!r}")
        index = n - 1 - self.followups.dropped
        if index < 0:
            raise LookupError(f"followup #{n} of {self!r} was dropped from the records (max_records)")
        return self.followups[index]

    async def wait_for_edit(self, n: int = 1, timeout: float = DEFAULT_TIMEOUT) -> SentMessage:
        """Wait until the response message (see :attr:`message`) was edited ``n`` times."""

        def edited() -> bool:
            return self.message is not None and self.message.edits.total >= n

        await self._wait(edited, timeout, f"edit #{n} of {self!r}")
        assert self.message is not None
        return self.message

    async def wait_until(self, predicate: Callable[[Self], bool], timeout: float = DEFAULT_TIMEOUT) -> Self:
        await self._wait(lambda: predicate(self), timeout, f"a condition on {self!r}")
        return self
