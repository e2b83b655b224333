"""Cancel, flatten and verify against the simulator over a real socket (the guard's own
connection), with the account prepared through that same connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hip3.config import GuardConfig
from hip3.guard.actions import Guardian
from hip3.guard.link import ExchangeLink, LinkError
from hip3.keys import SigningKey
from hip3.protocol.actions import limit_order_wire, order_action
from hip3.protocol.frames import order_statuses
from hip3.protocol.numbers import wire_decimal
from hip3.protocol.signing import FastSigner
from hip3.sim.harness import SimHarness

MAKER = "0x" + "5a" * 20
AAA, AAA_ID = "xyz:AAA", 110000  # szDecimals 2, starts at 25


def quote(sim: SimHarness, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
    sim.exchange.replace_maker_quotes(
        AAA,
        MAKER,
        [(Decimal(p), Decimal(s)) for p, s in bids],
        [(Decimal(p), Decimal(s)) for p, s in asks],
    )


@contextlib.asynccontextmanager
async def guarded(sim: SimHarness, **cfg) -> AsyncIterator[tuple[Guardian, ExchangeLink]]:
    key = SigningKey.from_hex(sim.account[1])
    g = GuardConfig(**{"retry_backoff_s": 0.05, "request_timeout_s": 2.0, **cfg})
    link = ExchangeLink(
        sim.ws_url,
        signer=FastSigner(key.secret_bytes()),
        mainnet=False,
        request_timeout_s=g.request_timeout_s,
        ping_interval_s=g.ping_interval_s,
    )
    link.start()
    try:
        yield Guardian(link, user=sim.account[0], dexes=("xyz",), cfg=g), link
    finally:
        await link.close()


async def order(link: ExchangeLink, *wires: dict) -> list:
    return order_statuses(await link.action(order_action(list(wires))))


def buy(px: str, sz: str, tif: str = "Ioc") -> dict:
    return limit_order_wire(asset=AAA_ID, is_buy=True, px=px, sz=sz, reduce_only=False, tif=tif)


def positions(sim: SimHarness) -> dict[str, Decimal]:
    return {c: s for c, s in sim.exchange.positions(sim.account[0]).items() if s != 0}


async def test_a_thin_book_takes_several_rounds_and_ends_verified_flat():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim, max_attempts=5) as (g, link):
        quote(sim, [("24.9", "1")], [("25.1", "10")])
        (status,) = await order(link, buy("25.2", "3"))
        assert status.kind == "filled" and positions(sim) == {AAA: Decimal(3)}

        async def maker() -> None:  # one lot on the bid, renewed after every take
            while True:
                quote(sim, [("24.9", "1")], [("25.1", "10")])
                await asyncio.sleep(0.01)

        task = asyncio.get_running_loop().create_task(maker())
        try:
            outcome = await g.run()
        finally:
            task.cancel()
    assert outcome.clean and outcome.rounds == 4  # 1 lot per round, then a round finds none
    assert outcome.state is not None and outcome.state.positions == {}


async def test_without_flatten_orders_are_cancelled_and_the_position_is_reported():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim, flatten=False) as (g, link):
        quote(sim, [("24.9", "10")], [("25.1", "10")])
        await order(link, buy("25.2", "2"))
        (resting,) = await order(link, buy("20", "1", tif="Gtc"))
        assert resting.kind == "resting"
        outcome = await g.run()
    assert outcome.verified and not outcome.clean
    assert outcome.state is not None
    assert outcome.state.orders == [] and outcome.state.positions == {AAA: Decimal(2)}
    assert outcome.state.describe() == "positions xyz:AAA 2; 0 open order(s)"


async def test_more_orders_than_one_action_carries_are_all_cancelled():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim) as (g, link):
        quote(sim, [("24.9", "10")], [("25.1", "10")])
        for start in (0, 125):  # 250 resting buys, each worth more than $10
            statuses = await order(
                link,
                *(
                    buy(wire_decimal(Decimal(20) - Decimal(start + i) / 100), "0.6", "Gtc")
                    for i in range(125)
                ),
            )
            assert {s.kind for s in statuses} == {"resting"}
        assert len(sim.exchange.open_orders(sim.account[0])) == 250
        outcome = await g.run()
    assert outcome.clean and outcome.rounds == 2
    assert sim.exchange.open_orders(sim.account[0]) == []


async def test_a_position_that_cannot_be_priced_is_exposure_after_the_last_round():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim, max_attempts=2) as (g, link):
        quote(sim, [("24.9", "10")], [("25.1", "10")])
        await order(link, buy("25.2", "2"))
        quote(sim, [], [("25.1", "10")])  # nobody bids: a long cannot be sold
        outcome = await g.run()
    assert outcome.verified and not outcome.clean and outcome.rounds == 2
    assert any("no bids" in e for e in outcome.errors), outcome.errors
    assert outcome.state is not None and outcome.state.positions == {AAA: Decimal(2)}


async def test_an_unreachable_exchange_is_not_verified():
    sim = SimHarness(seed=3, feeds=False)
    await sim.start()
    await sim.stop()  # the port is closed now
    async with guarded(sim, max_attempts=1, request_timeout_s=0.1) as (g, link):
        with pytest.raises(LinkError, match="not connected"):
            await link.info({"type": "perpDexs"})
        outcome = await g.run()
    assert not outcome.verified and outcome.state is None and not outcome.clean
    assert any(e.startswith("verify: ") for e in outcome.errors), outcome.errors


async def test_the_link_reconnects_after_a_drop_and_answers_again():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim) as (_g, link):
        assert await link.wait_connected(2.0)
        assert (await link.info({"type": "perpDexs"}))[0] is None
        sim.faults.drop_all()
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while link.connects < 2 and loop.time() < end:
            await asyncio.sleep(0.02)
        assert link.connects == 2, link.last_error
        assert (await link.info({"type": "perpDexs"}))[1]["name"] == "xyz"


async def test_the_link_pings_its_quiet_connection():
    import websockets

    received: list[str] = []

    async def record(ws) -> None:
        async for message in ws:
            received.append(message)

    async with websockets.serve(record, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        link = ExchangeLink(
            f"ws://127.0.0.1:{port}",
            signer=None,
            mainnet=False,
            request_timeout_s=1.0,
            ping_interval_s=0.05,
        )
        link.start()
        try:
            await asyncio.sleep(0.4)
        finally:
            await link.close()
    assert len(received) >= 3 and set(received) == {'{"method":"ping"}'}


async def test_the_signer_check_passes_the_account_key_and_refuses_a_stranger():
    async with SimHarness(seed=3, feeds=False) as sim, guarded(sim) as (g, _link):
        now = time.time_ns() // 1_000_000
        assert await g.signer_problem(sim.account[0], now) is None
        stranger = "0x" + "77" * 20
        problem = await g.signer_problem(stranger, now)
    assert problem is not None and "not an approved agent" in problem and stranger in problem
