"""The journal store: exact round-trips, buffering, restarts and bad input."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.journal import Journal, JournalError
from hip3.journal.store import SCHEMA_VERSION


def _rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _signal(j: Journal, **over) -> int:
    kw = dict(
        ts_ms=1_700_000_000_123,
        coin="xyz:TSLA",
        is_buy=True,
        ref_px="251.37",
        oracle_px="252.0",
        mark_px="251.9",
        bid_px="251.30",
        ask_px="251.37",
        edge_bps=17.25,
        size="0.041",
        outcome="observation",
    )
    kw.update(over)
    return j.signal(**kw)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "journal.sqlite"


def test_open_creates_parent_dir_wal_and_versioned_schema(path: Path) -> None:
    with Journal(path, mode="observation", network="sim") as j:
        sid = j.session_id
    assert path.is_file()
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert _rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    ((s_id, started, ended, pid, mode, network),) = _rows(
        path, "SELECT id, started_ms, ended_ms, pid, mode, network FROM sessions"
    )
    assert s_id == sid
    assert mode == "observation" and network == "sim"
    assert isinstance(pid, int) and pid > 0
    assert ended is not None and ended >= started


def test_signal_and_followup_round_trip_exactly(path: Path) -> None:
    with Journal(path) as j:
        a = _signal(j)
        b = _signal(
            j,
            coin="xyz:NVDA",
            is_buy=False,
            oracle_px=None,
            mark_px=None,
            bid_px=None,
            ask_px=None,
            edge_bps=-3,
            outcome="blocked:bbo_age",
            ref_px="0.000012345678901234567890",
        )
        j.signal_followup(
            a,
            offset_s=1.0,
            ts_ms=1_700_000_001_123,
            bid_px="251.80",
            ask_px="251.85",
            oracle_px="252.01",
            mark_px=None,
        )
        j.signal_followup(
            a,
            offset_s=3,
            ts_ms=1_700_000_003_123,
            bid_px=None,
            ask_px=None,
            oracle_px=None,
            mark_px="252",
        )
        sid = j.session_id
    assert b == a + 1
    rows = _rows(path, "SELECT * FROM signals ORDER BY id")
    assert rows == [
        (
            a,
            sid,
            1_700_000_000_123,
            "xyz:TSLA",
            1,
            "251.37",
            "252.0",
            "251.9",
            "251.30",
            "251.37",
            17.25,
            "0.041",
            "observation",
        ),
        (
            b,
            sid,
            1_700_000_000_123,
            "xyz:NVDA",
            0,
            "0.000012345678901234567890",
            None,
            None,
            None,
            None,
            -3.0,
            "0.041",
            "blocked:bbo_age",
        ),
    ]
    fu = _rows(
        path,
        "SELECT signal_id, offset_s, ts_ms, bid_px, ask_px, oracle_px, mark_px"
        " FROM signal_followups ORDER BY id",
    )
    assert fu == [
        (a, 1.0, 1_700_000_001_123, "251.80", "251.85", "252.01", None),
        (a, 3.0, 1_700_000_003_123, None, None, None, "252"),
    ]


def test_orders_transitions_fills_positions_hardstops_round_trip(path: Path) -> None:
    with Journal(path) as j:
        j.order(
            ts_ms=5,
            cloid="0x" + "ab" * 16,
            coin="xyz:TSLA",
            is_buy=True,
            px="251.37",
            sz="0.041",
            reduce_only=False,
            purpose="entry",
        )
        j.order_transition(
            ts_ms=6,
            cloid="0x" + "ab" * 16,
            source="pending",
            target="resting",
            event="ack",
            detail="oid=77",
        )
        j.order_transition(
            ts_ms=7, cloid="0x" + "ab" * 16, source="resting", target="filled", event="fill"
        )
        j.fill(
            ts_ms=7,
            tid=9001,
            coin="xyz:TSLA",
            is_buy=True,
            px="251.37",
            sz="0.041",
            fee="0.004121",
            closed_pnl="0.0",
            oid=77,
            cloid="0x" + "ab" * 16,
            snapshot=False,
        )
        j.fill(
            ts_ms=8,
            tid=9002,
            coin="xyz:TSLA",
            is_buy=False,
            px=Decimal("251.90"),
            sz="0.041",
            fee="-0.0001",
            closed_pnl="0.02173",
            oid=None,
            cloid=None,
            snapshot=True,
        )
        j.position_snapshot(
            ts_ms=9, positions={"xyz:TSLA": ("-0.041", "251.37"), "xyz:NVDA": ("2", "120.5")}
        )
        j.position_snapshot(ts_ms=10, positions={})
        j.hardstop(ts_ms=11, state="tripped", reason="loss limit")
        sid = j.session_id
    assert _rows(
        path,
        "SELECT session_id, ts_ms, cloid, coin, is_buy, px, sz, reduce_only, purpose FROM orders",
    ) == [(sid, 5, "0x" + "ab" * 16, "xyz:TSLA", 1, "251.37", "0.041", 0, "entry")]
    assert _rows(
        path, "SELECT ts_ms, source, target, event, detail FROM order_transitions ORDER BY id"
    ) == [
        (6, "pending", "resting", "ack", "oid=77"),
        (7, "resting", "filled", "fill", ""),
    ]
    assert _rows(path, "SELECT * FROM fills ORDER BY tid") == [
        (
            9001,
            sid,
            7,
            "xyz:TSLA",
            1,
            "251.37",
            "0.041",
            "0.004121",
            "0.0",
            77,
            "0x" + "ab" * 16,
            0,
        ),
        (9002, sid, 8, "xyz:TSLA", 0, "251.90", "0.041", "-0.0001", "0.02173", None, None, 1),
    ]
    snaps = _rows(path, "SELECT id, ts_ms, n_positions FROM position_snapshots ORDER BY id")
    assert [(ts, n) for _, ts, n in snaps] == [(9, 2), (10, 0)]
    assert sorted(_rows(path, "SELECT snapshot_id, coin, size, entry_px FROM positions")) == [
        (snaps[0][0], "xyz:NVDA", "2", "120.5"),
        (snaps[0][0], "xyz:TSLA", "-0.041", "251.37"),
    ]
    assert _rows(path, "SELECT session_id, ts_ms, state, reason FROM hardstops") == [
        (sid, 11, "tripped", "loss limit")
    ]


def test_fill_is_idempotent_on_tid_within_and_across_batches(path: Path) -> None:
    fill = dict(
        ts_ms=1,
        tid=42,
        coin="xyz:A",
        is_buy=True,
        px="1",
        sz="2",
        fee="0.1",
        closed_pnl="0",
        oid=1,
        cloid=None,
        snapshot=False,
    )
    with Journal(path) as j:
        j.fill(**fill)
        j.fill(**{**fill, "snapshot": True})
        j.flush()
        j.fill(**{**fill, "snapshot": True, "ts_ms": 2})
    with Journal(path) as j:  # a restart's userFills snapshot repeats old fills
        j.fill(**{**fill, "snapshot": True, "ts_ms": 3})
        j.fill(**{**fill, "tid": 43})
    assert _rows(path, "SELECT tid, ts_ms, snapshot FROM fills ORDER BY tid") == [
        (42, 1, 0),
        (43, 1, 0),
    ]


class _NoSql:
    """Stands in for the connection: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"hot path touched SQLite ({name})")


def test_hot_path_calls_only_buffer_and_flush_is_one_transaction(path: Path) -> None:
    j = Journal(path)
    real, j._conn = j._conn, _NoSql()
    ids = [_signal(j) for _ in range(3)]
    j.signal_followup(
        ids[0], offset_s=1, ts_ms=2, bid_px=None, ask_px=None, oracle_px=None, mark_px=None
    )
    j.order(
        ts_ms=1,
        cloid="c1",
        coin="xyz:A",
        is_buy=True,
        px="1",
        sz="1",
        reduce_only=False,
        purpose="entry",
    )
    j.order_transition(ts_ms=1, cloid="c1", source="a", target="b", event="e")
    j.fill(
        ts_ms=1,
        tid=1,
        coin="xyz:A",
        is_buy=True,
        px="1",
        sz="1",
        fee="0",
        closed_pnl="0",
        oid=None,
        cloid="c1",
        snapshot=False,
    )
    j.position_snapshot(ts_ms=1, positions={"xyz:A": ("1", "1")})
    j.hardstop(ts_ms=1, state="armed", reason="")
    assert ids == [1, 2, 3]
    assert j.pending == 10
    j._conn = real
    # nothing is visible to another reader until the single commit
    assert _rows(path, "SELECT COUNT(*) FROM signals") == [(0,)]
    statements: list[str] = []
    real.set_trace_callback(statements.append)
    assert j.flush() is True
    real.set_trace_callback(None)
    assert j.pending == 0
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert _rows(path, "SELECT COUNT(*) FROM signals") == [(3,)]
    j.close()


def test_restart_appends_new_session_and_ids_keep_increasing(path: Path) -> None:
    with Journal(path) as j1:
        first = [_signal(j1) for _ in range(4)]
        j1.position_snapshot(ts_ms=1, positions={})
        s1 = j1.session_id
    with Journal(path) as j2:
        second = [_signal(j2) for _ in range(2)]
        j2.position_snapshot(ts_ms=2, positions={})
        s2 = j2.session_id
    assert s1 != s2
    assert first == [1, 2, 3, 4] and second == [5, 6]
    assert _rows(path, "SELECT id, session_id FROM signals ORDER BY id") == [
        *[(i, s1) for i in first],
        *[(i, s2) for i in second],
    ]
    assert [r[0] for r in _rows(path, "SELECT id FROM sessions ORDER BY started_ms, rowid")] == [
        s1,
        s2,
    ]
    assert _rows(path, "SELECT id FROM position_snapshots ORDER BY id") == [(1,), (2,)]


def test_named_session_must_be_new(path: Path) -> None:
    with Journal(path, session="run-1") as j:
        assert j.session_id == "run-1"
    with pytest.raises(JournalError, match="session 'run-1' already exists"):
        Journal(path, session="run-1")
    Journal(path, session="run-2").close()  # the failed open released the file


def test_a_second_writer_is_refused_while_the_first_is_open(path: Path) -> None:
    j = Journal(path)
    with pytest.raises(JournalError, match="another process is writing"):
        Journal(path)
    j.close()
    Journal(path).close()


@pytest.mark.parametrize(
    ("field", "value", "error", "text"),
    [
        ("ref_px", 1.5, TypeError, "ref_px must be a decimal string or Decimal, got float"),
        ("ref_px", "abc", ValueError, "ref_px must be a finite decimal, got 'abc'"),
        ("ref_px", "", ValueError, "ref_px must be a finite decimal"),
        ("ref_px", Decimal("NaN"), ValueError, "ref_px must be a finite decimal"),
        ("oracle_px", "inf", ValueError, "oracle_px must be a finite decimal"),
        ("ts_ms", 1.0, TypeError, "ts_ms must be an int, got float"),
        ("is_buy", 1, TypeError, "is_buy must be a bool, got int"),
        ("coin", "", ValueError, "coin must not be empty"),
        ("edge_bps", float("nan"), ValueError, "edge_bps must be finite"),
        ("edge_bps", "12", TypeError, "edge_bps must be a number, got str"),
        ("outcome", None, TypeError, "outcome must be a string, got NoneType"),
    ],
)
def test_bad_signal_input_names_the_field_and_buffers_nothing(
    path: Path, field: str, value: object, error: type, text: str
) -> None:
    with Journal(path) as j:
        with pytest.raises(error, match=text):
            _signal(j, **{field: value})
        assert j.pending == 0
        assert _signal(j) == 1  # a refused call does not consume an id


def test_other_bad_input_is_refused(path: Path) -> None:
    with Journal(path) as j:
        with pytest.raises(ValueError, match="signal_id 1 was never issued"):
            j.signal_followup(
                1, offset_s=1, ts_ms=1, bid_px=None, ask_px=None, oracle_px=None, mark_px=None
            )
        with pytest.raises(TypeError, match="positions\\['xyz:A'\\] must be a"):
            j.position_snapshot(ts_ms=1, positions={"xyz:A": "1"})
        with pytest.raises(ValueError, match="size must be a finite decimal"):
            j.position_snapshot(ts_ms=1, positions={"xyz:A": ("x", "1")})
        with pytest.raises(TypeError, match="tid must be an int"):
            j.fill(
                ts_ms=1,
                tid="5",
                coin="xyz:A",
                is_buy=True,
                px="1",
                sz="1",
                fee="0",
                closed_pnl="0",
                oid=None,
                cloid=None,
                snapshot=False,
            )
        assert j.pending == 0
    with pytest.raises(JournalError, match="journal is closed"):
        _signal(j)


def test_failed_flush_keeps_the_batch_and_retries(path: Path) -> None:
    j = Journal(path)
    j._conn.execute("PRAGMA busy_timeout = 0")
    _signal(j)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the flush must fail
    assert j.flush() is False
    assert j.pending == 1 and j.flush_failures == 1
    assert "locked" in (j.last_error or "")
    blocker.execute("ROLLBACK")
    blocker.close()
    _signal(j)
    assert j.flush() is True
    assert j.last_error is None
    assert _rows(path, "SELECT id FROM signals ORDER BY id") == [(1,), (2,)]
    j.close()


def test_close_reports_rows_it_could_not_write(path: Path) -> None:
    j = Journal(path)
    j._conn.execute("PRAGMA busy_timeout = 0")
    _signal(j)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(JournalError, match="1 journal rows could not be written"):
            j.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    Journal(path).close()  # the file was released despite the failure


def test_foreign_sqlite_file_and_garbage_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not a hip3 journal"):
        Journal(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, not at all" * 100)
    with pytest.raises(JournalError, match=str(garbage)):
        Journal(garbage)


def test_newer_schema_is_refused(path: Path) -> None:
    Journal(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer than this hip3 understands"):
        Journal(path)


_decimal_text = st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str)


@pytest.fixture(scope="module")
def one_journal(tmp_path_factory: pytest.TempPathFactory):
    """One journal for every example (a fresh file per example cost seconds): each example
    writes a fill of its own trade id and reads that row back after the commit."""
    path = tmp_path_factory.mktemp("j") / "j.sqlite"
    with Journal(path) as j:
        yield path, j, itertools.count(1)


@given(px=_decimal_text, sz=_decimal_text, fee=_decimal_text, pnl=_decimal_text)
def test_any_finite_decimal_text_round_trips_exactly(
    one_journal: tuple[Path, Journal, Iterator[int]], px: str, sz: str, fee: str, pnl: str
) -> None:
    path, j, tids = one_journal
    tid = next(tids)
    j.fill(
        ts_ms=1,
        tid=tid,
        coin="xyz:A",
        is_buy=True,
        px=px,
        sz=sz,
        fee=fee,
        closed_pnl=pnl,
        oid=None,
        cloid=None,
        snapshot=False,
    )
    assert j.flush()
    sql = "SELECT px, sz, fee, closed_pnl FROM fills WHERE tid = ?"
    assert _rows(path, sql, (tid,)) == [(px, sz, fee, pnl)]


def test_buffer_is_bounded_while_flushes_keep_failing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hip3.journal.store.MAX_BUFFERED_ROWS", 3)
    j = Journal(path)
    j._conn.execute("PRAGMA busy_timeout = 0")
    ids = [_signal(j) for _ in range(5)]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    assert j.flush() is False
    blocker.execute("ROLLBACK")
    blocker.close()
    assert (j.pending, j.dropped_rows) == (3, 2)
    assert j.flush() is True
    j.close()
    # the oldest rows went; the newest survive with the ids their callers were given
    assert _rows(path, "SELECT id FROM signals ORDER BY id") == [(i,) for i in ids[2:]]
