"""Margin modes per asset, over the socket: `marginMode` in meta decides whether
`updateLeverage` may ask for cross, and a cross position's PnL works for the rest of the dex
while an isolated one keeps its PnL to itself."""

from __future__ import annotations

from decimal import Decimal

from hip3.sim.harness import SimHarness
from hip3.sim.scenario import parse_scenario
from tests.sim.doc_client import DocClient, limit_order, seed_book, statuses

SCENARIO = parse_scenario(
    """
[[dexes]]
name = ""
[[dexes.assets]]
name = "BTC"
sz_decimals = 5
start_px = "60000"

[[dexes]]
name = "abc"
[[dexes.assets]]
name = "CRS"
sz_decimals = 2
max_leverage = 10
start_px = "100"
margin_mode = "normal"
[[dexes.assets]]
name = "ISO"
sz_decimals = 2
max_leverage = 10
start_px = "100"
margin_mode = "noCross"
[[dexes.assets]]
name = "STR"
sz_decimals = 2
max_leverage = 10
start_px = "100"
margin_mode = "strictIsolated"
"""
)
CRS, ISO, STR = 110000, 110001, 110002


def leverage(asset: int, is_cross: bool, value: int = 10) -> dict[str, object]:
    return {"type": "updateLeverage", "asset": asset, "isCross": is_cross, "leverage": value}


def quote_around(sim: SimHarness, coin: str, px: int) -> None:
    seed_book(sim.exchange, coin, [(f"{px - 0.1:.1f}", "1000")], [(f"{px + 0.1:.1f}", "1000")])
    sim.exchange.set_oracle(coin, Decimal(px))


async def withdrawable(client: DocClient) -> Decimal:
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": "abc"})
    return Decimal(state["withdrawable"])


async def test_cross_only_where_the_meta_allows_it(make_sim) -> None:
    sim = await make_sim(scenario=SCENARIO)
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        meta = await client.info({"type": "meta", "dex": "abc"})
        modes = [entry.get("marginMode") for entry in meta["universe"]]
        assert modes == [None, "noCross", "strictIsolated"]
        assert await client.action(leverage(CRS, True)) == {
            "status": "ok",
            "response": {"type": "default"},
        }
        for asset, coin in ((ISO, "abc:ISO"), (STR, "abc:STR")):
            answer = await client.action(leverage(asset, True))
            assert answer == {
                "status": "err",
                "response": f"Cross margin is not allowed for {coin} (isolated only).",
            }
            assert (await client.action(leverage(asset, False, 5)))["status"] == "ok"
        quote_around(sim, "abc:CRS", 100)
        quote_around(sim, "abc:ISO", 100)
        for asset in (CRS, ISO):
            await client.order(limit_order(asset, True, "100.1", "1", "Ioc"))
        state = await client.info(
            {"type": "clearinghouseState", "user": client.address, "dex": "abc"}
        )
        kinds = {p["position"]["coin"]: p["position"]["leverage"] for p in state["assetPositions"]}
        assert kinds["abc:CRS"] == {"type": "cross", "value": 10}
        assert kinds["abc:ISO"]["type"] == "isolated" and kinds["abc:ISO"]["value"] == 5


async def test_a_cross_position_lends_its_pnl_to_the_dex_an_isolated_one_does_not(
    make_sim,
) -> None:
    sim = await make_sim(scenario=SCENARIO)
    quote_around(sim, "abc:CRS", 100)
    quote_around(sim, "abc:ISO", 100)
    moved = {}
    for asset, coin, is_cross in ((CRS, "abc:CRS", True), (ISO, "abc:ISO", False)):
        _, key = sim.new_account(Decimal(10000), every_dex=True)
        async with await DocClient.connect(sim.ws_url, key) as client:
            assert (await client.action(leverage(asset, is_cross)))["status"] == "ok"
            [filled] = statuses(await client.order(limit_order(asset, True, "100.1", "10", "Ioc")))
            assert filled["filled"]["totalSz"] == "10"
            before = await withdrawable(client)
            quote_around(sim, coin, 110)  # mark 100 -> 110: +100 PnL on 10 long
            after_up = await withdrawable(client)
            quote_around(sim, coin, 90)  # mark 110 -> 90: -100 PnL against the entry
            after_down = await withdrawable(client)
            quote_around(sim, coin, 100)
        moved[coin] = (after_up - before, after_down - before)
    # Cross: +100 PnL less 10 more margin at the higher mark; -100 PnL plus 10 released.
    assert moved["abc:CRS"] == (Decimal(90), Decimal(-90))
    # Isolated: the margin set aside at entry is all it takes, whatever the mark does.
    assert moved["abc:ISO"] == (Decimal(0), Decimal(0))
