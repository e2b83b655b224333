"""The live status view: rendered from a real run's dispatcher."""

from __future__ import annotations

import asyncio
import io
import time
from decimal import Decimal

import pytest
from e2e.support import run_against

from hip3.metrics.status import edge_bps, render_status, run_status
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plain(x: Decimal) -> str:
    return format(x.normalize(), "f")


async def test_render_and_redraw_with_real_numbers():
    async with SimHarness(seed=11) as sim:
        _summary, d = await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.positions.fills_applied >= 1,
            shutdown={"flatten_on_exit": False, "cancel_on_exit": True},
        )
    now = time.perf_counter_ns()
    text = render_status(d, now)
    lines = text.splitlines()
    assert lines[0].startswith(f"hip3 trading  epoch {d.conn.epoch} {d.conn.state}")
    assert f"HardStop {d.hardstop.state}" in lines[0]
    for coin, st in d.markets.items():
        row = next(line for line in lines if line.startswith(coin + " "))
        assert f"{_plain(st.bid_px)} x {_plain(st.bid_sz)}" in row
        assert f"{_plain(st.ask_px)} x {_plain(st.ask_sz)}" in row
        assert _plain(st.oracle_px) in row
        e, side = edge_bps(st)
        assert f"{e:+.1f} {side}" in row
        # the edge is the larger of the two sides' dislocations, computed exactly
        buy = (st.oracle_px - st.ask_px) / st.oracle_px * 10_000
        sell = (st.bid_px - st.oracle_px) / st.oracle_px * 10_000
        assert e == max(buy, sell)
    open_positions = {c: p for c, p in d.positions.positions.items() if p.size}
    if open_positions:
        start = next(i for i, line in enumerate(lines) if line.startswith("POSITION "))
        section = lines[start + 1 : start + 1 + len(open_positions)]
        for (coin, p), row in zip(open_positions.items(), section, strict=True):
            assert row.startswith(coin + " ")
            assert f"{p.size:+f}" in row and _plain(p.entry_px) in row
    else:
        assert "POSITIONS  none" in lines
    assert f"signals {d.signals_seen}  submitted {d.executor.submitted}" in text
    for reason, n in d.executor.blocked.items():
        assert f"{reason} {n}" in text

    tty, pipe = Tty(), io.StringIO()
    d.finished.clear()  # pretend it is still running for the redraw loop
    task = asyncio.create_task(run_status(d, tty, interval_s=0.01))
    await run_status(d, pipe)  # not a terminal: returns at once, writes nothing
    await asyncio.sleep(0.1)
    d.finished.set()
    await asyncio.wait_for(task, 2)
    assert pipe.getvalue() == ""
    frames = tty.getvalue().split("\x1b[H\x1b[2J")
    assert len(frames) >= 3  # "" before the first escape, then at least two redraws
    assert frames[1].splitlines()[0].startswith("hip3 trading")


def test_edge_without_oracle_or_book_is_none():
    from hip3.market.state import MarketState

    st = MarketState("xyz:AAA")
    assert edge_bps(st) is None
    st.on_ctx("100", "100", None, "0", "0", 1)
    assert edge_bps(st) is None
    st.on_bbo(1, ("99.9", "1"), ("100.2", "2"), 2, wall_ms=1)
    assert edge_bps(st) == (Decimal("-10.0"), "sell")
    st.on_bbo(2, ("99.9", "1"), ("99.7", "2"), 3, wall_ms=2)
    assert edge_bps(st) == (Decimal("30"), "buy")


async def test_the_view_says_why_it_is_not_connected(unused_tcp_port):
    """Against a port where nothing listens the view shows the last connection error, not
    only the connection state `backoff`."""
    from hip3.app.bot import run_bot
    from hip3.config import load_config

    url = f"ws://127.0.0.1:{unused_tcp_port}/ws"
    cfg = load_config(
        overrides={
            "network": "sim",
            "ws_url": url,
            "mode": "observation",
            "journal": {"enabled": False},
            "websocket": {"backoff_min_s": 0.2, "backoff_max_s": 0.4},
        }
    )
    tty = Tty()
    summary = await run_bot(cfg, duration_s=2.0, install_signals=False, status_stream=tty)
    assert summary["never_ready"] and url in summary["never_ready"]
    assert "last connection error: connect failed: ConnectionRefusedError" in tty.getvalue()
