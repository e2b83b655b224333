"""Priority fees end to end: the real bot over a real socket takes a dislocation paying the
fixed rate, exits paying the exit rate, and the simulator's staking balance, read over HTTP
`info` as any outside client would, went down by exactly what those fills owe."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from hip3.journal.report import load_summary
from hip3.sim.harness import SimHarness

from .support import run_against, wait_for

pytestmark = pytest.mark.e2e

COIN = "xyz:AAA"
MAKER = "0x" + "5a" * 20
# every detector filter off: the dislocation below is a signal on its own
FILTERS_OFF = {
    "direction_filter": False,
    "min_oracle_velocity_bps": 0.0,
    "min_consecutive_oracle_moves": 0,
    "baseline_tracking": False,
}


def info(base_url: str, body: dict) -> object:
    request = urllib.request.Request(
        base_url + "/info",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def hype_owed(usd: Decimal, hype_usd: Decimal) -> Decimal:
    return (usd / hype_usd).quantize(Decimal("1E-8"), rounding=ROUND_CEILING)


async def test_an_entry_with_priority_is_accepted_and_the_staking_balance_pays_it(
    tmp_path: Path,
):
    journal = tmp_path / "j.sqlite"

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0), d.ready.describe()
        oracle = Decimal(sim.exchange.asset_ctx(COIN)["ctx"]["oraclePx"])
        ask = (oracle * Decimal("0.997")).quantize(Decimal("0.001"))  # 30 bps under
        bid = (ask * Decimal("0.9995")).quantize(Decimal("0.001"))
        depth = (Decimal(20_000) / oracle).quantize(Decimal(1))
        sim.exchange.replace_maker_quotes(COIN, MAKER, [(bid, depth)], [(ask, depth)])
        assert await wait_for(lambda: COIN in d.positions.open_coins(), 5.0), d.executor.blocked

    async with SimHarness(seed=5, feeds=False) as sim:
        user = sim.account[0]
        staked = {"type": "delegatorSummary", "user": user}
        before = Decimal((await asyncio.to_thread(info, sim.http_url, staked))["undelegated"])
        summary, _d = await run_against(
            sim,
            duration_s=4,
            during=during,
            markets=[{"coin": COIN}],
            detector=FILTERS_OFF,
            freshness={"max_bbo_age_s": 30.0, "max_ctx_age_s": 30.0},
            priority={"mode": "fixed", "fixed_bps": 8.0, "exit_bps": 2.0},
            shutdown={"flatten_on_exit": True},
            journal={"enabled": True, "path": str(journal)},
        )
        after = Decimal((await asyncio.to_thread(info, sim.http_url, staked))["undelegated"])
        fills = await asyncio.to_thread(info, sim.http_url, {"type": "userFills", "user": user})
        hype_usd = sim.scenario.hype_usd
    assert summary["reconciled"] is True and summary["positions"] == {}, summary
    db = sqlite3.connect(journal)
    orders = dict(db.execute("SELECT cloid, priority_rate FROM orders"))
    purposes = dict(db.execute("SELECT cloid, purpose FROM orders"))
    assert sorted(purposes.values()) == ["entry", "flatten"], purposes
    for cloid, purpose in purposes.items():
        assert orders[cloid] == (80_000 if purpose == "entry" else 20_000)
    # each order pays rate x its filled notional, converted to HYPE and rounded up
    owed = Decimal(0)
    for cloid, rate in orders.items():
        notional = sum(
            (Decimal(f["px"]) * Decimal(f["sz"]) for f in fills if f.get("cloid") == cloid),
            Decimal(0),
        )
        assert notional > 0, (cloid, fills)
        owed += hype_owed(notional * rate / Decimal(100_000_000), hype_usd)
    assert before - after == owed
    # the journal's summary says the same money in USD
    paid = load_summary(journal).priority
    assert paid.with_priority.entry_orders_filled == 1 and paid.without.entry_orders == 0
    assert abs(paid.paid_usd / hype_usd - owed) <= Decimal("2E-8")
