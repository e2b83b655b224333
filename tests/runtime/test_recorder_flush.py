"""When the recorder commits the journal's buffered rows: the live bot on every tick (a crash
loses at most one tick's rows), a backtest once its interval of data has passed (one
transaction per tick was a busy backtest's largest idle cost), and every row at close."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hip3.journal import Journal
from hip3.runtime.recorder import Recorder


def committed_transitions(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM order_transitions").fetchone()[0]
    finally:
        conn.close()


def record_one(rec: Recorder, n: int) -> None:
    rec.transition(f"0x{n:032x}", "created", "sent", "send", wall_ms=1_000 + n)


def tick(rec: Recorder, now_ms: int) -> None:
    rec.tick(now_ms=now_ms, wall_ms=1_000 + now_ms, markets={}, positions=_NoPositions())


class _NoPositions:
    positions: dict = {}


def test_the_live_recorder_commits_on_every_tick(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    journal = Journal(path, mode="trading", network="sim", clock_ms=lambda: 1_000)
    rec = Recorder(journal, observation=False)
    for n, now in enumerate((0, 100, 200)):
        record_one(rec, n)
        tick(rec, now)
        assert journal.pending == 0
        assert committed_transitions(path) == n + 1
    rec.close()


def test_a_backtest_recorder_commits_once_its_interval_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "backtest.sqlite"
    journal = Journal(path, mode="trading", network="backtest", clock_ms=lambda: 1_000)
    rec = Recorder(journal, observation=False, flush_every_ms=1_000)
    record_one(rec, 0)
    tick(rec, 0)  # the first tick commits: the interval counts from there
    assert committed_transitions(path) == 1
    for n, now in enumerate((100, 500, 999), start=1):
        record_one(rec, n)
        tick(rec, now)
        assert journal.pending == n  # buffered, not yet committed
    assert committed_transitions(path) == 1
    tick(rec, 1_000)
    assert journal.pending == 0 and committed_transitions(path) == 4
    record_one(rec, 4)
    tick(rec, 1_100)
    assert journal.pending == 1
    rec.close()  # the stop commits whatever is left
    assert committed_transitions(path) == 5


def test_a_negative_flush_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="flush_every_ms must be >= 0"):
        Recorder(None, observation=False, flush_every_ms=-1)
