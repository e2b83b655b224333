"""The server's own websocket framing and its one-write-per-turn batching.

Frames are framed by the server itself (not by the websockets library) and held until the
end of an event-loop turn; a real websockets client must still read every frame intact and in
order, whatever its size class (7-bit, 16-bit and 64-bit payload lengths).
"""

from __future__ import annotations

import json

import pytest
from websockets.frames import Frame, Opcode

from hip3.sim.events import Trades
from hip3.sim.server import _text_header


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_text_header_matches_the_websockets_serializer(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert _text_header(size) + payload == expected


async def test_a_burst_of_requests_is_answered_in_order(sim, connect) -> None:
    client = await connect(sim)
    # Sent back to back, so the server reads many in one turn and answers them in one write.
    for post_id in range(1, 41):
        await client.send(
            {
                "method": "post",
                "id": post_id,
                "request": {"type": "info", "payload": {"type": "allMids", "dex": "xyz"}},
            }
        )
        if post_id % 10 == 0:
            await client.send({"method": "ping"})
    frames = [await client.recv() for _ in range(44)]
    order = [f["data"]["id"] if f["channel"] == "post" else "pong" for f in frames]
    expected: list[int | str] = []
    for post_id in range(1, 41):
        expected.append(post_id)
        if post_id % 10 == 0:
            expected.append("pong")
    assert order == expected
    mids = frames[0]["data"]["response"]["payload"]["data"]
    assert set(mids) == {a.coin for a in sim.exchange.universe.dex("xyz").assets}


@pytest.mark.parametrize("n_trades", [1, 300, 1500])  # 7-bit, 16-bit and 64-bit lengths
async def test_frames_of_every_length_class_arrive_intact(sim, connect, n_trades: int) -> None:
    client = await connect(sim)
    await client.subscribe({"type": "trades", "coin": "xyz:AAA"})
    trades = [
        {"coin": "xyz:AAA", "side": "B", "px": "25.1", "sz": "1", "time": 1, "tid": tid}
        for tid in range(n_trades)
    ]
    sim.server.on_event(Trades("xyz:AAA", trades))
    sim.server.on_event(Trades("xyz:AAA", trades[:1]))  # the next frame still lines up
    first = await client.recv()
    second = await client.recv()
    assert first == {"channel": "trades", "data": trades}
    assert second == {"channel": "trades", "data": trades[:1]}
    size = len(json.dumps(first, separators=(",", ":")))
    assert (size < 126, size < 65_536) == {1: (True, True), 300: (False, True)}.get(
        n_trades, (False, False)
    )
