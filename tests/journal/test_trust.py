"""A journal worth trusting: Unix times in every table (old journals migrated), rejection texts
recorded, killed sessions closed by the next bot, and `hip3 journal` reading without writing
and refusing a damaged file."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e.support import run_against

from hip3.cli import main
from hip3.journal import Journal
from hip3.journal.report import load_summary, render
from hip3.journal.store import SCHEMA_VERSION
from hip3.sim.harness import SimHarness

# A version 1 journal, as hip3 wrote it before orders were stamped with Unix time: the same
# tables without `rejections` and without `sessions.end_reason`.
V1_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, started_ms INTEGER NOT NULL, ended_ms INTEGER,
    pid INTEGER NOT NULL, mode TEXT, network TEXT, label TEXT) STRICT;
CREATE TABLE signals (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    coin TEXT NOT NULL, is_buy INTEGER NOT NULL, ref_px TEXT NOT NULL, oracle_px TEXT,
    mark_px TEXT, bid_px TEXT, ask_px TEXT, edge_bps REAL NOT NULL, size TEXT NOT NULL,
    outcome TEXT NOT NULL) STRICT;
CREATE TABLE signal_followups (id INTEGER PRIMARY KEY, signal_id INTEGER NOT NULL,
    offset_s REAL NOT NULL, ts_ms INTEGER NOT NULL, bid_px TEXT, ask_px TEXT, oracle_px TEXT,
    mark_px TEXT) STRICT;
CREATE TABLE orders (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    cloid TEXT NOT NULL, coin TEXT NOT NULL, is_buy INTEGER NOT NULL, px TEXT NOT NULL,
    sz TEXT NOT NULL, reduce_only INTEGER NOT NULL, purpose TEXT NOT NULL) STRICT;
CREATE TABLE order_transitions (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, cloid TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
    event TEXT NOT NULL, detail TEXT NOT NULL) STRICT;
CREATE TABLE fills (tid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    coin TEXT NOT NULL, is_buy INTEGER NOT NULL, px TEXT NOT NULL, sz TEXT NOT NULL,
    fee TEXT NOT NULL, closed_pnl TEXT NOT NULL, oid INTEGER, cloid TEXT,
    snapshot INTEGER NOT NULL) STRICT;
CREATE TABLE position_snapshots (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, n_positions INTEGER NOT NULL) STRICT;
CREATE TABLE positions (snapshot_id INTEGER NOT NULL, coin TEXT NOT NULL, size TEXT NOT NULL,
    entry_px TEXT NOT NULL, PRIMARY KEY (snapshot_id, coin)) STRICT;
CREATE TABLE hardstops (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL) STRICT;
"""

STARTED = 1_767_000_000_000  # a Unix ms start; the monotonic order stamp below is far from it
MONOTONIC_STAMP = 52_345_678


def write_v1(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute(
        "INSERT INTO sessions VALUES ('old', ?, NULL, 1, 'trading', 'sim', NULL)", (STARTED,)
    )
    db.execute(
        "INSERT INTO orders (session_id, ts_ms, cloid, coin, is_buy, px, sz, reduce_only,"
        " purpose) VALUES ('old', ?, 'c1', 'xyz:AAA', 1, '10', '1', 0, 'entry')",
        (MONOTONIC_STAMP,),
    )
    db.execute(
        "INSERT INTO orders (session_id, ts_ms, cloid, coin, is_buy, px, sz, reduce_only,"
        " purpose) VALUES ('old', ?, 'c2', 'xyz:AAA', 0, '10', '1', 1, 'flatten')",
        (MONOTONIC_STAMP + 5,),
    )
    for ts, src, dst in ((STARTED + 900, "created", "sent"), (STARTED + 1400, "sent", "filled")):
        db.execute(
            "INSERT INTO order_transitions (session_id, ts_ms, cloid, source, target, event,"
            " detail) VALUES ('old', ?, 'c1', ?, ?, 'e', '')",
            (ts, src, dst),
        )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_a_version_1_journal_reads_and_is_migrated_by_the_next_writer(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    write_v1(path)
    # a reader accepts it as it is, and changes nothing
    summary = load_summary(path)
    assert summary.schema_version == 1 and summary.integrity == "ok"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    # the next bot migrates it: orders take their first transition's Unix time (or the
    # session start), the killed session is closed at its last row
    Journal(path, mode="trading", network="sim").close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    # and the orders of version 1 paid no priority fee
    assert db.execute("SELECT DISTINCT priority_rate FROM orders").fetchall() == [(None,)]
    assert dict(db.execute("SELECT cloid, ts_ms FROM orders WHERE session_id = 'old'")) == {
        "c1": STARTED + 900,
        "c2": STARTED,
    }
    assert db.execute("SELECT ended_ms, end_reason FROM sessions WHERE id = 'old'").fetchone() == (
        STARTED + 1400,
        "killed",
    )


def test_a_killed_session_is_closed_by_the_next_bot(tmp_path: Path):
    """A bot killed with SIGKILL leaves its session open; the next writer ends it at its last
    journaled row and marks it killed; `hip3 journal` says so."""
    path = tmp_path / "j.sqlite"
    last_row_ms = time.time_ns() // 1_000_000 + 60_000  # after the session's start
    script = (
        "import os, signal\n"
        "from hip3.journal import Journal\n"
        f"j = Journal({str(path)!r}, mode='trading', network='sim')\n"
        f"j.hardstop(ts_ms={last_row_ms}, state='tripped', reason='loss limit')\n"
        "j.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    db = sqlite3.connect(path)
    assert db.execute("SELECT ended_ms FROM sessions").fetchall() == [(None,)]
    db.close()
    Journal(path, mode="trading", network="sim").close()
    db = sqlite3.connect(path)
    rows = db.execute("SELECT ended_ms, end_reason FROM sessions ORDER BY rowid").fetchall()
    assert rows[0] == (last_row_ms, "killed")
    assert rows[1][1] == "closed" and rows[1][0] is not None
    assert "(killed)" in render(load_summary(path))


def test_hip3_journal_reads_without_leaving_files_and_checks_integrity(tmp_path: Path, capsys):
    path = tmp_path / "j.sqlite"
    with Journal(path, mode="trading", network="sim") as j:
        j.order(cloid="c1", coin="xyz:AAA", is_buy=True, px="10", sz="1", reduce_only=False,
                purpose="entry")  # fmt: skip
    before = sorted(p.name for p in tmp_path.iterdir())
    content = path.read_bytes()
    assert main(["journal", str(path)]) == 0
    out = capsys.readouterr().out
    assert "integrity: ok (PRAGMA integrity_check)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal, no -shm
    assert path.read_bytes() == content


def test_hip3_journal_refuses_a_damaged_file(tmp_path: Path, capsys):
    path = tmp_path / "j.sqlite"
    with Journal(path, mode="trading", network="sim") as j:
        for i in range(400):  # several pages of rows and index entries
            j.order(cloid=f"0x{i:032x}", coin="xyz:AAA", is_buy=True, px="10", sz="1",
                    reduce_only=False, purpose="entry")  # fmt: skip
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    assert pages > 6
    raw = bytearray(path.read_bytes())
    # scramble the cells (not the header) of a page in the middle: the file still opens and
    # the schema still reads, but the b-tree under it is damaged
    start = (pages - 2) * page_size + 16
    raw[start : start + page_size - 32] = bytes((i * 37) % 251 for i in range(page_size - 32))
    path.write_bytes(bytes(raw))
    assert main(["journal", str(path)]) == 3
    err = capsys.readouterr().err
    assert "integrity check failed" in err and str(path) in err


@pytest.mark.e2e
async def test_a_bot_run_journals_unix_order_times_and_rejection_texts(tmp_path: Path, caplog):
    path = tmp_path / "journal.sqlite"
    caplog.set_level(logging.INFO, logger="hip3")
    before_ms = time.time_ns() // 1_000_000
    async with SimHarness(seed=11, faults="reject_next=2") as sim:
        # the two rejected orders and one more
        await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.executor.submitted >= 3,
            journal={"enabled": True, "path": str(path)},
        )
    after_ms = time.time_ns() // 1_000_000
    db = sqlite3.connect(path)
    stamps = [r[0] for r in db.execute("SELECT ts_ms FROM orders")]
    assert stamps, "the run sent no order"
    assert all(before_ms <= ts <= after_ms for ts in stamps), (before_ms, stamps, after_ms)
    rejected = db.execute("SELECT coin, reason, benign FROM rejections").fetchall()
    assert len(rejected) == 2, rejected
    assert all(reason == "Order rejected: injected fault." for _c, reason, _b in rejected)
    logged = [r.getMessage() for r in caplog.records if " rejected: " in r.getMessage()]
    assert len(logged) == 2 and all("injected fault" in m for m in logged), logged
    # and the report counts them by text
    assert "rejections: 2" in render(load_summary(path))
