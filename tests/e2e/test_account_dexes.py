"""Account mode and whole dexes against the simulator over its socket: an account in a mode
other than standard is refused before anything is sent (exit 4), a mode change seen at a
reconnect stops entries through the HardStop, `coin = "xyz:*"` trades every listed market of
the dex with exact entries overriding it, and a market delisted at a rediscovery leaves READY
without moving any asset id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hip3.app.exit_codes import ExitCode, code_for_summary
from hip3.protocol.ids import perp_asset_id
from hip3.sim.harness import SimHarness
from tests.sim.doc_client import DocClient

from .support import run_against, wait_for

pytestmark = pytest.mark.e2e

QUIET = {"min_edge_bps": 5000.0}
MANY_DEXES = (
    Path(__file__).resolve().parents[2] / "hip3" / "sim" / "scenarios" / "many_dexes.toml"
)  # no entries: the account must stay switchable


async def test_unified_account_is_refused_before_anything_is_sent():
    async with SimHarness(seed=11) as sim:
        sim.exchange.set_abstraction(sim.account[0], "unifiedAccount")
        summary, _d = await run_against(sim, duration_s=8)
    problem = summary["account_refused"]
    assert problem and "account mode 'unifiedAccount'" in problem and "\n" not in problem
    assert sim.account[0].lower() in problem
    assert summary["actions_sent"] == 0
    assert code_for_summary(summary) is ExitCode.ACCOUNT_REFUSED


async def test_mode_changed_mid_run_stops_entries_through_the_hardstop():
    """The account switches to portfolio margin while the bot runs; the next epoch's check
    sees it and trips the HardStop (entries blocked, cancel, flatten, verify) instead of
    trading on in a mode whose per-dex states the bot cannot read."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0)
        # the start-up watch samples READY every 0.1 s: let it see this run was READY
        await asyncio.sleep(0.3)
        sim.exchange.set_abstraction(sim.account[0], "portfolioMargin")
        sim.faults.drop_all()
        assert await wait_for(lambda: not d.hardstop.is_armed, 10.0), d.conn.state
        assert not d.ready.trading()

    async with SimHarness(seed=11) as sim:
        summary, _d = await run_against(
            sim, duration_s=6, during=during, markets=[{"coin": "xyz:AAA"}], detector=QUIET
        )
    reasons = summary["hardstop"]["reasons"]
    assert any("account mode changed" in r and "'portfolioMargin'" in r for r in reasons), reasons
    assert summary["account_refused"] is None and summary["fatal"] is None
    assert summary["reconciled"] is True
    assert code_for_summary(summary) is ExitCode.HARDSTOP


async def test_whole_dex_expands_after_discovery_and_a_delisting_keeps_every_asset_id():
    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0)
        ids = {c: s.asset for c, s in d.specs.items()}
        sim.exchange.halt_market("xyz:BBB")  # delisted: the next discovery lists it so
        sim.faults.drop_all()
        assert await wait_for(lambda: "xyz:BBB" in d.ready.retired, 10.0)
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        assert {c: s.asset for c, s in d.specs.items()} == ids
        assert d.specs["xyz:BBB"].delisted and d.gates["xyz:BBB"].delisted
        assert not d.ready.market("xyz:BBB")

    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=8,
            during=during,
            markets=[{"coin": "xyz:*", "threshold_bps": 900.0}, {"coin": "xyz:CCC"}],
            detector=QUIET,
        )
    # the wildcard's markets in meta order, the exact entry in its own place
    assert d.coins == ["xyz:AAA", "xyz:BBB", "xyz:DDD", "xyz:CCC"]
    assert d.cfg.market("xyz:AAA").threshold_bps == 900.0
    assert d.cfg.market("xyz:CCC").threshold_bps is None  # the exact entry beats the wildcard
    assert [d.specs[c].asset for c in d.coins] == [perp_asset_id(1, i) for i in (0, 1, 3, 2)]
    assert summary["reconciled"] is True and summary["fatal"] is None


async def leverage_of(sim: SimHarness, coin: str) -> dict:
    async with await DocClient.connect(sim.ws_url) as client:
        data = await client.info({"type": "activeAssetData", "user": sim.account[0], "coin": coin})
    return data["leverage"]


async def test_leverage_is_set_per_market_as_its_margin_mode_allows_and_not_sent_twice():
    """BTC allows cross margin, xyz:AAA is strictIsolated: each gets its configured leverage
    in the mode it allows; a second run finds both already set and sends no updateLeverage."""
    markets = [{"coin": "BTC", "leverage": 7}, {"coin": "xyz:AAA"}]
    async with SimHarness(seed=11) as sim:
        _s, d = await run_against(
            sim, duration_s=3, markets=markets, margin={"leverage": 3}, detector=QUIET
        )
        assert d.leverage.settings == {"BTC": (True, 7), "xyz:AAA": (False, 3)}
        assert d.counters["leverage_set"] == 2
        assert (await leverage_of(sim, "BTC"))["type"] == "cross"
        assert (await leverage_of(sim, "BTC"))["value"] == 7
        assert (await leverage_of(sim, "xyz:AAA"))["type"] == "isolated"
        assert (await leverage_of(sim, "xyz:AAA"))["value"] == 3
        summary, d = await run_against(
            sim, duration_s=3, markets=markets, margin={"leverage": 3}, detector=QUIET
        )
    assert d.counters["leverage_already_set"] == 2 and d.counters["leverage_set"] == 0
    assert not d.ready.unsettled
    assert summary["reconciled"] is True and code_for_summary(summary) is ExitCode.OK


async def test_leverage_above_the_markets_maximum_stops_the_run_before_any_entry():
    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=5,
            markets=[{"coin": "xyz:AAA"}, {"coin": "xyz:CCC", "leverage": 8}],
            margin={"leverage": 2},
            detector=QUIET,
        )
    assert "leverage 8 for xyz:CCC is above its maxLeverage 5" in summary["fatal"]
    assert "\n" not in summary["fatal"]
    assert summary["orders_submitted"] == 0 and not d.ready.trading()
    assert summary["reconciled"] is True
    assert code_for_summary(summary) is ExitCode.FATAL


async def test_summary_names_each_dexs_collateral_token_and_its_margin():
    """many_dexes' dexes use USDC, USDH, USDe and USDT: the summary and the status view say
    which token each traded dex's money (and so its risk limits) is counted in."""
    from hip3.metrics.status import render_status

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 15.0), d.ready.describe()
        view = render_status(d, d.clock.now_ns())
        assert "flx USDH" in view and "cash USDT" in view, view

    markets = [{"coin": c} for c in ("xyz:XYZ001", "flx:FLX001", "hyna:HYNA001", "cash:CASH001")]
    async with SimHarness(seed=5, scenario=MANY_DEXES) as sim:
        summary, _d = await run_against(
            sim, duration_s=4, during=during, markets=markets, detector=QUIET
        )
    tokens = {dex: c["token"] for dex, c in summary["collateral"].items()}
    assert tokens == {"xyz": "USDC", "flx": "USDH", "hyna": "USDe", "cash": "USDT"}
    assert all(float(c["available"]) > 0 for c in summary["collateral"].values())
