"""History requests (userFillsByTime, historicalOrders) and the address-based request budget
(userRateLimit), through the socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hip3.sim.harness import SimHarness
from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book, statuses

BUDGET_TEXT = (
    "Too many cumulative requests sent ({used} > {cap}) for cumulative volume traded "
    "${volume}. Place taker orders to free up 1 request per USDC traded."
)


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


def ladder(levels: int, start: str = "25.001", step: str = "0.001") -> list[tuple[str, str]]:
    """`levels` asks of size 1 on xyz:AAA, one tick apart."""
    px = Decimal(start)
    out = []
    for _ in range(levels):
        out.append((str(px), "1"))
        px += Decimal(step)
    return out


async def test_user_fills_by_time_caps_at_2000_oldest_first_and_pages_by_time(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [], ladder(2100))
    first = statuses(await client.order(limit_order(AAA, True, "28", "2005", "Ioc")))
    assert first[0]["filled"]["totalSz"] == "2005"
    await asyncio.sleep(0.01)  # the second sweep lands in a later millisecond
    second = statuses(await client.order(limit_order(AAA, True, "28", "95", "Ioc")))
    assert second[0]["filled"]["totalSz"] == "95"

    user = client.address
    page = await client.info({"type": "userFillsByTime", "user": user, "startTime": 0})
    assert len(page) == 2000
    assert [f["px"] for f in page[:2]] == ["25.001", "25.002"]  # oldest first
    times = [f["time"] for f in page]
    assert times == sorted(times)
    rest = await client.info({"type": "userFillsByTime", "user": user, "startTime": times[-1] + 1})
    assert len(rest) == 95 and all(f["time"] > times[-1] for f in rest)
    bounded = await client.info(
        {"type": "userFillsByTime", "user": user, "startTime": 0, "endTime": times[-1]}
    )
    assert len(bounded) == 2000 and bounded[-1]["time"] == times[-1]
    # userFills keeps answering the 2000 most recent, newest first.
    recent = await client.info({"type": "userFills", "user": user})
    assert len(recent) == 2000 and recent[0]["tid"] == rest[-1]["tid"]


async def test_user_fills_by_time_needs_a_start_time(client: DocClient) -> None:
    response = await client.post("info", {"type": "userFillsByTime", "user": client.address})
    assert response["type"] == "error" and "startTime" in response["payload"]


async def test_historical_orders_newest_first_with_latest_status(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    [resting] = statuses(await client.order(limit_order(AAA, True, "24", "1")))
    oid = resting["resting"]["oid"]
    [filled] = statuses(await client.order(limit_order(AAA, True, "25.1", "1", "Ioc")))
    await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
    history = await client.info({"type": "historicalOrders", "user": client.address})
    assert [(h["order"]["oid"], h["status"]) for h in history] == [
        (oid, "canceled"),
        (filled["filled"]["oid"], "filled"),
    ]
    assert history[0]["order"]["limitPx"] == "24" and history[0]["order"]["tif"] == "Gtc"


async def test_user_rate_limit_counts_requests_and_volume(
    sim: SimHarness, client: DocClient
) -> None:
    user = client.address
    fresh = await client.info({"type": "userRateLimit", "user": user})
    assert fresh == {
        "cumVlm": "0",
        "nRequestsUsed": 0,
        "nRequestsCap": 10000,
        "nRequestsSurplus": 0,
    }
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    # A batch of three orders counts three (the failing one too), a noop one.
    await client.order(
        limit_order(AAA, True, "24", "1"),
        limit_order(AAA, True, "24.00001", "1"),
        limit_order(AAA, True, "25.1", "40", "Ioc"),
    )
    await client.action({"type": "noop"})
    # An action refused as a whole costs nothing.
    await client.order(*[limit_order(AAA, True, "24", "1")] * 201)
    state = await client.info({"type": "userRateLimit", "user": user})
    assert state["nRequestsUsed"] == 4
    assert state["cumVlm"] == "1004"  # 40 x 25.1
    assert state["nRequestsCap"] == 11004


async def test_budget_refuses_when_spent_then_lets_one_through_per_interval(
    sim: SimHarness, client: DocClient
) -> None:
    budget = sim.exchange.request_budget
    budget.base = 3
    budget.exhausted_interval_ms = 400
    for _ in range(3):
        assert (await client.action({"type": "noop"}))["status"] == "ok"
    nonce = client.next_nonce()
    refused = await client.action({"type": "noop"}, nonce=nonce)
    assert refused == {
        "status": "err",
        "response": BUDGET_TEXT.format(used=3, cap=3, volume="0"),
    }
    again = await client.action({"type": "noop"})
    assert again["status"] == "err"  # refusals do not restart the wait, nor cost anything
    state = await client.info({"type": "userRateLimit", "user": client.address})
    assert state["nRequestsUsed"] == 3
    # Cancels may go beyond the cap (to min(cap + 100000, 2 x cap)).
    cancel = await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": 1}]})
    assert cancel["status"] == "ok"
    await asyncio.sleep(0.45)
    # A refused action did not spend its nonce: the slot admits it now.
    assert (await client.action({"type": "noop"}, nonce=nonce))["status"] == "ok"
    assert (await client.action({"type": "noop"}))["status"] == "err"


async def test_trading_raises_the_cap(sim: SimHarness, client: DocClient) -> None:
    sim.exchange.request_budget.base = 2
    seed_book(sim.exchange, "xyz:AAA", [], [("25", "100")])
    [fill] = statuses(await client.order(limit_order(AAA, True, "25", "4", "Ioc")))
    assert fill["filled"]["totalSz"] == "4"
    await client.action({"type": "noop"})
    # 2 used; the 100 USDC traded raised the cap to 102.
    for _ in range(5):
        assert (await client.action({"type": "noop"}))["status"] == "ok"
    state = await client.info({"type": "userRateLimit", "user": client.address})
    assert state == {
        "cumVlm": "100",
        "nRequestsUsed": 7,
        "nRequestsCap": 102,
        "nRequestsSurplus": 0,
    }
