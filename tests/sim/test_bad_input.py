"""Bad input from a client: an error frame naming the problem, a usable connection, and an
exchange whose state did not move."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.harness import SimHarness
from hip3.sim.server import ConnectionLimits


def _truth(sim: SimHarness) -> str:
    """Everything a bad frame must not change."""
    user = sim.account[0]
    exchange = sim.exchange
    return json.dumps(
        [
            exchange.info({"type": "clearinghouseState", "user": user, "dex": "xyz"}),
            exchange.open_orders(user),
            {coin: str(size) for coin, size in exchange.positions(user).items()},
            exchange.user_fills(user),
            [exchange.l2_book(a.coin) for a in exchange.universe.assets],
        ],
        sort_keys=True,
        default=str,
    )


def _without_times(text: str) -> str:
    # Book and state snapshots carry the current time; compare everything else.
    data = json.loads(text)

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "time"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(data), sort_keys=True)


PARSE = "Error parsing JSON into valid websocket request: "

BAD_FRAMES = [
    # The live server echoes such a frame exactly as sent, after its prefix.
    ("{not json", PARSE + "{not json"),
    ("[1, 2, 3]", PARSE + "[1, 2, 3]"),
    ('"ping"', PARSE + '"ping"'),
    ('{"method": "dance"}', PARSE + '{"method": "dance"}'),
    ('{"method": 7}', PARSE + '{"method": 7}'),
    ('{"nomethod": true}', PARSE + '{"nomethod": true}'),
    # A subscription of the wrong shape cannot be parsed either: echoed the same way.
    (
        '{"method": "subscribe", "subscription": "bbo"}',
        PARSE + '{"method": "subscribe", "subscription": "bbo"}',
    ),
    (
        '{"method": "subscribe", "subscription": {"type": "bbo", "coin": 5}}',
        PARSE + '{"method": "subscribe", "subscription": {"type": "bbo", "coin": 5}}',
    ),
    ('{"method": "unsubscribe"}', PARSE + '{"method": "unsubscribe"}'),
    (
        '{"method":"subscribe","subscription":{"type":"nope","coin":"BTC"}}',
        PARSE + '{"method":"subscribe","subscription":{"type":"nope","coin":"BTC"}}',
    ),
    (
        '{"method":"subscribe","subscription":{"type":"bbo"}}',
        PARSE + '{"method":"subscribe","subscription":{"type":"bbo"}}',
    ),
    (
        '{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC","nSigFigs":"5"}}',
        PARSE
        + '{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC","nSigFigs":"5"}}',
    ),
    (
        '{"method":"subscribe","subscription":{"type":"candle","coin":"BTC","interval":"7m"}}',
        PARSE
        + '{"method":"subscribe","subscription":{"type":"candle","coin":"BTC","interval":"7m"}}',
    ),
    # A well-formed subscription naming what is not served gets the exchange's own text.
    (
        '{"method":"subscribe","subscription":{"type":"bbo","coin":"NOPE"}}',
        'Invalid subscription {"type":"bbo","coin":"NOPE"}',
    ),
    ('{"method": "post", "id": "abc", "request": {}}', "non-negative integer id"),
    ('{"method": "post", "id": -1, "request": {}}', "non-negative integer id"),
    ('{"method": "post", "id": true, "request": {}}', "non-negative integer id"),
]


@pytest.mark.parametrize(("raw", "fragment"), BAD_FRAMES)
async def test_bad_frame_gets_an_error_and_changes_nothing(sim, connect, raw, fragment):
    client = await connect(sim)
    before = _without_times(_truth(sim))
    await client.send_raw(raw)
    frame = await client.recv()
    assert frame["channel"] == "error"
    if fragment.startswith(PARSE):
        assert frame["data"] == fragment  # the frame exactly as sent, nothing more
    else:
        assert fragment in frame["data"]
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}
    assert _without_times(_truth(sim)) == before


@pytest.mark.parametrize(
    ("request_obj", "fragment"),
    [
        ("nope", "request must be an object"),
        ({"type": "info"}, "payload must be an object"),
        ({"type": "action", "payload": [1]}, "payload must be an object"),
        ({"type": "explorer", "payload": {}}, "must be 'info' or 'action'"),
    ],
)
async def test_bad_post_request_is_a_post_error(sim, connect, request_obj, fragment):
    client = await connect(sim)
    before = _without_times(_truth(sim))
    await client.send({"method": "post", "id": 3, "request": request_obj})
    frame = await client.recv()
    assert frame["channel"] == "post" and frame["data"]["id"] == 3
    assert frame["data"]["response"]["type"] == "error"
    assert fragment in frame["data"]["response"]["payload"]
    assert _without_times(_truth(sim)) == before


async def test_garbage_action_is_refused_by_the_exchange(sim, connect):
    client = await connect(sim)
    before = _without_times(_truth(sim))
    response = await client.post(
        "action",
        {"action": {"type": "order", "orders": "lots"}, "nonce": "x", "signature": 5},
    )
    # It does not fit the schema: a post `error` response, as for HTTP's 422.
    assert response["type"] == "error"
    assert response["payload"].startswith("Failed to deserialize the JSON body")
    assert _without_times(_truth(sim)) == before


async def test_oversized_frame(make_sim, connect):
    sim = await make_sim(limits=ConnectionLimits(max_frame_bytes=1024))
    client = await connect(sim)
    big = json.dumps({"method": "ping", "pad": "x" * 2000})
    await client.send_raw(big)
    frame = await client.recv()
    assert frame["channel"] == "error"
    assert "exceeds the limit of 1024 bytes" in frame["data"]
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}


async def test_binary_frame_with_json_is_understood(sim, connect):
    client = await connect(sim)
    await client.send_raw(b'{"method":"ping"}')
    assert await client.recv() == {"channel": "pong"}
    await client.send_raw(b"\xff\xfe\x00")
    frame = await client.recv()
    assert frame["channel"] == "error"
    assert frame["data"] == PARSE + "\ufffd\ufffd\x00"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_junk = st.one_of(
    st.text(max_size=40),
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {"method": st.sampled_from(["subscribe", "unsubscribe", "post", "x"])},
        optional={"subscription": _json, "id": _json, "request": _json},
    ).map(json.dumps),
)


@given(frames=st.lists(_junk, min_size=1, max_size=6))
def test_any_junk_leaves_the_connection_usable(frames):
    async def scenario() -> None:
        import websockets

        async with SimHarness(feeds=False) as sim:
            before = _without_times(_truth(sim))
            async with websockets.connect(sim.ws_url) as ws:
                for raw in frames:
                    await ws.send(raw)
                await ws.send('{"method":"ping"}')
                # Every junk frame gets at most a bounded number of answers; then our pong.
                async with asyncio.timeout(5):
                    while json.loads(await ws.recv()) != {"channel": "pong"}:
                        pass
            assert _without_times(_truth(sim)) == before

    asyncio.run(scenario())
