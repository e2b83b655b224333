"""`kill -9` safety: a killed writer loses at most its uncommitted batch, never the file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hip3.journal import Journal

BATCHES = 6
BATCH_SIZE = 50

# Writes BATCHES committed batches of signals + fills, then dies with SIGKILL while more rows
# are pending: either only buffered, or mid-transaction (inserted but not committed, with a
# tiny page cache so the uncommitted pages really spill into the WAL file first).
_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from hip3.journal import Journal

    path, batches, size, where = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    j = Journal(path, mode="observation", network="sim")

    def batch(b, n):
        for i in range(n):
            j.signal(ts_ms=b * 100_000 + i, coin="xyz:A", is_buy=i % 2 == 0,
                     ref_px="100." + str(i), oracle_px="101", mark_px=None, bid_px="100",
                     ask_px="100.5", edge_bps=float(i), size=str(b + 1), outcome="observation")
            j.fill(ts_ms=b * 100_000 + i, tid=b * 100_000 + i, coin="xyz:A", is_buy=True,
                   px="100", sz="1", fee="0.01", closed_pnl="0.5", oid=None, cloid=None,
                   snapshot=False)

    for b in range(batches):
        batch(b, size)
        j.flush()

    class KillAtCommit:
        def __init__(self, conn):
            self.conn = conn
        def execute(self, sql, *args):
            if sql == "COMMIT":
                print("wal-at-commit", os.path.getsize(path + "-wal"), flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return self.conn.execute(sql, *args)
        def executemany(self, sql, rows):
            return self.conn.executemany(sql, rows)

    batch(batches, 5000)
    if where == "in-transaction":
        j._conn.execute("PRAGMA cache_size = 5")
        print("wal-before", os.path.getsize(path + "-wal"), flush=True)
        j._conn = KillAtCommit(j._conn)
        j.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _run_killed_writer(path: Path, where: str) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, "-c", _WRITER, str(path), str(BATCHES), str(BATCH_SIZE), where],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return {k: int(v) for k, v in (line.split() for line in proc.stdout.splitlines())}


@pytest.mark.parametrize("where", ["buffered", "in-transaction"])
def test_killed_writer_keeps_exactly_the_flushed_batches(tmp_path: Path, where: str) -> None:
    path = tmp_path / "journal.sqlite"
    sizes = _run_killed_writer(path, where)
    if where == "in-transaction":
        # the dying transaction did reach the WAL file; recovery must ignore it
        assert sizes["wal-at-commit"] > sizes["wal-before"]

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        flushed = BATCHES * BATCH_SIZE
        assert conn.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM signals").fetchone() == (
            flushed,
            1,
            flushed,
        )
        per_batch = conn.execute(
            "SELECT size, COUNT(*) FROM signals GROUP BY size ORDER BY CAST(size AS INTEGER)"
        ).fetchall()
        assert per_batch == [(str(b + 1), BATCH_SIZE) for b in range(BATCHES)]
        assert conn.execute("SELECT COUNT(*) FROM fills").fetchone() == (flushed,)
        # the killed session never recorded an end
        assert conn.execute("SELECT ended_ms FROM sessions").fetchall() == [(None,)]
    finally:
        conn.close()

    # the restarted bot appends: a new session, ids continue after the last committed one
    with Journal(path) as j:
        next_id = j.signal(
            ts_ms=1,
            coin="xyz:A",
            is_buy=True,
            ref_px="1",
            oracle_px=None,
            mark_px=None,
            bid_px=None,
            ask_px=None,
            edge_bps=0.0,
            size="1",
            outcome="sent",
        )
    assert next_id == BATCHES * BATCH_SIZE + 1
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (2,)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
