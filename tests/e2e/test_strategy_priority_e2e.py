"""A strategy's IOC with a priority fee, end to end: the real bot over a real socket runs a
strategy that buys a cheap ask with `Context.submit(..., priority_bps=...)`; the simulator's
staking balance, read over HTTP `info` as any outside client would, went down by exactly what
that fill owes at that rate, the journal row carries the rate, and `hip3 journal`'s figures
count it as a strategy order's priority."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.journal.report import load_summary
from hip3.sim.harness import SimHarness
from hip3.strategy.api import Bbo, Strategy

from .support import run_against, wait_for
from .test_priority_e2e import MAKER, hype_owed, info

pytestmark = pytest.mark.e2e

COIN = "xyz:AAA"


@dataclass(frozen=True)
class CheapAskParams:
    coin: str
    priority_bps: Decimal
    notional: Decimal = Decimal(50)
    below_oracle_bps: Decimal = Decimal(20)


class CheapAskBuyer(Strategy):
    """Buys, once, an ask that sits `below_oracle_bps` under the oracle, with an IOC paying
    `priority_bps`."""

    Params = CheapAskParams

    def __init__(self, ctx, params: CheapAskParams) -> None:
        super().__init__(ctx, params)
        self.sent = False

    def on_bbo(self, bbo: Bbo) -> None:
        p, ctx = self.params, self.ctx
        oracle = ctx.market(p.coin).oracle_px
        if self.sent or bbo.coin != p.coin or bbo.ask_px is None or oracle is None:
            return
        if bbo.ask_px <= oracle * (1 - p.below_oracle_bps / 10_000) and ctx.is_trading(p.coin):
            size = (p.notional / bbo.ask_px).quantize(Decimal("0.01"))
            done = ctx.submit(
                p.coin, is_buy=True, size=size, px=bbo.ask_px, tif="Ioc",
                priority_bps=p.priority_bps,
            )  # fmt: skip
            self.sent = done.ok


async def test_a_strategy_ioc_with_priority_is_charged_by_the_simulator(tmp_path: Path):
    journal = tmp_path / "j.sqlite"

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0), d.ready.describe()
        oracle = Decimal(sim.exchange.asset_ctx(COIN)["ctx"]["oraclePx"])
        ask = (oracle * Decimal("0.997")).quantize(Decimal("0.001"))  # 30 bps under
        bid = (ask * Decimal("0.9995")).quantize(Decimal("0.001"))
        sim.exchange.replace_maker_quotes(COIN, MAKER, [(bid, Decimal(100))], [(ask, Decimal(100))])
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
            strategy={
                "name": f"{__name__}:CheapAskBuyer",
                "params": {"coin": COIN, "priority_bps": "3.5"},
            },
            freshness={"max_bbo_age_s": 30.0, "max_ctx_age_s": 30.0},
            shutdown={"flatten_on_exit": True},  # the flatten pays no priority (exit_bps 0)
            journal={"enabled": True, "path": str(journal)},
        )
        after = Decimal((await asyncio.to_thread(info, sim.http_url, staked))["undelegated"])
        fills = await asyncio.to_thread(info, sim.http_url, {"type": "userFills", "user": user})
        hype_usd = sim.scenario.hype_usd
    assert summary["reconciled"] is True and summary["positions"] == {}, summary
    assert summary["strategy_orders_submitted"] == 1, summary
    db = sqlite3.connect(journal)
    rows = db.execute("SELECT cloid, purpose, priority_rate FROM orders ORDER BY id").fetchall()
    assert [(purpose, rate) for _c, purpose, rate in rows] == [
        ("strategy", 35_000),
        ("flatten", None),
    ], rows
    cloid = rows[0][0]
    notional = sum(
        (Decimal(f["px"]) * Decimal(f["sz"]) for f in fills if f.get("cloid") == cloid),
        Decimal(0),
    )
    assert notional > 0, fills
    owed = hype_owed(notional * Decimal("0.00035"), hype_usd)
    assert before - after == owed > 0
    paid = load_summary(journal).priority
    assert (paid.strategy_orders, paid.strategy_orders_filled) == (1, 1)
    assert paid.with_priority.entry_orders == 0 and paid.exits_paid_usd == 0
    assert abs(paid.strategy_paid_usd / hype_usd - owed) <= Decimal("2E-8")
