"""Feeds: reproducible oracle paths, valid maker quotes, and real oracle/book dislocations
seen by a client through the socket."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.exchange import Exchange
from hip3.sim.feeds import Feeds, valid_px
from hip3.sim.scenario import ScenarioError, load_scenario, parse_scenario

XYZ = ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD")


def _exchange(scenario) -> Exchange:
    return Exchange(
        scenario.universe(), clock_ms=lambda: 1_700_000_000_000, emit=lambda _e: None, seed=1
    )


def _path(seed: int, ticks: int = 40) -> list[tuple[str, str, str]]:
    scenario = load_scenario("default")
    exchange = _exchange(scenario)
    feeds = Feeds(exchange, scenario, seed)
    out = []
    for _ in range(ticks):
        feeds.step()
        for coin in XYZ:
            bid, ask = exchange.bbo(coin)["bbo"]
            out.append((str(exchange.oracle[coin]), bid["px"], ask["px"]))
    return out


def test_same_seed_same_run_and_other_seed_other_run():
    assert _path(11) == _path(11)
    assert _path(11) != _path(12)


@given(
    px=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000000"), places=8),
    sz_decimals=st.integers(min_value=0, max_value=5),
)
def test_valid_px_follows_the_tick_rules(px, sz_decimals):
    for rounding in (ROUND_FLOOR, ROUND_CEILING):
        out = valid_px(px, sz_decimals, rounding)
        decimals = max(0, -out.as_tuple().exponent)
        assert decimals <= 6 - sz_decimals
        if out != out.to_integral_value():
            assert len(out.normalize().as_tuple().digits) <= 5
        if out > 0:
            assert (out <= px) if rounding == ROUND_FLOOR else (out >= px)


def test_maker_books_are_never_crossed_and_use_lots():
    scenario = load_scenario("jumpy")
    exchange = _exchange(scenario)
    feeds = Feeds(exchange, scenario, 5)
    for _ in range(200):
        feeds.step()
        for asset in exchange.universe.assets:
            bid, ask = exchange.bbo(asset.coin)["bbo"]
            assert Decimal(bid["px"]) < Decimal(ask["px"])
            lot = Decimal(1).scaleb(-asset.sz_decimals)
            assert Decimal(bid["sz"]) % lot == 0


async def test_dislocations_reach_a_subscribed_client(sim, connect):
    """Within a bounded number of ticks the oracle leaves the lagging book behind by more
    than 15 bps (beyond taker fees), on several xyz markets, deterministically per seed."""
    client = await connect(sim)
    for coin in XYZ:
        await client.subscribe({"type": "bbo", "coin": coin})
        await client.subscribe({"type": "activeAssetCtx", "coin": coin})
    feeds = Feeds(sim.exchange, sim.scenario, 7)
    oracle: dict[str, Decimal] = {}
    book: dict[str, tuple[Decimal, Decimal]] = {}
    dislocated_ticks = 0
    coins_seen: set[str] = set()
    for _ in range(150):
        feeds.step()
        await client.send({"method": "ping"})
        _, frames = await client.recv_until(lambda f: f["channel"] == "pong")
        for frame in frames:
            data = frame["data"]
            if frame["channel"] == "activeAssetCtx":
                oracle[data["coin"]] = Decimal(data["ctx"]["oraclePx"])
            elif frame["channel"] == "bbo" and None not in data["bbo"]:
                bid, ask = data["bbo"]
                book[data["coin"]] = (Decimal(bid["px"]), Decimal(ask["px"]))
        for coin in XYZ:
            if coin in oracle and coin in book:
                o, (bid, ask) = oracle[coin], book[coin]
                gap_bps = max(o - ask, bid - o) / o * 10_000
                if gap_bps > 15:
                    dislocated_ticks += 1
                    coins_seen.add(coin)
    assert dislocated_ticks >= 5
    assert len(coins_seen) >= 2


def test_scenario_errors_name_the_key():
    with pytest.raises(ScenarioError, match="unknown key"):
        parse_scenario("tick_ms = 100\nspeed = 3\n")
    with pytest.raises(ScenarioError, match=r"\[oracle\] jump_probability must be <= 1"):
        parse_scenario("[oracle]\njump_probability = 2\n")
    with pytest.raises(ScenarioError, match="unknown coin"):
        parse_scenario('[markets."xyz:ZZZ"]\nvolatility_bps = 2\n')
    with pytest.raises(ScenarioError, match="tick_ms must be an integer"):
        parse_scenario("tick_ms = 0\n")
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario("no-such-scenario")


def test_scenario_can_replace_the_markets():
    scenario = parse_scenario(
        """
        [[dexes]]
        name = ""
        assets = [{name = "BTC", sz_decimals = 5, start_px = "60000"}]
        [[dexes]]
        name = "abc"
        assets = [{name = "ONE", sz_decimals = 1, start_px = "12.5"}]
        [markets."abc:ONE"]
        lag_ms = 900
        """
    )
    universe = scenario.universe()
    assert universe.asset("abc:ONE").asset_id == 110000
    assert scenario.params_for("abc:ONE")[1].lag_ms == 900
