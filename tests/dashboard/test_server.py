"""The dashboard's server without a browser: its configuration, its JSON, its token rules.

The dispatcher is the real one, driven against the simulator's exchange core
(`tests/runtime/fakes.py`); requests are real HTTP over loopback, made from a worker thread
while the test's event loop runs, as the bot's loop would.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
from decimal import Decimal

import pytest

from hip3.config import ConfigError, DashboardConfig, is_loopback_host, load_config
from hip3.dashboard import DashboardError, start_dashboard
from hip3.dashboard.history import History, sample_forever
from hip3.dashboard.server import Access, _host_name, _on_loop
from hip3.dashboard.source import MoneySample
from hip3.events import OperatorCommand
from tests.runtime.fakes import Harness

TOKEN = "unit-test-token-abcdefghijkl"


def _plain(x: Decimal) -> str:
    return format(x.normalize(), "f")


async def _request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request from a worker thread, so the loop stays free to take snapshots."""

    def run() -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    return await asyncio.get_running_loop().run_in_executor(None, run)


def _cfg(**kw) -> DashboardConfig:
    return DashboardConfig(enabled=True, port=0, **kw)


@pytest.fixture
def rig():
    """A dispatcher that is up, READY, and holds a position from one filled entry."""
    h = Harness()
    h.bring_up()
    assert h.d.ready.trading()
    h.entry("xyz:AAA")
    h.settle()
    assert h.bot_positions(), "the entry did not fill"
    return h


# --- configuration ----------------------------------------------------------------------------


def test_off_and_loopback_by_default():
    cfg = load_config()
    assert cfg.dashboard.enabled is False
    assert cfg.dashboard.host == "127.0.0.1"
    assert is_loopback_host(cfg.dashboard.host)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.20", False),
        ("::", False),
        ("dashboard.example.org", False),
    ],
)
def test_which_hosts_are_loopback(host, loopback):
    assert is_loopback_host(host) is loopback


def test_a_host_beyond_loopback_without_a_token_is_refused_at_load(monkeypatch):
    monkeypatch.delenv("HIP3_DASHBOARD_TOKEN", raising=False)
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"dashboard": {"enabled": True, "host": "0.0.0.0"}})
    message = str(err.value)
    assert len(err.value.problems) == 1 and "\n" not in err.value.problems[0]
    assert "dashboard.host = '0.0.0.0' is not a loopback address" in message
    assert "HIP3_DASHBOARD_TOKEN" in message
    # off, the same host is not an error: nothing will listen
    load_config(overrides={"dashboard": {"enabled": False, "host": "0.0.0.0"}})
    # with a token it is allowed
    monkeypatch.setenv("HIP3_DASHBOARD_TOKEN", TOKEN)
    cfg = load_config(overrides={"dashboard": {"enabled": True, "host": "0.0.0.0"}})
    assert cfg.dashboard.host == "0.0.0.0"


def test_a_short_token_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("MY_DASH_TOKEN", "short-secret")
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"dashboard": {"enabled": True, "token_env": "MY_DASH_TOKEN"}})
    assert "at least 16" in str(err.value)
    assert "short-secret" not in str(err.value)


def test_a_token_pasted_as_its_variable_name_is_refused():
    pasted = "ab" * 32
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"dashboard": {"token_env": pasted}})
    assert pasted not in str(err.value)
    assert "dashboard.token_env" in str(err.value)


async def test_start_refuses_a_host_beyond_loopback_without_a_token(rig):
    with pytest.raises(DashboardError, match="not loopback"):
        start_dashboard(rig.d, _cfg(host="0.0.0.0"), environ={})


async def test_a_port_in_use_is_one_line_naming_the_setting(rig):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DashboardError) as err:
            start_dashboard(rig.d, DashboardConfig(enabled=True, port=port), environ={})
    text = str(err.value)
    assert f"127.0.0.1:{port}" in text and "[dashboard] port" in text and "\n" not in text


# --- what it serves ---------------------------------------------------------------------------


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(rig):
    server = start_dashboard(rig.d, _cfg(), environ={})
    try:
        status, headers, body = await _request(server.port, "GET", "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b'<script src="/dashboard.js"' in body
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
            status, headers, body = await _request(server.port, "GET", path)
            assert status == 200 and headers["content-type"].startswith(kind) and body
            # nothing fetched from elsewhere, so the page works offline (SVG's namespace is a
            # name, never fetched)
            body = body.replace(b"http://www.w3.org/2000/svg", b"")
            assert b"http://" not in body and b"https://" not in body and b"//cdn" not in body
    finally:
        server.close()


async def test_unknown_paths_are_404_and_buttons_refuse_get(rig):
    server = start_dashboard(rig.d, _cfg(), environ={"HIP3_DASHBOARD_TOKEN": TOKEN})
    try:
        for method, path in (("GET", "/nope"), ("GET", "/api/"), ("POST", "/api/state")):
            status, _, body = await _request(server.port, method, path)
            assert status == 404, (method, path)
            assert json.loads(body)["error"].startswith("not found")
        status, headers, _ = await _request(
            server.port, "GET", "/api/hardstop", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 405 and headers["allow"] == "POST"
        assert not rig.d.inbox  # a GET never acts
    finally:
        server.close()


async def test_state_is_the_dispatchers_state(rig):
    d = rig.d
    server = start_dashboard(d, _cfg(), environ={})
    try:
        status, headers, body = await _request(server.port, "GET", "/api/state")
        assert status == 200 and headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-store"
        s = json.loads(body)
    finally:
        server.close()
    assert set(s) >= {
        "time_ms", "mode", "network", "connection", "hardstop", "dead_mans_switch", "markets",
        "positions", "open_orders", "pnl", "counters", "series", "operator_enabled",
    }  # fmt: skip
    assert s["mode"] == "trading" and s["network"] == "sim"
    assert s["connection"]["state"] == "live" and s["connection"]["ready_trading"] is True
    assert s["connection"]["epoch"] == d.conn.epoch
    assert s["hardstop"] == {"state": "armed", "reasons": []}
    assert s["operator_enabled"] is False
    assert [m["coin"] for m in s["markets"]] == list(d.markets)
    for m in s["markets"]:
        st = d.markets[m["coin"]]
        assert m["ready"] == "yes"
        assert m["bid_px"] == _plain(st.bid_px) and m["ask_px"] == _plain(st.ask_px)
        assert m["oracle_px"] == _plain(st.oracle_px) and m["mark_px"] == _plain(st.mark_px)
        buy = (st.oracle_px - st.ask_px) / st.oracle_px * 10_000
        sell = (st.bid_px - st.oracle_px) / st.oracle_px * 10_000
        assert m["edge_bps"] == round(float(max(buy, sell)), 2)
    held = {c: p for c, p in d.positions.positions.items() if p.size}
    assert [p["coin"] for p in s["positions"]] == list(held)
    for p in s["positions"]:
        pos = held[p["coin"]]
        assert p["size"] == _plain(pos.size) and p["entry_px"] == _plain(pos.entry_px)
        assert p["fees"] == _plain(pos.fees)
    fees = sum((p.fees for p in d.positions.positions.values()), Decimal(0))
    assert Decimal(s["pnl"]["fees"]) == fees > 0
    assert s["counters"]["fills"] == d.positions.fills_applied >= 1
    assert s["counters"]["entries"] == d.executor.entries_sent == 1
    assert s["open_orders"]["count"] == len(d.orders.live_orders())
    assert s["dead_mans_switch"]["enabled"] is False


async def test_series_are_sampled_and_served_since_a_time(rig):
    server = start_dashboard(rig.d, _cfg(), environ={}, sample_interval_s=0.01)
    try:
        for _ in range(200):
            if len(server.history) >= 3:
                break
            rig.clock.advance(1000)  # the fake wall clock moves only when told
            await asyncio.sleep(0.01)
        assert len(server.history) >= 3
        _, _, body = await _request(server.port, "GET", "/api/state?since_ms=0")
        series = json.loads(body)["series"]
        assert len(series) >= 3
        fees = float(sum((p.fees for p in rig.d.positions.positions.values()), Decimal(0)))
        assert series[-1]["fees"] == pytest.approx(fees)
        times = [x["t_ms"] for x in series]
        assert times == sorted(set(times))
        newest = times[-1]
        _, _, body = await _request(server.port, "GET", f"/api/state?since_ms={newest}")
        assert all(x["t_ms"] > newest for x in json.loads(body)["series"])
        status, _, _ = await _request(server.port, "GET", "/api/state?since_ms=-5")
        assert status == 400
    finally:
        server.close()


# --- the operator buttons ---------------------------------------------------------------------


async def test_buttons_need_the_token_and_put_the_operator_command(rig, caplog):
    caplog.set_level(logging.DEBUG)
    d = rig.d
    server = start_dashboard(d, _cfg(), environ={"HIP3_DASHBOARD_TOKEN": TOKEN})
    try:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-wrong-token"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": TOKEN},  # no scheme
            {"Authorization": f"Basic {TOKEN}"},
        ):
            status, _, body = await _request(server.port, "POST", "/api/hardstop", headers)
            assert status == 401, headers
            assert json.loads(body) == {"error": "token required"}
        await asyncio.sleep(0.05)
        assert not d.inbox and d.hardstop.state == "armed"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = await _request(server.port, "POST", "/api/hardstop", auth)
        assert status == 202 and json.loads(body) == {"accepted": "hardstop"}
        status, _, _ = await _request(server.port, "POST", "/api/reset", auth)
        assert status == 202
        await asyncio.sleep(0.05)  # the commands are put on the loop
        assert list(d.inbox) == [
            OperatorCommand("hardstop", "dashboard"),
            OperatorCommand("reset", "dashboard"),
        ]
        # loopback reads need no token
        status, _, body = await _request(server.port, "GET", "/api/state")
        assert status == 200 and json.loads(body)["operator_enabled"] is True
    finally:
        server.close()
    # handled, the first trips the real HardStop
    rig.handle(d.inbox.popleft())
    assert d.hardstop.state != "armed" and d.hardstop.reasons == ["operator: dashboard"]
    assert TOKEN not in caplog.text


async def test_without_a_token_the_buttons_are_off(rig):
    server = start_dashboard(rig.d, _cfg(), environ={})
    try:
        status, _, body = await _request(
            server.port, "POST", "/api/hardstop", {"Authorization": "Bearer anything-at-all-x"}
        )
        assert status == 403 and "no token is configured" in json.loads(body)["error"]
        await asyncio.sleep(0.05)
        assert not rig.d.inbox
    finally:
        server.close()


async def test_after_the_run_the_buttons_say_so(rig):
    server = start_dashboard(rig.d, _cfg(), environ={"HIP3_DASHBOARD_TOKEN": TOKEN})
    try:
        rig.d.finished.set()
        status, _, body = await _request(
            server.port, "POST", "/api/hardstop", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 409 and "finished" in json.loads(body)["error"]
        assert not rig.d.inbox
        _, _, body = await _request(server.port, "GET", "/api/state")
        assert json.loads(body)["finished"] is True
    finally:
        server.close()


async def test_a_foreign_host_header_is_refused(rig):
    """A page elsewhere that rebinds its own name to 127.0.0.1 sends its name as Host."""
    server = start_dashboard(rig.d, _cfg(), environ={"HIP3_DASHBOARD_TOKEN": TOKEN})
    try:
        for method, path in (("GET", "/api/state"), ("POST", "/api/hardstop")):
            status, _, _ = await _request(
                server.port,
                method,
                path,
                {"Host": "evil.example:80", "Authorization": f"Bearer {TOKEN}"},
            )
            assert status == 403, (method, path)
        status, _, _ = await _request(server.port, "GET", "/", {"Host": f"localhost:{server.port}"})
        assert status == 200
        await asyncio.sleep(0.05)
        assert not rig.d.inbox
    finally:
        server.close()


async def test_beyond_loopback_every_read_needs_the_token(rig):
    server = start_dashboard(rig.d, _cfg(host="0.0.0.0"), environ={"HIP3_DASHBOARD_TOKEN": TOKEN})
    try:
        status, _, _ = await _request(server.port, "GET", "/api/state")
        assert status == 401
        status, _, body = await _request(
            server.port, "GET", "/api/state", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200 and json.loads(body)["markets"]
        status, _, _ = await _request(server.port, "GET", "/")  # the page itself holds no data
        assert status == 200
    finally:
        server.close()


async def test_a_snapshot_is_taken_on_the_loop_thread_between_events():
    """The server's threads never read the dispatcher themselves: the read runs on the loop."""
    loop = asyncio.get_running_loop()
    here = threading.get_ident()

    def read() -> int:
        return threading.get_ident()

    ran_on = await loop.run_in_executor(None, _on_loop, loop, read, 2.0)
    assert ran_on == here
    boom = ZeroDivisionError("from the loop")

    def fails() -> None:
        raise boom

    with pytest.raises(ZeroDivisionError):
        await loop.run_in_executor(None, _on_loop, loop, fails, 2.0)


def test_access_and_host_parsing():
    access = Access(TOKEN, reads_need_token=False)
    assert access.allows(f"Bearer {TOKEN}") and access.allows(f"bearer  {TOKEN}")
    assert not access.allows(None) and not access.allows("") and not access.allows("Bearer ")
    assert not Access(None, reads_need_token=False).allows("Bearer ")
    assert _host_name("127.0.0.1:8050") == "127.0.0.1"
    assert _host_name("LOCALHOST") == "localhost"
    assert _host_name("[::1]:8050") == "::1"
    assert _host_name(None) is None


# --- the history ------------------------------------------------------------------------------


def _sample(t: int, fees: float = 0.0) -> MoneySample:
    return MoneySample(t, 0.0, fees, 0.0)


def test_history_is_bounded_and_in_time_order():
    h = History(capacity=3)
    for t in (10, 20, 20, 15, 30, 40):  # a repeated or earlier time is dropped
        h.append(_sample(t))
    assert [s.t_ms for s in h.since(0)] == [20, 30, 40]
    assert [s.t_ms for s in h.since(20)] == [30, 40]
    assert h.since(40) == []
    assert [s.t_ms for s in h.since(5)] == [20, 30, 40]
    with pytest.raises(ValueError):
        History(capacity=0)


def test_money_sample_net_is_realized_less_fees_plus_unrealized():
    s = MoneySample(1, realized=2.0, fees=0.5, unrealized=-0.25)
    assert s.net == 1.25 and s.as_json()["net"] == 1.25


async def test_sampler_notes_renewals_and_stops_with_the_bot():
    h = History()
    times = iter(range(1000, 100000, 1000))
    renewals = iter([0, 0, 1, 1, 2])
    done = iter([False, False, False, False, True])
    await asyncio.wait_for(
        sample_forever(
            h,
            lambda: _sample(next(times)),
            lambda: next(renewals),
            lambda: next(done),
            interval_s=0.001,
        ),
        2,
    )
    assert [s.t_ms for s in h.since(0)] == [1000, 2000, 3000, 4000, 5000]
    assert h.last_renewal_ms == 5000  # the count grew last in the fifth sample
