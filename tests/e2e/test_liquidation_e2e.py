"""The bot's liquidation-price estimate against the simulator's, over real sockets: the bot
opens a position (isolated, and cross on a thinly funded dex) through its liquidation-buffer gate, and the simulator's clearinghouseState
(read with the official SDK over HTTP, as any outside client would) names the liquidation
price of that position. Both come from the exchange's docs, separately: the bot projects the
position from its last state read before the order goes out, the simulator computes it from
its own ledger after the fill.

Tolerance: 0.1 % of the price. On an isolated market the liquidation price is
entry x (1 - 1/leverage) / (1 - 1/(2 x maxLeverage)); the bot assumes the fill at the order's
limit price, the simulator knows the real fill price, and the two differ by at most the
taker's slippage allowance (a few bps). On a cross market the bot also leaves out the fill's
fee, which the simulator takes from the balance: fee / |size| / (1 +- 1/(2 x maxLeverage)) in
price, about 0.02 % for a $50 BTC position on a 30 USDC dex. Measured here: isolated xyz:DDD
1006.97 vs 1006.77, cross BTC short 95367 vs 95352."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hyperliquid.info import Info

from hip3.sim.harness import SimHarness

from .support import run_against, wait_for

pytestmark = pytest.mark.e2e

TOLERANCE = Decimal("0.001")


async def test_the_bots_estimate_agrees_with_the_simulators_liquidation_px():
    seen: dict[str, object] = {}

    async def during(d, sim):
        assert await wait_for(lambda: bool(d.positions.open_coins()), 20.0), dict(
            d.executor.blocked
        )
        coin = d.positions.open_coins()[0]
        seen["coin"] = coin
        seen["estimate"] = d.liq_buffer.projections[coin]

        def read() -> dict:  # the SDK blocks: off the loop the simulator serves on
            info = Info(sim.http_url, skip_ws=True, perp_dexs=["", "xyz"])
            return info.user_state(sim.account[0], "xyz")

        seen["state"] = await asyncio.wait_for(asyncio.to_thread(read), 10.0)

    async with SimHarness(seed=11) as sim:
        await run_against(
            sim,
            duration_s=25,
            during=during,
            margin={"leverage": 3},
            entry_guards={"min_liq_buffer_ratio": 0.3},
            exits={"time_stop_s": 60.0, "mark_regression_enabled": False},
            oracle_exit={"enabled": False},
            shutdown={"flatten_on_exit": True},
        )
    coin, estimate = seen["coin"], seen["estimate"]
    [held] = [
        p["position"] for p in seen["state"]["assetPositions"] if p["position"]["coin"] == coin
    ]
    assert held["leverage"]["type"] == "isolated" and held["leverage"]["value"] == 3
    truth = Decimal(held["liquidationPx"])
    assert abs(estimate.liquidation_px - truth) <= truth * TOLERANCE, (estimate, held)
    # at 3x on a market of maxLeverage M the buffer is about (1/3 - 1/(2M)) / (1 - 1/(2M))
    assert estimate.buffer >= Decimal("0.3")


async def test_a_cross_estimate_agrees_with_the_simulators_liquidation_px():
    # a thin first dex (30 USDC) so a $50 BTC position at 3x cross has a real liquidation
    # price: (|s| x entry - side x 30) / (s x (1 - side / 80)), maxLeverage 40
    seen: dict[str, object] = {}

    async def during(d, sim):
        assert await wait_for(lambda: bool(d.positions.open_coins()), 20.0), dict(
            d.executor.blocked
        )
        seen["estimate"] = d.liq_buffer.projections["BTC"]

        def read() -> dict:
            return Info(sim.http_url, skip_ws=True).user_state(sim.account[0])

        seen["state"] = await asyncio.wait_for(asyncio.to_thread(read), 10.0)

    async with SimHarness(seed=11, account_usdc=Decimal(30)) as sim:
        await run_against(
            sim,
            duration_s=25,
            during=during,
            markets=[{"coin": "BTC"}],
            margin={"leverage": 3, "cross": True},
            entry_guards={"min_liq_buffer_ratio": 0.3},
            exits={"time_stop_s": 60.0, "mark_regression_enabled": False},
            oracle_exit={"enabled": False},
            shutdown={"flatten_on_exit": True},
        )
    estimate = seen["estimate"]
    [held] = [p["position"] for p in seen["state"]["assetPositions"]]
    assert held["coin"] == "BTC" and held["leverage"] == {"type": "cross", "value": 3}
    truth = Decimal(held["liquidationPx"])
    assert abs(estimate.liquidation_px - truth) <= truth * TOLERANCE, (estimate, held)
