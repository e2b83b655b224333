"""Every injected fault, seen from a client socket; and the --faults grammar."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed

from hip3.sim.faults import FaultSpec, FaultSpecError, describe, parse_faults

MAKER = "0x" + "5a" * 20


def _quote(sim, coin="xyz:AAA", bid="24.9", ask="25.1"):
    sim.exchange.replace_maker_quotes(
        coin, MAKER, [(Decimal(bid), Decimal("40"))], [(Decimal(ask), Decimal("40"))]
    )


# --- the grammar --------------------------------------------------------------------------


def test_full_spec_parses_and_round_trips():
    text = (
        "drop_after=500,drop_every_s=5,seed=3,delay_ms=20,duplicate_p=0.01,withhold_snapshot=1,"
        "delay_ack_ms=2000,delay_post_ms=8000,reject_next=3,no_pong=1,halt=xyz:BBB@30"
    )
    spec = parse_faults(text)
    assert spec.drop_after == 500
    assert spec.drop_every_s == Decimal(5)
    assert spec.duplicate_p == Decimal("0.01")
    assert spec.withhold_snapshot and spec.no_pong
    assert spec.halts == (("xyz:BBB", Decimal(30)),)
    assert parse_faults(describe(spec)) == spec
    assert parse_faults("") == FaultSpec() == parse_faults(None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("drop_afterr=5", "unknown fault 'drop_afterr'"),
        ("delay_ms", "must look like key=value"),
        ("delay_ms=-5", "expected a non-negative integer"),
        ("delay_ms=1.5", "expected a non-negative integer"),
        ("duplicate_p=2", "probability must be <= 1"),
        ("duplicate_p=abc", "expected a number"),
        ("no_pong=2", "expected 0 or 1"),
        ("halt=xyz:BBB", "expected COIN@SECONDS"),
        ("halt=xyz:BBB@soon", "is not a number"),
        ("delay_ms=1,delay_ms=2", "given twice"),
        ("delay_ms=1,,seed=2", "empty item"),
        ("drop_after=0", "at least 1 frame"),
    ],
)
def test_bad_specs_are_rejected_clearly(text, fragment):
    with pytest.raises(FaultSpecError) as info:
        parse_faults(text)
    assert fragment in str(info.value)


# --- connection faults --------------------------------------------------------------------


async def test_drop_after_n_frames(make_sim, connect):
    sim = await make_sim(faults="drop_after=3")
    client = await connect(sim)
    for _ in range(5):
        await client.send({"method": "ping"})
    received = []
    with pytest.raises(ConnectionClosed):
        while True:
            received.append(await client.recv())
    assert received == [{"channel": "pong"}] * 3
    assert client.ws.close_code is None or client.ws.close_code == 1006  # no close frame
    # A new connection works (and is dropped after its own 3 frames).
    again = await connect(sim)
    await again.send({"method": "ping"})
    assert await again.recv() == {"channel": "pong"}


async def test_drop_on_command(sim, connect):
    first, second = await connect(sim), await connect(sim)
    for c in (first, second):
        await c.send({"method": "ping"})
        assert await c.recv() == {"channel": "pong"}
    assert sim.faults.drop_all() == 2
    for c in (first, second):
        with pytest.raises(ConnectionClosed):
            await c.recv()


async def test_random_drops_happen(make_sim, connect):
    sim = await make_sim(faults="drop_every_s=0.1,seed=1")
    client = await connect(sim)
    with pytest.raises(ConnectionClosed):
        for _ in range(500):
            await client.send({"method": "ping"})
            await client.recv()
            await asyncio.sleep(0.01)
    assert sim.faults.drops >= 1


async def test_delayed_frames_keep_their_order(make_sim, connect):
    sim = await make_sim(faults="delay_ms=150")
    client = await connect(sim)
    start = time.monotonic()
    await client.send({"method": "ping"})
    await client.send(
        {"method": "post", "id": 1, "request": {"type": "info", "payload": {"type": "meta"}}}
    )
    await client.send({"method": "ping"})
    frames = [await client.recv() for _ in range(3)]
    # The injected delay is a floor: nothing can arrive earlier than it.
    assert time.monotonic() - start >= 0.15
    assert [f["channel"] for f in frames] == ["pong", "post", "pong"]


async def test_duplicated_frames(make_sim, connect):
    sim = await make_sim(faults="duplicate_p=1")
    client = await connect(sim)
    await client.send({"method": "ping"})
    await client.send(
        {"method": "post", "id": 9, "request": {"type": "info", "payload": {"type": "meta"}}}
    )
    frames = [await client.recv() for _ in range(4)]
    assert frames[0] == frames[1] == {"channel": "pong"}
    assert frames[2] == frames[3] and frames[2]["data"]["id"] == 9


async def test_no_pong(make_sim, connect):
    sim = await make_sim(faults="no_pong=1")
    client = await connect(sim)
    await client.send({"method": "ping"})
    await client.send(
        {"method": "post", "id": 5, "request": {"type": "info", "payload": {"type": "meta"}}}
    )
    # Frames are delivered in order, so a pong would have come first.
    frame = await client.recv()
    assert frame["channel"] == "post"
    sim.faults.no_pong = False
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}


# --- acks and snapshots -------------------------------------------------------------------


async def test_withheld_ack_is_released_on_command(make_sim, connect):
    sim = await make_sim(faults="withhold_ack=1")
    client = await connect(sim)
    await client.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:AAA"}})
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}  # the subscription is in place, unacked
    _quote(sim)
    # Market data for the subscription flows before its ack, as it can on the exchange.
    frame = await client.recv()
    assert frame["channel"] == "bbo"
    assert sim.faults.release_acks() == 1
    ack, _ = await client.recv_until(lambda f: f["channel"] == "subscriptionResponse")
    assert ack["data"]["subscription"] == {"type": "bbo", "coin": "xyz:AAA"}


async def test_delayed_ack(make_sim, connect):
    sim = await make_sim(faults="delay_ack_ms=200")
    client = await connect(sim)
    start = time.monotonic()
    await client.subscribe({"type": "trades", "coin": "xyz:AAA"})
    assert time.monotonic() - start >= 0.2


async def test_withheld_snapshot_then_released(make_sim, connect):
    sim = await make_sim(faults="withhold_snapshot=1")
    user = sim.account[0]
    client = await connect(sim)
    await client.subscribe({"type": "userFills", "user": user})
    await client.send({"method": "ping"})
    assert await client.recv() == {"channel": "pong"}  # nothing came between ack and pong
    assert sim.faults.release_snapshots() == 1
    frame = await client.recv()
    assert frame["channel"] == "userFills"
    assert frame["data"]["isSnapshot"] is True
    assert frame["data"]["user"] == user.lower()


async def test_delayed_snapshot(make_sim, connect):
    sim = await make_sim(faults="delay_snapshot_ms=200")
    client = await connect(sim)
    start = time.monotonic()
    await client.subscribe({"type": "userFills", "user": sim.account[0]})
    frame, _ = await client.recv_until(lambda f: f["channel"] == "userFills")
    assert frame["data"]["isSnapshot"] is True
    assert time.monotonic() - start >= 0.2


async def test_delayed_post_response_beyond_a_client_timeout(make_sim, connect):
    sim = await make_sim(faults="delay_post_ms=300")
    client = await connect(sim)
    await client.send(
        {"method": "post", "id": 1, "request": {"type": "info", "payload": {"type": "meta"}}}
    )
    with pytest.raises(TimeoutError):
        await client.recv(timeout=0.1)  # a client with a 100 ms timeout gives up here
    frame = await client.recv()
    assert frame["channel"] == "post" and frame["data"]["id"] == 1


async def test_halt_from_spec(make_sim, connect):
    sim = await make_sim(faults="halt=xyz:BBB@0.05")
    client = await connect(sim)
    await client.subscribe({"type": "activeAssetCtx", "coin": "xyz:BBB"})
    for _ in range(100):
        if sim.faults.halted:
            break
        await asyncio.sleep(0.02)
    assert sim.faults.halted == ["xyz:BBB"]
    assert "xyz:BBB" in sim.exchange.halted


# --- a stalled stream -----------------------------------------------------------------------


async def _subscribe_both(client) -> None:
    for kind in ("bbo", "activeAssetCtx"):
        await client.subscribe({"type": kind, "coin": "xyz:AAA"})
    await client.frames_for(0.1)  # the snapshots


async def test_a_stalled_stream_is_silent_while_the_socket_lives_until_resubscribed(
    make_sim, connect
):
    sim = await make_sim()
    client = await connect(sim)
    await _subscribe_both(client)
    assert sim.faults.stall("bbo", "xyz:AAA") == 1
    _quote(sim, bid="24.8", ask="25.2")
    sim.exchange.set_oracle("xyz:AAA", Decimal("25.05"))
    await client.send({"method": "ping"})
    frames = await client.frames_for(0.3)
    channels = [f["channel"] for f in frames]
    assert "pong" in channels and "activeAssetCtx" in channels  # the socket and others live
    assert "bbo" not in channels
    sub = {"type": "bbo", "coin": "xyz:AAA"}
    await client.send({"method": "unsubscribe", "subscription": sub})
    await client.subscribe(sub)
    frame, _ = await client.recv_until(lambda f: f["channel"] == "bbo")
    assert frame["data"]["bbo"][0]["px"] == "24.8"  # healed: the book as it is now


async def test_a_stall_through_resubscribes_ends_only_with_the_connection(make_sim, connect):
    sim = await make_sim()
    client = await connect(sim)
    await _subscribe_both(client)
    sim.faults.stall("activeAssetCtx", "xyz:AAA", through_resubscribe=True)
    sub = {"type": "activeAssetCtx", "coin": "xyz:AAA"}
    await client.send({"method": "unsubscribe", "subscription": sub})
    await client.subscribe(sub)
    sim.exchange.set_oracle("xyz:AAA", Decimal("25.05"))
    frames = await client.frames_for(0.3)
    assert "activeAssetCtx" not in [f["channel"] for f in frames]  # not even a snapshot
    again = await connect(sim)  # a new connection is not stalled
    await again.subscribe(sub)
    frame, _ = await again.recv_until(lambda f: f["channel"] == "activeAssetCtx")
    assert frame["data"]["coin"] == "xyz:AAA"
