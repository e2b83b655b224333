"""liquidationPx in clearinghouseState, through the socket, against numbers worked by hand from
the exchange's docs (maintenance margin = half the initial margin at maxLeverage; liquidation
when the position's margin falls to it): isolated long and short, and a cross position whose
dex also holds an isolated one (its margin is not the cross account's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from hip3.sim.harness import SimHarness
from tests.sim.doc_client import AAA, BTC, ETH, DocClient, limit_order, seed_book, statuses

BBB = 110001  # xyz:BBB, szDecimals 1, maxLeverage 10
CLOSE = D("1e-6")


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


async def fill(client: DocClient, asset: int, is_buy: bool, px: str, sz: str) -> None:
    [status] = statuses(await client.order(limit_order(asset, is_buy, px, sz, "Ioc")))
    assert "filled" in status and status["filled"]["totalSz"] == sz, status


async def leverage(client: DocClient, asset: int, value: int, *, cross: bool) -> None:
    action = {"type": "updateLeverage", "asset": asset, "isCross": cross, "leverage": value}
    assert (await client.action(action))["status"] == "ok"


async def positions(client: DocClient, dex: str) -> tuple[dict, dict]:
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": dex})
    return {p["position"]["coin"]: p["position"] for p in state["assetPositions"]}, state


async def test_isolated_long_and_short_liquidation_prices(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [], [("25.1", "10")])
    seed_book(sim.exchange, "xyz:BBB", [("179.9", "5")], [])
    await leverage(client, AAA, 5, cross=False)
    await leverage(client, BBB, 4, cross=False)
    await fill(client, AAA, True, "25.1", "10")
    await fill(client, BBB, False, "179.9", "1")
    held, _ = await positions(client, "xyz")
    # long 10 at 25.1, 5x, maxLeverage 10 (maintenance 5 %): its margin 50.2 plus PnL reaches
    # 5 % of the value at P = 25.1 x (1 - 1/5) / (1 - 0.05) = 21.1368421...
    assert abs(D(held["xyz:AAA"]["liquidationPx"]) - D("21.1368421053")) < CLOSE
    # short 1 at 179.9, 4x: P = 179.9 x (1 + 1/4) / (1 + 0.05) = 214.1666666...
    assert abs(D(held["xyz:BBB"]["liquidationPx"]) - D("214.1666666667")) < CLOSE
    for p in held.values():  # an isolated position's margin is rawUsd + szi x mark
        mark = D(p["positionValue"]) / abs(D(p["szi"]))
        raw = D(p["leverage"]["rawUsd"])
        assert abs(raw + D(p["szi"]) * mark - D(p["marginUsed"])) < CLOSE


async def test_cross_liquidation_price_leaves_isolated_margin_out(make_sim) -> None:
    sim = await make_sim(account_usdc=D(1000))
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        _, before = await positions(client, "")
        balance = D(before["marginSummary"]["accountValue"])
        seed_book(sim.exchange, "ETH", [], [("3001", "1")])
        seed_book(sim.exchange, "BTC", [], [("60010", "1")])
        await leverage(client, ETH, 5, cross=False)
        await leverage(client, BTC, 10, cross=True)
        await fill(client, ETH, True, "3001", "0.1")
        await fill(client, BTC, True, "60010", "0.1")
        fees = sum(
            D(f["fee"]) for f in await client.info({"type": "userFills", "user": client.address})
        )
        held, state = await positions(client, "")
    # ETH isolated long 0.1 at 3001, 5x, maxLeverage 25: 3001 x 0.8 / 0.98 = 2449.7959...
    assert abs(D(held["ETH"]["liquidationPx"]) - D("2449.7959183673")) < CLOSE
    # BTC cross long 0.1 at 60010, maxLeverage 40 (maintenance 1.25 %). The cross account is
    # the balance less fees, less ETH's 60.02 set aside, plus BTC's PnL; it reaches BTC's
    # maintenance at P = (0.1 x 60010 + 60.02 - (balance - fees)) / (0.1 x (1 - 1/80)).
    want = (D("6001") + D("60.02") - (balance - fees)) / (D("0.1") * (1 - D(1) / 80))
    assert abs(D(held["BTC"]["liquidationPx"]) - want) < CLOSE
    assert D("50000") < want < D("60010")  # a real price, not a degenerate one
    btc_mark = D(held["BTC"]["positionValue"]) / D("0.1")
    assert abs(D(state["crossMaintenanceMarginUsed"]) - D("0.1") * btc_mark / 80) < CLOSE


async def test_a_long_no_fall_can_liquidate_has_no_liquidation_price(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [], [("25.1", "10")])
    await leverage(client, AAA, 1, cross=False)
    await fill(client, AAA, True, "25.1", "1")
    held, _ = await positions(client, "xyz")
    assert held["xyz:AAA"]["liquidationPx"] is None  # 1x long: P = 25.1 x 0 / 0.95 = 0
