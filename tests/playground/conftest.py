"""A playground per test: the fake Discord, the real bot and the page's API on 127.0.0.1, in this
process, on a temporary database. Jobs run only when a test moves the clock (tick_seconds=None)."""

# The waiting helpers take `timeout=` as fakediscord's do (tests read better than asyncio.timeout blocks).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from bot.playground import demo
from bot.playground.app import Playground

ALICE, BOB, CAROL = str(demo.ALICE_ID), str(demo.BOB_ID), str(demo.CAROL_ID)
OWNER, MOD = str(demo.OWNER_ID), str(demo.MOD_ID)


@dataclass
class Client:
    playground: Playground
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.playground.url

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path.lstrip("/")) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(self.url + path.lstrip("/"), json=body) as response:
            return response.status, await response.json()

    async def ok(self, path: str, body: dict[str, Any]) -> Any:
        status, answer = await self.post(path, body)
        assert status == 200, answer
        return answer


class Live:
    """The page's websocket: every event it was sent, and waiting for one."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def next_matching(self, predicate, timeout: float = 10.0) -> dict[str, Any]:
        for event in self.events:
            if predicate(event):
                self.events.remove(event)
                return event
        async with asyncio.timeout(timeout):
            while True:
                event = json.loads(await self.ws.receive_str())
                if predicate(event):
                    return event
                self.events.append(event)

    async def message(self, predicate, timeout: float = 10.0) -> dict[str, Any]:
        event = await self.next_matching(lambda e: e["type"] == "message" and predicate(e["message"]), timeout)
        return event["message"]


def text(message: dict[str, Any]) -> str:
    parts = [message["content"]]
    for embed in message["embeds"]:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


# ---------------------------------------------------------------- `python -m bot try` as a process
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(extra, PYTHONPATH=str(ROOT))
    return env


def start(cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "try", *args],
        cwd=cwd,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(process: subprocess.Popen[str], timeout: float = 90) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    stderr = process.stderr.read() if process.poll() is not None else ""
    assert got, f"no address printed; stderr: {stderr}"
    assert got[0], f"no address printed; stderr: {stderr}"
    return got[0].strip()


# ---------------------------------------------------------------- a playground in this process
@pytest.fixture
async def playground(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Playground]:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    pg = Playground(tmp_path / "data" / "playground.sqlite3", port=0, tick_seconds=None)
    await pg.start()
    try:
        yield pg
    finally:
        await pg.stop()
    pg.fake.assert_clean()


@pytest.fixture
async def client(playground: Playground) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(playground, http)


@pytest.fixture
async def live(client: Client) -> AsyncIterator[Live]:
    async with client.http.ws_connect(client.url + "api/live") as ws:
        feed = Live(ws)
        await feed.next_matching(lambda e: e["type"] == "hello")
        yield feed
        with contextlib.suppress(Exception):
            await ws.close()
