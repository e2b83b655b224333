"""The strategy at the system level: observation journals signals with follow-ups; trading exits
through the time stop and mark regression without duplicate flatten orders; a killed and
restarted bot keeps its journal consistent."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hip3.journal.report import load_summary
from hip3.sim.harness import SimHarness

from .support import run_against, wait_for

pytestmark = pytest.mark.e2e


async def test_observation_journals_signals_with_followups(tmp_path: Path):
    path = tmp_path / "journal.sqlite"

    async def during(d, sim):
        assert await wait_for(lambda: d.signals_seen >= 1, 10.0)
        await asyncio.sleep(1.2)  # the first signal's follow-up is due 1 s after it

    async with SimHarness(seed=7) as sim:
        summary, _d = await run_against(
            sim,
            duration_s=15,
            during=during,
            mode="observation",
            journal={"enabled": True, "path": str(path)},
        )
    assert summary["orders_submitted"] == 0
    assert summary["signals"] >= 1, summary
    db = sqlite3.connect(path)
    signals = db.execute("SELECT COUNT(*), MIN(outcome), MAX(outcome) FROM signals").fetchone()
    assert signals[0] == summary["signals"]
    assert signals[1] == signals[2] == "observation"
    offsets = {row[0] for row in db.execute("SELECT DISTINCT offset_s FROM signal_followups")}
    assert offsets & {1.0, 3.0}, offsets  # signals early enough in the run got their follow-ups
    assert load_summary(path) is not None


async def test_exits_time_stop_and_mark_regression_never_two_flatten_orders():
    worst: Counter[str] = Counter()

    async def during(d, sim):
        while not d.finished.is_set():
            live = Counter(i.coin for i, _m in d.orders.live_orders() if i.purpose == "flatten")
            for coin, n in live.items():
                worst[coin] = max(worst[coin], n)
            await asyncio.sleep(0.005)

    def exits_seen(d) -> int:
        return sum(v for k, v in d.counters.items() if k.startswith("exit:"))

    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=15,
            during=during,  # watches through the stop's flatten too
            until=lambda d: exits_seen(d) >= 2,
            exits={"time_stop_s": 1.5, "min_hold_s": 0.3},
            shutdown={"flatten_on_exit": True},
        )
    exits = {k: v for k, v in d.counters.items() if k.startswith("exit:")}
    assert exits, (summary, dict(d.counters))
    assert sum(exits.values()) >= 2
    assert all(n <= 1 for n in worst.values()), worst
    assert summary["positions"] == {} and summary["reconciled"] is True


def test_killed_and_restarted_bot_keeps_journal_consistent(tmp_path: Path):
    path = tmp_path / "journal.sqlite"
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[journal]\npath = "{path}"\n')
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hip3", "bot", "--config", str(cfg), "--log-level", "WARNING"]
    deadline = 60
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            if path.exists():
                with sqlite3.connect(path) as db:
                    try:
                        n = db.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
                    except sqlite3.OperationalError:
                        n = 0
                if n >= 3:
                    break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        first = db.execute("SELECT COUNT(*), MAX(id) FROM signals").fetchone()
    assert first[0] >= 3
    # the restarted bot appends a new session and its signal ids continue; once it has
    # journaled a signal of its own, the operator's graceful stop (SIGTERM) ends it
    again = subprocess.Popen(
        [*cmd, "--duration", "60"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        start = time.monotonic()
        while time.monotonic() - start < deadline and again.poll() is None:
            with sqlite3.connect(path) as db:
                sessions = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
                newer = db.execute(
                    "SELECT COUNT(*) FROM signals WHERE id > ?", (first[1],)
                ).fetchone()[0]
            if sessions == 2 and newer >= 1:
                break
            time.sleep(0.1)
        again.send_signal(signal.SIGTERM)
        _out, err = again.communicate(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert again.returncode == 0, err[-2000:]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sessions = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        later = db.execute("SELECT MIN(id) FROM signals WHERE id > ?", (first[1],)).fetchone()[0]
        total = db.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
    assert sessions == 2
    assert total >= first[0]
    assert later is None or later > first[1]


async def test_open_interest_cap_closes_the_market_gate():
    """Discovery polls perpsAtOpenInterestCap; a capped coin's gate blocks, an uncapped one
    opens again."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        assert not d.gates["xyz:AAA"].oi_capped
        sim.exchange.oi_capped = {"xyz:AAA"}
        d.reconciler.oi_next_ms = 0  # ask now rather than in 30 s
        assert await wait_for(lambda: d.gates["xyz:AAA"].oi_capped, 3.0)
        assert not d.gates["xyz:BBB"].oi_capped
        sim.exchange.oi_capped = set()
        d.reconciler.oi_next_ms = 0
        assert await wait_for(lambda: not d.gates["xyz:AAA"].oi_capped, 3.0)

    async with SimHarness(seed=3, feeds=False) as sim:
        _summary, d = await run_against(sim, duration_s=4, during=during)
    assert d.counters["oi_cap_query_failed"] == 0


async def test_a_market_that_does_not_exist_stops_the_start_naming_it():
    async with SimHarness(seed=3, feeds=False) as sim:
        loop = asyncio.get_running_loop()
        started = loop.time()
        summary, d = await run_against(
            sim, duration_s=30, markets=[{"coin": "xyz:AAA"}, {"coin": "xyz:NOPE"}]
        )
        assert loop.time() - started < 15  # stopped at once, not at the end of the duration
    assert summary["fatal"] is not None and "xyz:NOPE" in summary["fatal"]
    assert d.executor.submitted == 0
