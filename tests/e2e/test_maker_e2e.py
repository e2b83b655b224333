"""The example ALO maker (examples/maker.py) through the real bot against the simulator over a
real socket: its quotes rest, are modified when the oracle moves, skew with inventory, are
cancelled when the oracle goes stale, and a clean stop leaves no order open."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.sim.harness import SimHarness

from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e

MAKER = str(Path(__file__).resolve().parents[2] / "examples" / "maker.py") + ":AloMaker"
COIN = "xyz:AAA"


def _quotes(sim: SimHarness) -> dict[str, Decimal]:
    """Our resting orders on the exchange: side ('B'/'A') -> limit price."""
    out = {}
    for o in sim.exchange.open_orders(sim.account[0]):
        if o["coin"] == COIN:
            out[o["side"]] = Decimal(str(o["limitPx"]))
    return out


async def test_alo_maker_rests_modifies_skews_and_cancels_on_a_stale_oracle():
    seen: dict[str, object] = {}
    oracle = {"px": Decimal(25)}
    refreshing = {"on": True}

    async def refresh(sim: SimHarness) -> None:
        # without the feeds the oracle stays fresh only while someone sets it
        while True:
            if refreshing["on"]:
                sim.exchange.set_oracle(COIN, oracle["px"])
            await asyncio.sleep(0.2)

    async def during(d, sim):
        feeder = asyncio.create_task(refresh(sim))
        try:
            # a book of someone else's quotes around the oracle, wide of ours
            sim.exchange.replace_maker_quotes(
                COIN,
                "0x" + "11" * 20,
                [(Decimal("24.5"), Decimal(50))],
                [(Decimal("25.5"), Decimal(50))],
            )
            assert await wait_for(lambda: len(_quotes(sim)) == 2, 10.0), _quotes(sim)
            first = _quotes(sim)
            assert first["B"] < 25 < first["A"]
            seen["first"] = first
            cloids = {i.cloid for i, _m in d.orders.live_orders() if i.purpose == "strategy"}

            # the oracle moves 1%: both quotes follow by modify (new orders, old ones cancelled)
            oracle["px"] = Decimal("25.25")
            assert await wait_for(
                lambda: len(q := _quotes(sim)) == 2 and q["B"] > first["B"] and q["A"] > first["A"],
                5.0,
            ), _quotes(sim)
            ended = d.orders.terminal_states()
            assert all(ended.get(c) == "cancelled" for c in cloids), (cloids, ended)

            # someone sells into our bid: we are long, and both quotes lean lower
            bid = _quotes(sim)["B"]
            sim.exchange.replace_maker_quotes(COIN, "0x" + "22" * 20, [], [(bid, Decimal(1))])
            assert await wait_for(lambda: d.positions.size(COIN) > 0, 5.0)
            px = oracle["px"]
            assert await wait_for(
                lambda: (
                    len(q := _quotes(sim)) == 2 and (px - q["B"]) > (q["A"] - px) + Decimal("0.02")
                ),
                5.0,
            ), (_quotes(sim), d.positions.size(COIN))
            seen["skewed"] = _quotes(sim)

            # the oracle goes quiet: every quote is cancelled
            refreshing["on"] = False
            assert await wait_for(lambda: not _quotes(sim), 6.0), _quotes(sim)
            seen["stale_cancelled"] = True
        finally:
            feeder.cancel()

    async with SimHarness(seed=5, feeds=False) as sim:
        summary, _d = await run_against(
            sim,
            duration_s=14,
            during=during,
            markets=[{"coin": COIN}],
            freshness={"max_ctx_age_s": 1.0, "max_bbo_age_s": 60.0},
            strategy={"name": MAKER, "params": {"coin": COIN, "size": 1}},
            shutdown={"flatten_on_exit": False},
        )
        assert sim.exchange.open_orders(sim.account[0]) == []  # the stop cancelled everything
        truth = truth_positions(sim)
    assert seen.get("stale_cancelled") is True, seen
    # the position the fill made is tracked exactly as the exchange holds it
    tracked = {c: Decimal(s) for c, s in summary["positions"].items()}
    assert tracked == truth == {COIN: Decimal(1)}, (summary, truth)
    assert summary["reconciled"] is True, summary
