"""WsConnection (the sans-I/O websocket on an asyncio transport) against websockets' own
asyncio server on loopback: an independent peer, so framing, masking, fragments, control
frames and closing are checked against a real implementation rather than against ourselves."""

from __future__ import annotations

import asyncio
import socket

import pytest
import websockets
from websockets.asyncio.server import serve

from hip3.transport.wsconn import connect


async def _wait(cond, timeout: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


class Peer:
    """A websockets server whose handler the test scripts."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.server = None
        self.url = ""

    async def __aenter__(self) -> Peer:
        self.server = await serve(self.handler, "127.0.0.1", 0, compression=None)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()


async def test_messages_both_ways_in_order_and_fragments_joined() -> None:
    got_by_server: list[str] = []

    async def handler(ws) -> None:
        async for message in ws:
            got_by_server.append(message)
            if message == "done":
                await ws.send("plain")
                await ws.send(["frag", "ment", "ed"])  # one message in three frames
                await ws.send(b"\x00\x01")  # binary
                await ws.send("é" * 70_000)  # > 64 KiB: the 8-byte length form
                return

    received: list[tuple[bytes, bool]] = []
    async with Peer(handler) as peer:
        conn = await connect(peer.url, on_message=lambda p, t: received.append((bytes(p), t)))
        for i in range(50):
            conn.send_text(f"m{i}".encode())
        conn.send_text(b"done")
        assert await _wait(lambda: len(received) == 4)
        conn.close()
    assert got_by_server == [f"m{i}" for i in range(50)] + ["done"]
    assert received[0] == (b"plain", True)
    assert received[1] == (b"fragmented", True)
    assert received[2] == (b"\x00\x01", False)
    assert received[3] == (("é" * 70_000).encode(), True)


async def test_a_protocol_ping_is_answered_without_the_consumer() -> None:
    pongs: list[float] = []

    async def handler(ws) -> None:
        waiter = await ws.ping(b"hello")
        pongs.append(await asyncio.wait_for(waiter, 2))
        await ws.send("after ping")
        await ws.wait_closed()

    received: list[bytes] = []
    async with Peer(handler) as peer:
        conn = await connect(peer.url, on_message=lambda p, t: received.append(bytes(p)))
        assert await _wait(lambda: received == [b"after ping"])
        conn.close()
    assert len(pongs) == 1  # the pong came back with the ping's payload


async def test_close_from_the_server_is_reported_once_with_code_and_reason() -> None:
    async def handler(ws) -> None:
        await ws.close(4001, "go away")

    reasons: list[str] = []
    async with Peer(handler) as peer:
        conn = await connect(peer.url, on_message=lambda p, t: None, on_closed=reasons.append)
        assert await _wait(lambda: bool(reasons))
        await asyncio.sleep(0.05)
    assert reasons == ["received close 4001 (go away)"]
    assert not conn.is_open
    with pytest.raises(ConnectionError, match="closed"):
        conn.send_text(b"too late")


async def test_a_peer_that_vanishes_is_reported_as_lost() -> None:
    async def handler(ws) -> None:
        ws.transport.abort()  # no close frame: like a network failure
        await asyncio.sleep(0.1)

    reasons: list[str] = []
    async with Peer(handler) as peer:
        await connect(peer.url, on_message=lambda p, t: None, on_closed=reasons.append)
        assert await _wait(lambda: bool(reasons))
    assert reasons == ["connection lost without a close frame"]


async def test_a_message_over_max_size_closes_with_1009() -> None:
    async def handler(ws) -> None:
        await ws.send("x" * 5000)
        await ws.wait_closed()

    reasons: list[str] = []
    received: list[bytes] = []
    async with Peer(handler) as peer:
        await connect(
            peer.url,
            on_message=lambda p, t: received.append(p),
            on_closed=reasons.append,
            max_size=1000,
        )
        assert await _wait(lambda: bool(reasons))
    assert received == []
    assert reasons == [
        "protocol error: frame with 5000 bytes exceeds limit of 1000 bytes (sent close 1009)"
    ]


async def test_a_consumer_that_raises_closes_the_connection_and_says_why() -> None:
    async def handler(ws) -> None:
        await ws.send("boom")
        await ws.wait_closed()

    def consumer(payload: bytes, _text: bool) -> None:
        raise RuntimeError("consumer bug")

    reasons: list[str] = []
    async with Peer(handler) as peer:
        await connect(peer.url, on_message=consumer, on_closed=reasons.append)
        assert await _wait(lambda: bool(reasons))
    assert reasons == ["consumer failed: RuntimeError: consumer bug"]


async def test_a_refused_handshake_raises_naming_the_status() -> None:
    async def handler(ws) -> None:  # pragma: no cover - never reached
        pass

    def refuse(connection, request):
        return connection.respond(404, "no websocket here\n")

    server = await serve(handler, "127.0.0.1", 0, process_request=refuse)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        with pytest.raises(ConnectionError, match="404"):
            await connect(f"ws://127.0.0.1:{port}/ws", on_message=lambda p, t: None)
    finally:
        server.close()
        await server.wait_closed()


async def test_nothing_listening_raises_oserror() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{port}/ws", on_message=lambda p, t: None)


def test_a_malformed_url_is_named() -> None:
    with pytest.raises(websockets.InvalidURI, match="http://x"):
        asyncio.run(connect("http://x", on_message=lambda p, t: None))
