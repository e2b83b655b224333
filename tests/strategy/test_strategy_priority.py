"""A strategy's IOC may pay a priority fee: it goes on the wire where "na" goes, exactly as the
built-in entries' rate does, is journaled with the order and counted in the journal's priority
figures; a rate above the `[priority]` cap, on a GTC or an ALO, or not a Decimal is refused
with a reason and a detail, and nothing is sent."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.journal import Journal
from hip3.journal.report import load_summary, render
from tests.runtime.fakes import MARKETS, Harness, order_wires

COIN = "xyz:AAA"


RISK = {"max_notional_per_market_usd": 1000.0, "max_total_notional_usd": 2000.0}


def ready(**overrides) -> Harness:
    h = Harness(**{"risk": RISK, **overrides})
    h.exchange.staking.fund(h.user, Decimal(1_000))
    h.start()
    h.bring_up()
    assert h.d.ready.trading(), h.d.ready.describe()
    return h


def ioc(h: Harness, *, coin: str = COIN, tif: str = "Ioc", **kw):
    """A buy of 1 priced through the ask (it fills at once as an IOC)."""
    px = Decimal(MARKETS[coin].oracle) * Decimal("1.02")
    return h.d.host.submit(coin, is_buy=True, size=Decimal(1), px=px, tif=tif, **kw)


def last_order_action(h: Harness) -> dict:
    (action,) = [
        m["request"]["payload"]["action"]
        for m in h.transport.sent[-1:]
        if m.get("method") == "post" and m["request"]["type"] == "action"
    ]
    return action


def test_an_ioc_with_priority_is_grouped_as_an_entry_is_and_journaled(tmp_path: Path):
    h = ready()
    path = tmp_path / "j.sqlite"
    journal = Journal(path, mode="trading", network="sim")
    h.d.executor.journal = journal
    h.d.recorder.journal = journal  # fills
    done = ioc(h, priority_bps=Decimal("2.5"))
    assert done.ok, done
    action = last_order_action(h)
    assert action["grouping"] == {"p": 25_000}  # 2.5 bps = 25000 / 10^8
    assert [w["c"] for w in action["orders"]] == [done.cloid]
    h.settle()
    assert h.bot_positions() == {COIN: Decimal(1)}
    plain = ioc(h, coin="xyz:BBB", priority_bps=Decimal(0))  # 0 is none: "na"
    assert plain.ok and last_order_action(h)["grouping"] == "na"
    h.settle()
    journal.close()
    rates = dict(sqlite3.connect(path).execute("SELECT cloid, priority_rate FROM orders"))
    assert rates == {done.cloid: 25_000, plain.cloid: None}
    (fill,) = [f for f in h.true_fills() if f.get("cloid") == done.cloid]
    paid = Decimal(fill["px"]) * Decimal(fill["sz"]) * Decimal("0.00025")
    pri = load_summary(path).priority
    assert (pri.strategy_orders, pri.strategy_orders_filled) == (1, 1)
    assert pri.strategy_paid_usd == paid and pri.exits_paid_usd == 0
    assert pri.paid_usd == paid
    text = render(load_summary(path))
    assert (
        f"strategy orders {paid:.6f}" in text and "strategy IOCs with priority: 1, 1 filled" in text
    )


@pytest.mark.parametrize(
    ("overrides", "coin", "bps", "cap"),
    [
        ({}, COIN, Decimal("8.01"), "8"),  # priority.cap_bps, 8 by default
        ({"priority": {"cap_bps": 3.0}}, COIN, Decimal(4), "3"),
        # a market's own cap wins over cap_bps, in both directions
        ({"markets": [{"coin": COIN, "priority_cap_bps": 1.0}]}, COIN, Decimal(2), "1"),
    ],
)
def test_a_rate_above_the_cap_is_refused_with_the_numbers(overrides, coin, bps, cap):
    h = ready(**overrides)
    sent = len(h.transport.sent)
    done = ioc(h, coin=coin, priority_bps=bps)
    assert done.refused == "priority_above_cap" and done.cloid is None
    assert f"{bps} bps" in done.detail and f"cap of {cap} bps" in done.detail, done.detail
    assert len(h.transport.sent) == sent
    assert h.d.executor.blocked["strategy:priority_above_cap"] == 1


def test_a_market_cap_above_cap_bps_allows_more_there():
    h = ready(priority={"cap_bps": 2.0}, markets=[{"coin": COIN, "priority_cap_bps": 10.0}])
    assert ioc(h, priority_bps=Decimal(9)).ok
    assert last_order_action(h)["grouping"] == {"p": 90_000}


@pytest.mark.parametrize("tif", ["Gtc", "Alo"])
def test_priority_on_a_resting_order_is_refused(tif):
    h = ready()
    sent = len(h.transport.sent)
    below = Decimal(MARKETS[COIN].oracle) * Decimal("0.98")
    done = h.d.host.submit(
        COIN, is_buy=True, size=Decimal(1), px=below, tif=tif, priority_bps=Decimal(1)
    )
    assert done.refused == "priority_needs_ioc" and f"on a {tif} order" in done.detail
    assert len(h.transport.sent) == sent
    # the same order without a rate rests
    assert h.d.host.submit(COIN, is_buy=True, size=Decimal(1), px=below, tif=tif).ok
    assert order_wires(h.delivery.requests[-1])[0]["t"] == {"limit": {"tif": tif}}


@pytest.mark.parametrize("bad", [Decimal(-1), Decimal("NaN"), 2.0, 2])
def test_a_rate_that_is_not_a_decimal_at_or_above_zero_is_refused(bad):
    h = ready()
    done = ioc(h, priority_bps=bad)
    assert done.refused == "bad_priority" and repr(bad) in done.detail


def test_without_a_rate_a_reduce_only_ioc_pays_the_exit_rate_as_before():
    h = ready(priority={"exit_bps": 2.0})
    assert ioc(h).ok
    assert last_order_action(h)["grouping"] == "na"  # an opening IOC: none
    h.settle()
    px = Decimal(MARKETS[COIN].oracle) * Decimal("0.98")
    closing = h.d.host.submit(
        COIN, is_buy=False, size=Decimal(1), px=px, tif="Ioc", reduce_only=True
    )
    assert closing.ok and last_order_action(h)["grouping"] == {"p": 20_000}
