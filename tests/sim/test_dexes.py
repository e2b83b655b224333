"""Many dexes and many markets, as a client sees them over HTTP and through the official SDK:
collateral tokens, per-asset margin modes, growth mode, fee scales, asset ids, delistings."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from hyperliquid.info import Info

from hip3.sim.harness import SimHarness
from hip3.sim.scenario import ScenarioError, parse_scenario

DEX_NAMES = ["", "xyz", "flx", "hyna", "cash"]


def post_info(base: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        base + "/info",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


async def info(sim: SimHarness, payload: dict[str, Any]) -> Any:
    return await asyncio.to_thread(post_info, sim.http_url, payload)


async def test_perp_dexs_lists_every_dex_with_its_fee_scale(make_sim) -> None:
    sim = await make_sim(scenario="many_dexes")
    dexs = await info(sim, {"type": "perpDexs"})
    assert dexs[0] is None
    assert [d["name"] for d in dexs[1:]] == DEX_NAMES[1:]
    scales = {d["name"]: d["deployerFeeScale"] for d in dexs[1:]}
    assert scales == {"xyz": "1.0", "flx": "0.5", "hyna": "3.0", "cash": "9.5"}


async def test_meta_carries_collateral_margin_mode_and_growth_mode(make_sim) -> None:
    sim = await make_sim(scenario="many_dexes")
    spot = await info(sim, {"type": "spotMeta"})
    token_names = {t["index"]: t["name"] for t in spot["tokens"]}
    collateral = {}
    total = 0
    for dex in DEX_NAMES:
        meta = await info(sim, {"type": "meta", "dex": dex})
        collateral[dex] = token_names[meta["collateralToken"]]
        total += len(meta["universe"])
    assert collateral == {"": "USDC", "xyz": "USDC", "flx": "USDH", "hyna": "USDe", "cash": "USDT"}
    assert total == 300
    every = await info(sim, {"type": "allPerpMetas"})
    assert [token_names[meta["collateralToken"]] for meta in every] == list(collateral.values())
    assert sum(len(meta["universe"]) for meta in every) == 300
    xyz = (await info(sim, {"type": "meta", "dex": "xyz"}))["universe"]
    assert {a["marginMode"] for a in xyz} == {"strictIsolated"}
    flx = (await info(sim, {"type": "meta", "dex": "flx"}))["universe"]
    assert {a["marginMode"] for a in flx} == {"noCross"}
    hyna = (await info(sim, {"type": "meta", "dex": "hyna"}))["universe"]
    assert all("marginMode" not in a and "onlyIsolated" not in a for a in hyna)  # cross allowed
    cash = (await info(sim, {"type": "meta", "dex": "cash"}))["universe"]
    assert {a.get("marginMode") for a in cash} == {None, "strictIsolated"}
    assert all(a["growthMode"] == "enabled" for a in cash)
    assert not any("growthMode" in a for a in hyna)


async def test_asset_ids_follow_the_documented_formula_through_the_sdk(make_sim) -> None:
    sim = await make_sim(scenario="many_dexes")

    def session() -> dict[str, int]:
        sdk = Info(sim.http_url, skip_ws=True, perp_dexs=DEX_NAMES)
        return {
            name: sdk.name_to_asset(name)
            for name in ("BTC", "P019", "xyz:XYZ000", "xyz:XYZ099", "flx:FLX059", "cash:CASH000")
        }

    ids = await asyncio.to_thread(session)
    assert ids == {
        "BTC": 0,
        "P019": 19,
        "xyz:XYZ000": 110000,
        "xyz:XYZ099": 110099,
        "flx:FLX059": 120059,
        "cash:CASH000": 140000,
    }


async def test_a_delisted_market_keeps_its_slot_and_is_reported_delisted(make_sim) -> None:
    sim = await make_sim(scenario="many_dexes")
    meta, ctxs = await info(sim, {"type": "metaAndAssetCtxs", "dex": "xyz"})
    assert len(meta["universe"]) == len(ctxs) == 100
    delisted = [i for i, a in enumerate(meta["universe"]) if a.get("isDelisted")]
    assert delisted == [7]
    assert meta["universe"][8]["name"] == "xyz:XYZ008"  # later markets did not move up
    mids = await info(sim, {"type": "allMids", "dex": "hyna"})
    assert len(mids) == 60 and all(coin.startswith("hyna:") for coin in mids)
    assert "BTC" not in mids


def test_a_scenario_with_an_unknown_collateral_or_scale_names_the_problem() -> None:
    base = '[[dexes]]\nname = ""\n[[dexes.assets]]\nname = "BTC"\nsz_decimals = 5\nstart_px = 1\n'
    dex = (
        '[[dexes]]\nname = "abc"\n{}\n[[dexes.assets]]\nname = "A"\nsz_decimals = 0\nstart_px = 1\n'
    )
    with pytest.raises(ScenarioError, match="collateral 'DAI' must be one of USDC, USDH"):
        parse_scenario(base + dex.format('collateral = "DAI"'))
    with pytest.raises(ScenarioError, match="above 3 needs growth_mode"):
        parse_scenario(base + dex.format('deployer_fee_scale = "5"'))
    assert (
        parse_scenario(base + dex.format('collateral = "USDT"')).universe().dexes[1].collateral.name
        == "USDT"
    )
