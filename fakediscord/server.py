"""The aiohttp application: request parsing, auth, error injection, recording, routing.

Route handlers live in :mod:`.rest`; this module only turns HTTP into
:class:`ApiRequest` objects and handler results (or :class:`DiscordError`) back into HTTP.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from . import errors
from .errors import DiscordError
from .records import InteractionRecord, RequestRecord
from .validation import Problem, Violation, check_request, errors_object

if TYPE_CHECKING:
    from .fake import FakeDiscord

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
_TOKEN_IN_PATH = re.compile(r"^(/(?:interactions|webhooks)/\d+/)([^/]+)")
_CALLBACK_PATH = re.compile(r"^/interactions/(\d+)/([^/]+)/callback$")
_WEBHOOK_PATH = re.compile(r"^/webhooks/\d+/([^/]+)")

#: What a handler returns: a JSON-able body (200), or None (204 No Content).
Handler = Callable[["ApiRequest"], Awaitable[Any]]


@dataclass
class Upload:
    """A ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class ApiRequest:
    method: str
    path: str  # relative to /api/v10
    query: dict[str, str]
    json: Any
    uploads: list[Upload]
    match: re.Match[str]
    authorized: bool
    interaction: InteractionRecord | None = None  # set by handlers: errors get recorded on it

    def arg(self, index: int) -> str:
        return self.match.group(index)

    def int_arg(self, index: int) -> int:
        return int(self.match.group(index))

    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True


@dataclass
class FailureRule:
    """An injected error for the next ``times`` requests matching ``method`` and ``path``."""

    method: str
    path: re.Pattern[str]
    status: int
    code: int
    message: str
    times: int
    retry_after: float
    hits: list[str] = field(default_factory=list)

    def response(self) -> web.Response:
        if self.status == 429:
            body: dict[str, Any] = {
                "message": self.message,
                "retry_after": self.retry_after,
                "global": False,
                "code": self.code,
            }
            headers = {
                # discord.py treats a 429 without Via as a Cloudflare ban.
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(self.retry_after))),
                "X-RateLimit-Scope": "user",
            }
            return json_response(body, status=429, headers=headers)
        return json_response({"code": self.code, "message": self.message}, status=self.status)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly: discord.py compares the header
    verbatim and treats ``application/json; charset=utf-8`` as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def redact(path: str) -> str:
    """The path with the interaction/webhook token replaced, for logs."""
    return _TOKEN_IN_PATH.sub(r"\1***", path)


async def _parse_body(request: web.Request) -> tuple[Any, list[Upload]]:
    if request.content_type == "multipart/form-data":
        body: Any = None
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):  # nested multipart: not used by Discord
                continue
            name = part.name or ""
            if name == "payload_json":
                body = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                uploads.append(
                    Upload(
                        index=int(name[6:-1]),
                        filename=part.filename or "file",
                        data=bytes(await part.read()),
                        content_type=part.headers.get("Content-Type"),
                    )
                )
        return body, uploads
    raw = await request.read()
    if not raw:
        return None, []
    return json.loads(raw), []


class Server:
    """Owns the aiohttp app; ``routes`` is filled by :class:`.rest.RestApi`."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.routes: list[Route] = []
        self.failures: list[FailureRule] = []

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes.append(Route(method, re.compile(f"^{pattern}$"), handler, auth))

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.fake.gateway.handle)
        app.router.add_get("/attachments/{id}/{filename}", self._attachment)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _attachment(self, request: web.Request) -> web.Response:
        upload = self.fake._files.get(int(request.match_info["id"]))
        if upload is None:
            return json_response({"code": 0, "message": "404: Not Found"}, status=404)
        return web.Response(body=upload.data, content_type=upload.content_type or "application/octet-stream")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        try:
            body, uploads = await _parse_body(request)
        except (ValueError, UnicodeDecodeError):
            body, uploads = None, []
        record = RequestRecord(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            files=[u.filename for u in uploads],
        )
        self.fake.requests.append(record)
        try:
            response = await self._route(request, record, body, uploads)
        finally:
            self.fake._notify()
        record.status = response.status
        _log.debug("%s %s -> %s", request.method, redact(path), response.status)
        return response

    async def _route(
        self, request: web.Request, record: RequestRecord, body: Any, uploads: list[Upload]
    ) -> web.Response:
        path = record.path
        if not request.path.startswith(API_PREFIX):
            return self._unhandled(record)
        if self.fake.strict:
            problems = check_request(request.method, path, body, uploads=len(uploads))
            if problems:
                return self._refuse(record, problems)
        for rule in self.failures:
            if rule.times > 0 and rule.method == request.method and rule.path.search(path):
                rule.times -= 1
                rule.hits.append(path)
                self._count_rejection(path, {"status": rule.status, "code": rule.code, "message": rule.message})
                return rule.response()
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None or route.method != request.method:
                continue
            authorized = request.headers.get("Authorization") == f"Bot {self.fake.token}"
            if route.auth and not authorized:
                return _error_response(errors.unauthorized())
            api_request = ApiRequest(
                method=request.method,
                path=path,
                query=record.query,
                json=body,
                uploads=uploads,
                match=match,
                authorized=authorized,
            )
            try:
                result = await route.handler(api_request)
            except DiscordError as exc:
                if api_request.interaction is not None:
                    api_request.interaction.rejections.append({"status": exc.status, **exc.body()})
                return _error_response(exc)
            if result is None:
                return web.Response(status=204)
            return json_response(result)
        return self._unhandled(record)

    def _refuse(self, record: RequestRecord, problems: list[Problem]) -> web.Response:
        """400 50035 for a body Discord would refuse; kept in ``fake.violations`` for the test."""
        violation = Violation(record.method, redact(record.path), problems)
        self.fake.violations.append(violation)
        _log.warning("fakediscord: refused %s", violation)
        exc = DiscordError(400, 50035, "Invalid Form Body", errors=errors_object(problems))
        self._count_rejection(record.path, {"status": exc.status, **exc.body()})
        return _error_response(exc)

    def _count_rejection(self, path: str, rejection: dict[str, Any]) -> None:
        """An error answered before any handler ran still counts on its interaction's record. A 429
        is not an attempt: discord.py waits and sends the same answer again by itself."""
        interaction = self._interaction_of(path)
        if interaction is not None:
            if _CALLBACK_PATH.match(path) and rejection["status"] != 429:
                interaction.attempts += 1
            interaction.rejections.append(rejection)

    def _interaction_of(self, path: str) -> InteractionRecord | None:
        if match := _CALLBACK_PATH.match(path):
            return self.fake._interactions_by_id.get(int(match.group(1)))
        if match := _WEBHOOK_PATH.match(path):
            return self.fake._interactions_by_token.get(match.group(1))
        return None

    def _unhandled(self, record: RequestRecord) -> web.Response:
        self.fake.unhandled.append(record)
        _log.warning("fakediscord: unhandled route %s %s", record.method, redact(record.path))
        return _error_response(errors.not_found_route())


def _error_response(exc: DiscordError) -> web.Response:
    return json_response(exc.body(), status=exc.status)
