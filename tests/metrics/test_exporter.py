"""Metrics over HTTP from a real bot run against the simulator."""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from e2e.support import run_against, wait_for
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from hip3.metrics.exporter import Buckets, LatencyRecorder, start_metrics
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e


def fetch(url: str, accept: str | None = None) -> tuple[int, str, str]:
    """status, content type and body of a GET (an HTTP error status is returned, not raised)."""
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value} for every sample on the page, which must parse as
    both Prometheus text and OpenMetrics with one family per metric name."""
    status, _ctype, text = fetch(url)
    assert status == 200
    assert_valid_page(text)
    status, ctype, om_text = fetch(url, OPENMETRICS)
    assert status == 200 and ctype.startswith("application/openmetrics-text"), ctype
    om_names = [fam.name for fam in openmetrics_families(om_text)]
    assert len(om_names) == len(set(om_names)), "a metric family is repeated on the page"
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "hip3.json"


def assert_valid_page(text: str) -> None:
    """Every metric family has exactly one HELP and one TYPE line, and the page parses."""
    for kind in ("HELP", "TYPE"):
        names = re.findall(rf"^# {kind} (\S+) ", text, flags=re.M)
        repeated = sorted({n for n in names if names.count(n) > 1})
        assert not repeated, f"# {kind} repeated for {repeated}"
    assert list(text_string_to_metric_families(text))


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def series_names(text: str) -> set[str]:
    """Every series name the page declares, including families with no sample yet (a counter
    family declares name_total, a histogram its _bucket, _sum and _count)."""
    names = set()
    for fam in text_string_to_metric_families(text):
        names.update(fam.name + s for s in SUFFIXES.get(fam.type, ("",)))
    return names


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
            base = server.url.removesuffix("/metrics")
            box["readyz"] = await asyncio.to_thread(fetch, base + "/readyz")
            box["page"] = (await asyncio.to_thread(fetch, server.url))[2]
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
    assert box["readyz"][0] == 200  # READY-TRADING held when it was asked
    # process and Python metrics from prometheus-client's own collectors
    for expected in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"):
        assert expected in names, expected
    # the Grafana dashboard asks only for metrics the page serves
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    served = series_names(box["page"])
    for expr in exprs:
        for metric in re.findall(r"\b((?:hip3|process|python)_[a-z0-9_]+)\b", expr):
            assert metric in served, f"dashboard asks for {metric}, not on the page: {expr}"
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
    entries = one(m, "hip3_orders_submitted_total", kind="entry")
    exits = one(m, "hip3_orders_submitted_total", kind="exit")
    assert entries >= 1
    assert entries + exits <= box["submitted"]
    assert one(m, "hip3_signals_total") >= entries
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
            sim,
            duration_s=20,
            until=lambda d: d.positions.fills_applied >= 1,
            shutdown={"flatten_on_exit": False, "cancel_on_exit": True},
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


async def test_health_ready_and_unknown_paths_after_a_run():
    """/healthz answers while the process lives; /readyz is 503 once the run has stopped
    (not READY-TRADING); any other path is 404; the page negotiates its format."""
    async with SimHarness(seed=11) as sim:
        _summary, d = await run_against(sim, duration_s=15, until=lambda d: d.ready.trading())
    server = start_metrics(d, "127.0.0.1", 0)
    base = server.url.removesuffix("/metrics")
    try:
        health = await asyncio.to_thread(fetch, base + "/healthz")
        ready = await asyncio.to_thread(fetch, base + "/readyz")
        missing = await asyncio.to_thread(fetch, base + "/")
        other = await asyncio.to_thread(fetch, base + "/metricsx")
        plain = await asyncio.to_thread(fetch, server.url, "text/plain")
        om = await asyncio.to_thread(fetch, server.url, OPENMETRICS)
    finally:
        server.close()
    assert health[0] == 200
    assert ready[0] == 503
    assert missing[0] == 404 and other[0] == 404
    assert plain[1].startswith("text/plain; version=0.0.4")
    assert om[1].startswith("application/openmetrics-text")
    assert om[2].rstrip().endswith("# EOF")
    assert_valid_page(plain[2])
    families = {fam.name: fam for fam in openmetrics_families(om[2])}
    assert families["hip3_orders_submitted"].type == "counter"
    assert families["hip3_post_latency_seconds"].type == "histogram"
    assert "process_resident_memory_bytes" in families


def test_serves_on_ipv6_loopback_and_names_an_unknown_host():
    class Nothing:
        pass

    server = start_metrics(Nothing(), "::1", 0)
    try:
        assert server.url.startswith("http://[::1]:")
        assert fetch(server.url.removesuffix("/metrics") + "/healthz")[0] == 200
    finally:
        server.close()
    with pytest.raises(OSError, match=r"metrics: cannot listen on no-such-host.invalid:0"):
        start_metrics(Nothing(), "no-such-host.invalid", 0)


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
