"""Competing takers race a client for the same stale quote, through the same blocks.

The client is a plain websocket client; the competitor lives inside the simulator and sends
signed IOCs through the same gateway. Which of them fills is decided by the mempool:
reaction time plus the wait that priority buys back (360 ms without, 0 at 8 bps), then fee.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from hip3.sim.competitors import CompetitorParams, Signer, find_opportunity
from hip3.sim.harness import SimHarness
from hip3.sim.latency import LatencySpec
from hip3.sim.scenario import load_scenario
from hip3.sim.signatures import L1Verifier, action_hash
from hip3.sim.timing import TimingConfig
from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book, statuses

TIMING = TimingConfig(latency=LatencySpec(0, 0))


async def _race(
    make_sim: Callable[..., Awaitable[SimHarness]],
    competitor: CompetitorParams,
    bot_rate: int,
) -> tuple[dict, SimHarness]:
    scenario = replace(load_scenario("default"), competitors=(competitor,))
    sim = await make_sim(scenario=scenario, timing=TIMING)
    exchange = sim.exchange
    exchange.set_oracle("xyz:AAA", Decimal("25.1"))
    seed_book(exchange, "xyz:AAA", [("20", "1")], [("25.1", "4")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as bot:
        await bot.info({"type": "meta"})  # connected and served: the race starts now
        exchange.set_oracle("xyz:AAA", Decimal("26"))  # the ask is now 3.5 % under the oracle
        action = {
            "type": "order",
            "orders": [limit_order(AAA, True, "25.1", "4", "Ioc")],
            "grouping": {"p": bot_rate} if bot_rate else "na",
        }
        [status] = statuses(await bot.action(action))
        taker = sim.competitors.competitors[0]  # type: ignore[union-attr]
        fills = await bot.info({"type": "userFills", "user": taker.address})
    return {"bot": status, "competitor_fills": fills}, sim


@pytest.mark.parametrize(
    ("reaction_ms", "competitor_bps", "bot_rate", "bot_wins"),
    [
        (30, 0, 80_000, True),  # the bot's 8 bps beat an equally quick competitor paying none
        (30, 8, 0, False),  # ... and a competitor's 8 bps beat a bot paying none
        (100, 0, 40_000, True),  # slower and poorer: 460 ms against the bot's 180 ms
        (0, 20, 40_000, False),  # faster and richer
    ],
)
async def test_priority_and_reaction_decide_who_takes_the_stale_quote(
    make_sim: Callable[..., Awaitable[SimHarness]],
    reaction_ms: int,
    competitor_bps: int,
    bot_rate: int,
    bot_wins: bool,
) -> None:
    params = CompetitorParams(
        name="rival",
        reaction_ms=reaction_ms,
        priority_bps=Decimal(competitor_bps),
        notional_usd=Decimal(200),
    )
    result, sim = await _race(make_sim, params, bot_rate)
    competitor_fills = result["competitor_fills"]
    if bot_wins:
        assert result["bot"]["filled"]["totalSz"] == "4"
        assert competitor_fills == []
    else:
        assert "could not immediately match" in result["bot"]["error"]
        assert sum(Decimal(f["sz"]) for f in competitor_fills) == 4
        assert all(f["side"] == "B" and f["px"] == "25.1" for f in competitor_fills)
    taker = sim.competitors.competitors[0]  # type: ignore[union-attr]
    assert taker.sent >= 1


async def test_a_competitor_pays_its_priority_from_staking(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    params = CompetitorParams(reaction_ms=0, priority_bps=Decimal(20), notional_usd=Decimal(200))
    _, sim = await _race(make_sim, params, 0)
    taker = sim.competitors.competitors[0]  # type: ignore[union-attr]
    # 4 x 25.1 = 100.4 USDC at 20 bps = 0.2008 USDC = 0.00502 HYPE, burned.
    assert sim.exchange.staking.burned == Decimal("0.00502")
    assert taker.filled == 1


def test_opportunities_need_the_edge_and_take_up_to_it() -> None:
    asset = load_scenario("default").universe().by_coin["xyz:AAA"]
    params = CompetitorParams(min_edge_bps=Decimal(10), notional_usd=Decimal(1000))
    oracle = Decimal(26)
    buy = find_opportunity(asset, oracle, Decimal(20), Decimal("25.97"), params)
    assert buy is not None and buy.is_buy and buy.limit_px == Decimal("25.974")
    assert buy.size == Decimal("38.50")  # 1000 USDC at the limit (999.999), down to the lot
    assert find_opportunity(asset, oracle, Decimal(20), Decimal("25.98"), params) is None
    sell = find_opportunity(asset, oracle, Decimal("26.03"), None, params)
    assert sell is not None and not sell.is_buy and sell.limit_px == Decimal("26.026")
    assert find_opportunity(asset, oracle, None, None, params) is None


def test_a_competitors_signature_recovers_to_its_account() -> None:
    key = "0x" + "11" * 32
    signer = Signer(key, "b")
    action = {"type": "noop"}
    payload = signer.sign(action, 1_700_000_000_000)
    again = signer.sign(action, 1_700_000_000_000)
    assert again["nonce"] == payload["nonce"] + 1  # never a duplicate nonce
    recovered = L1Verifier("b").recover(
        action_hash(action, payload["nonce"], None, None), payload["signature"]
    )
    from eth_account import Account

    assert recovered == Account.from_key(key).address.lower()
