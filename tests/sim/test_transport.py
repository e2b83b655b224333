"""The websocket layer of the simulator, through a real client: what the protocol itself
enforces (UTF-8, size caps, closing handshakes) and that one bad request or a stuck peer
cannot take the server down."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from hip3.sim.server import ConnectionLimits


async def _wait(cond, timeout: float = 3.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_invalid_utf8_text_is_closed_with_1007(sim, connect) -> None:
    client = await connect(sim)
    ws = client.ws
    ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"method":"\xff"}'))
    ws.send_data()
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert ws.close_code == 1007


async def test_binary_and_non_ascii_frames_are_read_as_json(sim, connect) -> None:
    client = await connect(sim)
    await client.ws.send(b'{"method":"ping"}')
    assert await client.recv() == {"channel": "pong"}
    await client.send_raw('{"method":"ping","note":"\u00e9\u4e2d"}')
    assert await client.recv() == {"channel": "pong"}


async def test_size_caps(make_sim, connect) -> None:
    sim = await make_sim(limits=ConnectionLimits(max_frame_bytes=100, max_transport_bytes=1000))
    client = await connect(sim)
    await client.send_raw('{"method":"ping","pad":"' + "x" * 200 + '"}')
    frame = await client.recv()
    assert frame["channel"] == "error" and "exceeds the limit of 100 bytes" in frame["data"]
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}
    await client.send_raw("x" * 2000)  # beyond the transport cap: the protocol closes
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert client.ws.close_code == 1009


async def test_a_failing_request_answers_an_error_and_keeps_the_connection(
    sim, connect, monkeypatch
) -> None:
    def broken(session, message) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sim.server, "_subscribe", broken)
    client = await connect(sim)
    await client.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:AAA"}})
    assert await client.recv() == {
        "channel": "error",
        "data": "Internal error while handling the request",
    }
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}


async def test_a_client_close_is_answered_and_forgotten(sim, connect) -> None:
    client = await connect(sim)
    await client.subscribe({"type": "bbo", "coin": "xyz:AAA"})
    assert len(sim.server.sessions) == 1
    await client.ws.close(1000, "bye")
    assert client.ws.close_code == 1000  # the server echoed the close frame
    assert await _wait(lambda: not sim.server.sessions and not sim.server._routes)


async def test_stop_cuts_handshaking_connections_and_stops_listening(make_sim) -> None:
    sim = await make_sim()
    host, port = sim.server.host, sim.server.port
    reader, writer = await asyncio.open_connection(host, port)  # never sends a request
    async with websockets.connect(sim.ws_url) as ws:
        await sim.stop()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)
