"""Connection rules, through a real websocket: acks, duplicates, ping, idle close, limits."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hip3.sim.server import ConnectionLimits

USER = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"


async def test_subscribe_echo_is_normalised(sim, connect):
    client = await connect(sim)
    ack = await client.subscribe({"type": "l2Book", "coin": "xyz:AAA", "bogus": 1})
    assert ack["data"] == {
        "method": "subscribe",
        "subscription": {"type": "l2Book", "coin": "xyz:AAA", "nSigFigs": None, "mantissa": None},
    }
    ack = await client.subscribe({"type": "userFills", "user": USER})
    assert ack["data"]["subscription"] == {"type": "userFills", "user": USER.lower()}
    ack = await client.subscribe({"type": "userEvents", "user": USER})
    assert ack["data"]["subscription"] == {"type": "userEvents", "user": USER.lower()}


async def test_duplicate_subscription_is_refused_with_the_exchange_text(sim, connect):
    client = await connect(sim)
    await client.subscribe({"type": "bbo", "coin": "xyz:BBB"})
    await client.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:BBB"}})
    frame, _ = await client.recv_until(lambda f: f["channel"] == "error")
    assert frame["data"] == 'Already subscribed: {"type":"bbo","coin":"xyz:BBB"}'
    # Same user, different case: still the same subscription.
    await client.subscribe({"type": "orderUpdates", "user": USER})
    await client.send(
        {
            "method": "subscribe",
            "subscription": {"type": "orderUpdates", "user": "0x" + USER[2:].upper()},
        }
    )
    frame, _ = await client.recv_until(lambda f: f["channel"] == "error")
    assert frame["data"].startswith("Already subscribed: ")


async def test_unsubscribe_acks_then_reports_already_unsubscribed(sim, connect):
    client = await connect(sim)
    sub = {"type": "trades", "coin": "xyz:CCC"}
    await client.subscribe(sub)
    await client.send({"method": "unsubscribe", "subscription": sub})
    frame = await client.recv()
    assert frame == {
        "channel": "subscriptionResponse",
        "data": {"method": "unsubscribe", "subscription": sub},
    }
    await client.send({"method": "unsubscribe", "subscription": sub})
    frame = await client.recv()
    assert frame == {
        "channel": "error",
        "data": 'Already unsubscribed: {"type":"trades","coin":"xyz:CCC"}',
    }
    # After unsubscribing, a new subscription is accepted again.
    await client.subscribe(sub)


@pytest.mark.parametrize(
    "subscription",
    [
        {"type": "bbo", "coin": "xyz:NOPE"},
        {"type": "userFills", "user": "0x123"},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 7},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2},
        {"type": "allMids", "dex": "zzz"},
    ],
)
async def test_invalid_subscription_names_it(sim, connect, subscription):
    client = await connect(sim)
    await client.send({"method": "subscribe", "subscription": subscription})
    frame = await client.recv()
    assert frame["channel"] == "error"
    assert frame["data"].startswith("Invalid subscription {")
    # The connection is still usable.
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}


async def test_webdata2_subscription_is_refused_echoing_the_frame(sim, connect):
    client = await connect(sim)
    raw = '{"method":"subscribe","subscription":{"type":"webData2","user":"0x%s"}}' % ("1" * 40)
    await client.send_raw(raw)
    frame = await client.recv()
    assert frame == {
        "channel": "error",
        "data": "Error parsing JSON into valid websocket request: " + raw,
    }
    # The connection stays usable.
    await client.send({"method": "ping"})
    assert (await client.recv())["channel"] == "pong"


async def test_ping_pong(sim, connect):
    client = await connect(sim)
    for _ in range(3):
        await client.send({"method": "ping"})
        assert await client.recv() == {"channel": "pong"}


async def test_wrong_path_is_refused(sim):
    url = sim.ws_url.removesuffix("/ws") + "/other"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 404


async def test_idle_connection_is_closed_and_a_pinging_one_is_not(make_sim, connect):
    sim = await make_sim(limits=ConnectionLimits(idle_timeout_s=0.4))
    quiet = await connect(sim)
    chatty = await connect(sim)
    for _ in range(8):
        await chatty.send({"method": "ping"})
        assert await chatty.recv() == {"channel": "pong"}
        await asyncio.sleep(0.1)
    with pytest.raises(ConnectionClosed):
        await quiet.recv()
    assert quiet.ws.close_code == 1000
    await chatty.send({"method": "ping"})
    assert await chatty.recv() == {"channel": "pong"}


async def test_message_rate_limit_uses_the_exchange_text(sim, connect):
    client = await connect(sim)
    for _ in range(2000):
        await client.send({"method": "ping"})
    await client.send({"method": "ping"})
    frames = [await client.recv() for _ in range(2001)]
    assert frames[:2000] == [{"channel": "pong"}] * 2000
    assert frames[2000] == {
        "channel": "error",
        "data": "Cannot send more than 2000 messages per minute.",
    }


async def test_rate_limit_window_slides(make_sim, connect):
    sim = await make_sim(limits=ConnectionLimits(messages_per_window=3, window_s=0.5))
    client = await connect(sim)
    for _ in range(4):
        await client.send({"method": "ping"})
    frames = [await client.recv() for _ in range(4)]
    assert frames[3]["channel"] == "error"
    await asyncio.sleep(0.6)  # the window has passed: messages are accepted again
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}


async def test_inflight_post_limit_names_the_request_id(make_sim, connect):
    sim = await make_sim(faults="delay_post_ms=400")
    client = await connect(sim)
    request = {"type": "info", "payload": {"type": "meta", "dex": "xyz"}}
    for post_id in range(1, 102):
        await client.send({"method": "post", "id": post_id, "request": request})
    frame = await client.recv()
    assert frame == {"channel": "error", "data": "too many pending post requests id=101"}
    answered = sorted([(await client.recv())["data"]["id"] for _ in range(100)])
    assert answered == list(range(1, 101))
    # Once the answers are out, posts are accepted again.
    response = await client.post("info", {"type": "meta", "dex": "xyz"})
    assert response["type"] == "info"


async def test_post_info_wraps_the_answer(sim, connect):
    client = await connect(sim)
    response = await client.post("info", {"type": "meta", "dex": "xyz"})
    assert response["type"] == "info"
    assert response["payload"]["type"] == "meta"
    names = [asset["name"] for asset in response["payload"]["data"]["universe"]]
    assert names[:4] == ["xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD"]


async def test_post_errors_come_back_as_post_errors(sim, connect):
    client = await connect(sim)
    response = await client.post("info", {"type": "noSuchInfo"})
    assert response["type"] == "error"
    assert isinstance(response["payload"], str) and response["payload"]
    response = await client.post("explorer", {"type": "meta"})
    assert response == {
        "type": "error",
        "payload": "request type must be 'info' or 'action', got \"explorer\"",
    }


async def test_market_data_follows_the_core(sim, connect):
    client = await connect(sim)
    other = await connect(sim)
    coin = "xyz:DDD"
    for c in (client, other):
        await c.subscribe({"type": "bbo", "coin": coin})
    await client.subscribe({"type": "activeAssetCtx", "coin": coin})
    await client.subscribe({"type": "l2Book", "coin": coin})
    bids = [(Decimal("1499"), Decimal("1.5")), (Decimal("1498"), Decimal("2"))]
    asks = [(Decimal("1501"), Decimal("1.25"))]
    sim.exchange.replace_maker_quotes(coin, "0x" + "5a" * 20, bids, asks)

    def bbo_with_levels(frame):
        return frame["channel"] == "bbo" and frame["data"]["bbo"][0] is not None

    frame, _ = await client.recv_until(bbo_with_levels)
    bid, ask = frame["data"]["bbo"]
    assert (bid["px"], bid["sz"], ask["px"], ask["sz"]) == ("1499", "1.5", "1501", "1.25")
    same, _ = await other.recv_until(bbo_with_levels)
    assert same == frame  # one encoding, the same bytes to every subscriber
    book, _ = await client.recv_until(
        lambda f: f["channel"] == "l2Book" and len(f["data"]["levels"][0]) == 2
    )
    assert [lvl["px"] for lvl in book["data"]["levels"][0]] == ["1499", "1498"]
    sim.exchange.set_oracle(coin, Decimal("1512.5"))
    ctx, _ = await client.recv_until(
        lambda f: f["channel"] == "activeAssetCtx" and f["data"]["ctx"]["oraclePx"] == "1512.5"
    )
    assert ctx["data"]["coin"] == coin


async def test_all_mids_per_dex(sim, connect):
    client = await connect(sim)
    ack = await client.subscribe({"type": "allMids", "dex": "xyz"})
    assert ack["data"]["subscription"] == {"type": "allMids", "dex": "xyz"}
    sim.exchange.replace_maker_quotes(
        "xyz:AAA",
        "0x" + "5a" * 20,
        [(Decimal("24.9"), Decimal("100"))],
        [(Decimal("25.1"), Decimal("100"))],
    )
    frame, _ = await client.recv_until(
        lambda f: f["channel"] == "allMids" and f["data"]["mids"].get("xyz:AAA") == "25"
    )
    assert all(coin.startswith("xyz:") for coin in frame["data"]["mids"])
