"""Simulator test set-up: an in-process simulator and a plain JSON websocket client.

The client deliberately knows nothing of hip3: it sends and receives JSON text, as any
outside client written from the exchange's documentation would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets

from hip3.sim.harness import SimHarness

WAIT_S = 5.0  # an upper bound for things that must happen; never a speed assertion


class JsonClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._next_id = 0

    async def send(self, message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def recv(self, timeout: float = WAIT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The first frame matching `predicate`, and the frames skipped before it."""
        skipped: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if predicate(frame):
                    return frame, skipped
                skipped.append(frame)

    async def frames_for(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (for checking that something did NOT come)."""
        frames: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                frames.append(await self.recv(left))
            except TimeoutError:
                break
        return frames

    async def subscribe(self, subscription: dict[str, Any]) -> dict[str, Any]:
        """Subscribe and return the ack (skipping market data that may come first)."""
        await self.send({"method": "subscribe", "subscription": subscription})
        ack, _ = await self.recv_until(lambda f: f["channel"] in ("subscriptionResponse", "error"))
        assert ack["channel"] == "subscriptionResponse", ack
        return ack

    async def post(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A post request; returns `data.response` of the matching post frame."""
        self._next_id += 1
        post_id = self._next_id
        await self.send(
            {"method": "post", "id": post_id, "request": {"type": kind, "payload": payload}}
        )
        frame, _ = await self.recv_until(
            lambda f: f["channel"] == "post" and f["data"]["id"] == post_id
        )
        return frame["data"]["response"]


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[SimHarness]]]:
    started: list[SimHarness] = []

    async def make(**kwargs: Any) -> SimHarness:
        kwargs.setdefault("feeds", False)
        harness = await SimHarness(**kwargs).start()
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.stop()


@pytest.fixture
async def sim(make_sim: Callable[..., Awaitable[SimHarness]]) -> SimHarness:
    return await make_sim()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[SimHarness], Awaitable[JsonClient]]]:
    opened: list[websockets.ClientConnection] = []

    async def open_client(harness: SimHarness) -> JsonClient:
        ws = await websockets.connect(harness.ws_url, max_size=None)
        opened.append(ws)
        return JsonClient(ws)

    yield open_client
    for ws in opened:
        await ws.close()
