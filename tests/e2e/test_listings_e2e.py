"""A whole dex that changes while the bot runs, against the simulator over its socket: a
market listed mid-run joins (subscribed, READY-MD on its own data, its leverage set, tradable)
while every other market keeps its READY and its asset id, all on the same connection; then a
delisting found by the next rediscovery retires a market and unsubscribes it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hip3.events import Signal
from hip3.protocol.ids import perp_asset_id
from hip3.sim.harness import SimHarness
from hip3.sim.scenario import parse_scenario

from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e

SCENARIO = """
name = "listing"
tick_ms = 100

[[dexes]]
name = ""
[[dexes.assets]]
name = "ETH"
sz_decimals = 4
start_px = "3000"

[[dexes]]
name = "xyz"
[[dexes.assets]]
name = "AAA"
sz_decimals = 2
max_leverage = 10
start_px = "25"
[[dexes.assets]]
name = "BBB"
sz_decimals = 1
max_leverage = 10
start_px = "180"
[[dexes.assets]]
name = "NEW"
sz_decimals = 0
max_leverage = 10
start_px = "4"
unlisted = true
"""


async def test_a_market_listed_mid_run_joins_and_a_delisted_one_leaves_on_one_connection():
    seen: dict = {}

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0), d.ready.describe()
        assert d.coins == ["xyz:AAA", "xyz:BBB"]
        ids = {c: d.specs[c].asset for c in d.coins}
        trading_samples: list[bool] = []

        async def sample() -> None:
            while True:
                trading_samples.append(d.ready.trading() and d.ready.market("xyz:AAA"))
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        sim.exchange.list_market("xyz:NEW")  # what the scenario's `list` event does
        joined = await wait_for(lambda: "xyz:NEW" in d.coins and d.ready.market("xyz:NEW"), 10.0)
        sampler.cancel()
        assert joined, d.ready.describe()
        assert d.coins == ["xyz:AAA", "xyz:BBB", "xyz:NEW"]
        assert d.specs["xyz:NEW"].asset == perp_asset_id(1, 2)
        assert {c: d.specs[c].asset for c in ids} == ids  # no id moved
        assert trading_samples and all(trading_samples)  # the others' READY never dropped
        assert d.leverage.settings["xyz:NEW"] == (False, 2)  # the wildcard's leverage
        assert d.detector.p.thresholds["xyz:NEW"] == Decimal(900)  # and its threshold
        assert d.liq_buffer.ratios["xyz:NEW"] == Decimal("0.05")  # and its liquidation buffer
        # tradable: an entry on the new market fills on the exchange
        st = d.markets["xyz:NEW"]
        d.put(Signal("xyz:NEW", True, Decimal(5), st.ask_px, edge_bps=50.0, reason="test"))
        assert await wait_for(lambda: "xyz:NEW" in truth_positions(sim), 5.0), d.counters
        assert d.positions.size("xyz:NEW") == truth_positions(sim)["xyz:NEW"]

        sim.exchange.halt_market("xyz:BBB")  # a delisting, seen by the next rediscovery
        assert await wait_for(lambda: "xyz:BBB" in d.ready.retired, 10.0)
        assert await wait_for(lambda: not sim.server.subscribers("bbo", "xyz:BBB"), 5.0)
        assert not sim.server.subscribers("activeAssetCtx", "xyz:BBB")
        assert d.gates["xyz:BBB"].delisted and not d.ready.market("xyz:BBB")
        assert d.ready.trading() and d.ready.market("xyz:NEW")
        assert {c: d.specs[c].asset for c in d.coins} == {**ids, "xyz:NEW": perp_asset_id(1, 2)}
        seen["epochs"] = d.conn.epoch

    async with SimHarness(seed=11, scenario=parse_scenario(SCENARIO)) as sim:
        summary, d = await run_against(
            sim,
            duration_s=25,
            during=during,
            markets=[
                {
                    "coin": "xyz:*",
                    "threshold_bps": 900.0,
                    "leverage": 2,
                    "min_liq_buffer_ratio": 0.05,
                }
            ],
            discovery={"rediscover_s": 0.2},
            detector={"min_edge_bps": 5000.0},
        )
    assert seen["epochs"] == 1  # all of it on the first connection
    assert d.counters["markets_listed"] == 1 and d.counters["markets_delisted"] == 1
    assert d.counters["rediscoveries"] >= 2 and d.counters["rediscovery_failed"] == 0
    assert summary["fatal"] is None and summary["reconciled"] is True
    assert truth_positions(sim) == {}  # the clean stop closed the new market's position too


async def test_start_up_discovery_asks_every_dex_at_once_and_leaves_an_unlisted_one_out():
    from hip3.app.discovery import fetch_metas

    async with SimHarness(seed=11, scenario=parse_scenario(SCENARIO)) as sim:
        sent: list[bytes] = []
        sim.server.on_client_frame = sent.append
        metas = await fetch_metas(sim.ws_url, ["", "qq", "xyz"])
    assert sorted(metas) == ["", "xyz"]  # "qq" is the caller's to refuse by name
    assert [a["name"] for a in metas["xyz"]["universe"]] == ["xyz:AAA", "xyz:BBB"]
    assert len(sent) == 4  # perpDexs and three metas, on the one connection
