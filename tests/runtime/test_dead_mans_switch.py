"""The dead man's switch against the simulator's exchange core, which refuses scheduleCancel
until an account has traded $1M (as the exchange does): below that it is shown unavailable
everywhere and asked again only rarely; `required` refuses to trade without it; above it the
switch is renewed on its interval."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import generate_latest

from hip3.app.summary import build_summary, render
from hip3.config import ConfigError, load_config
from hip3.dashboard.source import BotSource
from hip3.metrics.exporter import build_registry
from hip3.metrics.status import render_status
from tests.runtime.fakes import MARKETS, Harness

DMS = {"enabled": True, "interval_s": 1.0, "lead_s": 10.0}


def _schedule_cancels(h: Harness) -> int:
    return sum(
        1
        for m in h.transport.sent
        if m.get("method") == "post"
        and m["request"].get("type") == "action"
        and m["request"]["payload"]["action"].get("type") == "scheduleCancel"
    )


def _live(*, traded: Decimal | None = None, **dms) -> Harness:
    h = Harness(
        dead_mans_switch={**DMS, **dms},
        exits={"time_stop_s": 600.0, "mark_regression_enabled": False},
    )
    if traded is not None:
        h.exchange.credit_traded_volume(h.user, traded)
    h.bring_up()
    return h


def _seconds_pass(h: Harness, seconds: int) -> None:
    """Seconds pass in steps of one; the oracle ticks each second, so market data flows."""
    for _ in range(seconds):
        h.clock.advance(1000)
        for coin in MARKETS:
            h.exchange.set_oracle(coin, h.oracle[coin])
        h.delivery.publish_market_data()
        h.tick()
        h.settle()


def test_an_account_below_the_volume_gate_has_the_switch_unavailable_and_asks_rarely():
    h = _live()
    d, dms = h.d, h.d.dead_mans_switch
    h.tick()
    h.settle()
    assert dms.state == "unavailable"
    assert "Required: $1000000" in dms.detail
    assert d.counters["dms_unavailable"] == 1
    asked = _schedule_cancels(h)
    _seconds_pass(h, 30)  # interval_s is 1 s: the fast loop would have asked 30 times
    assert _schedule_cancels(h) == asked
    # every view says so, and names the watchdog that can stand in for it
    assert d.ready.trading()  # not required: the bot trades on, and says it is unprotected
    status = render_status(d, h.clock.now_ns())
    assert "dead man's switch unavailable" in status and "hip3 guard" in status
    assert d.ready.describe()["dead_mans_switch"]["state"] == "unavailable"
    summary = build_summary(d, exchange=None, check_error=None)
    assert summary["dead_mans_switch"]["state"] == "unavailable"
    assert "dead_mans_switch: unavailable (dead man's switch unavailable" in render(summary)
    metrics = generate_latest(build_registry(d)).decode()
    assert 'hip3_dead_mans_switch{state="unavailable"} 1.0' in metrics
    shown = BotSource(d).snapshot()["dead_mans_switch"]
    assert shown["state"] == "unavailable" and not shown["renewing"]
    assert shown["detail"].startswith("dead man's switch unavailable")
    # unavailable_retry_s (600 s) after the refusal it is asked once more
    _seconds_pass(h, 600 - 30)
    assert _schedule_cancels(h) == asked + 1
    assert dms.state == "unavailable" and d.counters["dms_unavailable"] == 2


def test_required_refuses_to_trade_until_the_exchange_holds_the_switch():
    h = _live(required=True, unavailable_retry_s=60.0)
    d, dms = h.d, h.d.dead_mans_switch
    assert not d.ready.trading()  # nothing answered yet: not protected
    h.tick()
    h.settle()
    assert dms.state == "unavailable" and not d.ready.trading()
    before = len(h.delivery.requests) + len(h.delivery.executed)
    h.market_moves("xyz:AAA", dislocated="buy")
    h.deliver_lanes("activeAssetCtx:xyz:AAA")
    h.deliver_lanes("bbo:xyz:AAA")
    assert len(h.delivery.requests) + len(h.delivery.executed) == before  # no entry
    assert d.executor.blocked["not_ready"] >= 1
    # the account trades elsewhere past the gate; the next rare retry is accepted
    h.exchange.credit_traded_volume(h.user, Decimal(1_000_000))
    _seconds_pass(h, 60)
    assert dms.state == "active" and d.ready.trading()
    assert h.exchange.scheduled.deadlines.get(h.user) is not None
    assert h.entry()  # entries go out again


def test_an_account_above_the_volume_gate_renews_the_switch_on_its_interval():
    h = _live(traded=Decimal(1_000_000))
    d, dms = h.d, h.d.dead_mans_switch
    h.tick()
    h.settle()
    assert dms.state == "active"
    first = h.exchange.scheduled.deadlines[h.user]
    asked = _schedule_cancels(h)
    _seconds_pass(h, 5)
    assert _schedule_cancels(h) == asked + 5  # every interval_s
    assert h.exchange.scheduled.deadlines[h.user] > first
    assert d.counters["dms_refused"] == 0
    assert "dead man's switch: active" in render_status(d, h.clock.now_ns())


def test_required_needs_the_switch_enabled():

    with pytest.raises(ConfigError, match=r"dead_mans_switch\.required"):
        load_config(overrides={"dead_mans_switch": {"required": True}})
