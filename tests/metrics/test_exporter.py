"""Metrics over HTTP from a real bot run against the simulator (issue 7 item 1)."""

from __future__ import annotations

import asyncio
import math
import urllib.request

import pytest
from e2e.support import run_against, wait_for
from prometheus_client.parser import text_string_to_metric_families

from hip3.metrics.exporter import Buckets, LatencyRecorder, start_metrics
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value} for every sample on the page."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


async def test_scrape_during_a_real_run_shows_the_issue_metrics():
    latency = LatencyRecorder()
    box: dict = {}

    async def during(d, sim):
        server = start_metrics(d, "127.0.0.1", 0, latency=latency)
        box["port"] = server.port
        try:
            assert await wait_for(lambda: d.executor.submitted >= 1, 8.0), "no order sent"
            assert await wait_for(d.ready.trading, 3.0)
            # the integrator's hooks feed these; here the test plays the dispatcher
            latency.observe_post_latency("order", 0.0004)
            latency.observe_post_latency("info:meta:xyz", 0.002)
            latency.observe_pong_rtt(0.0003)
            box["live"] = await asyncio.to_thread(scrape, server.url)
            box["submitted"] = d.executor.submitted
            box["signals"] = d.signals_seen
        finally:
            server.close()

    async with SimHarness(seed=11) as sim:
        _summary, d = await run_against(
            sim,
            duration_s=6,
            during=during,
            shutdown={"flatten_on_exit": False, "cancel_on_exit": True},
        )
        m = box["live"]

    names = set(m)
    for expected in (
        "hip3_connection_state",
        "hip3_epoch",
        "hip3_reconnects_total",
        "hip3_ready_latency_seconds",
        "hip3_pong_rtt_seconds_bucket",
        "hip3_posts_inflight",
        "hip3_post_latency_seconds_bucket",
        "hip3_post_timeouts_total",
        "hip3_orders_submitted_total",
        "hip3_signals_total",
        "hip3_fills_total",
        "hip3_realized_pnl_usd",
        "hip3_hardstop_state",
        "hip3_market_ready",
        "hip3_inbox_depth",
    ):
        assert expected in names, expected
    assert one(m, "hip3_connection_state", state="live") == 1
    assert one(m, "hip3_connection_state", state="backoff") == 0
    epoch = one(m, "hip3_epoch")
    assert epoch >= 1  # a loaded machine may time out a handshake and reconnect: still sane
    assert one(m, "hip3_reconnects_total") <= epoch - 1
    assert 0 < one(m, "hip3_ready_latency_seconds", epoch=str(int(epoch))) < 15
    assert one(m, "hip3_ready_trading") == 1
    assert one(m, "hip3_hardstop_state", state="armed") == 1
    assert sum(m["hip3_hardstop_state"].values()) == 1
    assert 0 <= one(m, "hip3_posts_inflight") <= 100
    assert one(m, "hip3_orders_submitted_total") >= 1
    assert one(m, "hip3_orders_submitted_total") <= box["submitted"]
    assert one(m, "hip3_signals_total") >= one(m, "hip3_orders_submitted_total")
    # every gate block and final order state the dispatcher counted is exported by name
    blocks = {dict(k)["reason"]: v for k, v in m.get("hip3_gate_blocks_total", {}).items()}
    assert all(v >= 1 for v in blocks.values())
    for coin in ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD"):
        assert one(m, "hip3_market_ready", coin=coin) in (0.0, 1.0)
        assert 0 <= one(m, "hip3_market_bbo_age_seconds", coin=coin) < 5
    assert one(m, "hip3_post_latency_seconds_count", kind="order") == 1
    assert one(m, "hip3_post_latency_seconds_bucket", kind="order", le="0.0005") == 1
    assert one(m, "hip3_post_latency_seconds_bucket", kind="order", le="0.00025") == 0
    assert one(m, "hip3_post_latency_seconds_count", kind="info:meta") == 1
    assert one(m, "hip3_pong_rtt_seconds_count") == 1
    assert d.executor.submitted >= box["submitted"]


async def test_positions_and_pnl_follow_the_tracker():
    """After a run that keeps its positions, the exported sizes are the tracker's, exactly."""
    async with SimHarness(seed=11) as sim:
        _summary, d = await run_against(
            sim, duration_s=5, shutdown={"flatten_on_exit": False, "cancel_on_exit": True}
        )
    server = start_metrics(d, "127.0.0.1", 0)
    try:
        m = await asyncio.to_thread(scrape, server.url)
    finally:
        server.close()
    assert one(m, "hip3_fills_total") == d.positions.fills_applied
    for coin, p in d.positions.positions.items():
        assert one(m, "hip3_position_size", coin=coin) == float(p.size)
        assert one(m, "hip3_position_notional_usd", coin=coin) >= 0
    realized = sum(float(p.realized_pnl) for p in d.positions.positions.values())
    assert math.isclose(one(m, "hip3_realized_pnl_usd"), realized, abs_tol=1e-9)
    final = {dict(k)["state"]: v for k, v in m.get("hip3_orders_final_total", {}).items()}
    assert final == {s: float(n) for s, n in d.orders.final_counts.items()}


def test_port_in_use_is_a_clear_error():
    class Nothing:
        pass

    first = start_metrics(Nothing(), "127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match=rf"metrics: cannot listen on 127.0.0.1:{first.port}"):
            start_metrics(Nothing(), "127.0.0.1", first.port)
    finally:
        first.close()


def test_buckets_are_cumulative_and_reject_bad_readings():
    b = Buckets((0.001, 0.01))
    for v in (0.0005, 0.001, 0.005, 3.0):
        b.observe(v)
    assert b.cumulative() == [("0.001", 2), ("0.01", 3), ("+Inf", 4)]
    assert b.count == 4
    assert math.isclose(b.sum, 3.0065)
    rec = LatencyRecorder()
    rec.observe_post_latency("order", float("nan"))
    rec.observe_pong_rtt(-1.0)
    assert rec.rejected_observations == 2
    assert rec.posts == {}
    with pytest.raises(ValueError, match="at least one bucket"):
        Buckets(())
