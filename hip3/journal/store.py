"""The trading journal: an append-only SQLite record of what the bot saw and did.

Hot-path calls (`signal`, `order`, `fill`, ...) only validate their arguments and append a
tuple to an in-memory buffer; `flush()` writes everything buffered in ONE transaction. With
the database in WAL mode this means a `kill -9` loses at most the batch that was not yet
committed, and never leaves a corrupt file. A restarted bot appends a new session; nothing
already written is ever rewritten.

Prices, sizes, fees and PnL are stored as TEXT holding the exact decimal the caller gave;
times are INTEGER Unix milliseconds in every table.

Schema versions: 1 stamped `orders.ts_ms` with the bot's monotonic clock and had no rejections
table nor a session end reason. A writer opening a version 1 file migrates it in one
transaction: each order takes the Unix time of its first journaled transition (the same
moment: the order is recorded as it is sent), or its session's start when it has none; the
new table and column are added. Version 2 had no priority fees: a writer opening it adds the
nullable `orders.priority_rate` (the order's priority fee rate in 10^-8 of notional; NULL for
none, as every older order had). Readers accept every version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

try:  # advisory single-writer lock; not available on every platform
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

# Rows buffered while flushes keep failing (disk full, file locked). Beyond this the oldest
# rows are dropped and counted, so a broken disk cannot grow the bot's memory without bound.
MAX_BUFFERED_ROWS = 200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    pid INTEGER NOT NULL,
    mode TEXT,
    network TEXT,
    label TEXT,
    end_reason TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    coin TEXT NOT NULL,
    is_buy INTEGER NOT NULL,
    ref_px TEXT NOT NULL,
    oracle_px TEXT,
    mark_px TEXT,
    bid_px TEXT,
    ask_px TEXT,
    edge_bps REAL NOT NULL,
    size TEXT NOT NULL,
    outcome TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS signals_coin ON signals (coin);
CREATE TABLE IF NOT EXISTS signal_followups (
    id INTEGER PRIMARY KEY,
    signal_id INTEGER NOT NULL,
    offset_s REAL NOT NULL,
    ts_ms INTEGER NOT NULL,
    bid_px TEXT,
    ask_px TEXT,
    oracle_px TEXT,
    mark_px TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS signal_followups_signal ON signal_followups (signal_id);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    cloid TEXT NOT NULL,
    coin TEXT NOT NULL,
    is_buy INTEGER NOT NULL,
    px TEXT NOT NULL,
    sz TEXT NOT NULL,
    reduce_only INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    priority_rate INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS orders_cloid ON orders (cloid);
CREATE TABLE IF NOT EXISTS order_transitions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    cloid TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS order_transitions_cloid ON order_transitions (cloid);
CREATE TABLE IF NOT EXISTS fills (
    tid INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    coin TEXT NOT NULL,
    is_buy INTEGER NOT NULL,
    px TEXT NOT NULL,
    sz TEXT NOT NULL,
    fee TEXT NOT NULL,
    closed_pnl TEXT NOT NULL,
    oid INTEGER,
    cloid TEXT,
    snapshot INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS fills_cloid ON fills (cloid);
CREATE TABLE IF NOT EXISTS position_snapshots (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    n_positions INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS positions (
    snapshot_id INTEGER NOT NULL,
    coin TEXT NOT NULL,
    size TEXT NOT NULL,
    entry_px TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, coin)
) STRICT;
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    cloid TEXT NOT NULL,
    coin TEXT NOT NULL,
    reason TEXT NOT NULL,
    benign INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS hardstops (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL
) STRICT;
"""

TABLES = (
    "sessions",
    "signals",
    "signal_followups",
    "orders",
    "order_transitions",
    "fills",
    "position_snapshots",
    "positions",
    "hardstops",
    "rejections",
)
# tables a version 1 journal lacks (its readers see them as empty)
_ADDED_IN_2 = ("rejections",)

# One statement per buffer; a flush runs them in this order inside one transaction.
_INSERTS: dict[str, str] = {
    "signals": "INSERT INTO signals (id, session_id, ts_ms, coin, is_buy, ref_px, oracle_px,"
    " mark_px, bid_px, ask_px, edge_bps, size, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "signal_followups": "INSERT INTO signal_followups (signal_id, offset_s, ts_ms, bid_px,"
    " ask_px, oracle_px, mark_px) VALUES (?,?,?,?,?,?,?)",
    "orders": "INSERT INTO orders (session_id, ts_ms, cloid, coin, is_buy, px, sz, reduce_only,"
    " purpose, priority_rate) VALUES (?,?,?,?,?,?,?,?,?,?)",
    "order_transitions": "INSERT INTO order_transitions (session_id, ts_ms, cloid, source,"
    " target, event, detail) VALUES (?,?,?,?,?,?,?)",
    # The exchange re-sends fills (snapshots on every subscribe); tid identifies a fill.
    "fills": "INSERT OR IGNORE INTO fills (tid, session_id, ts_ms, coin, is_buy, px, sz, fee,"
    " closed_pnl, oid, cloid, snapshot) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    "position_snapshots": "INSERT INTO position_snapshots (id, session_id, ts_ms, n_positions)"
    " VALUES (?,?,?,?)",
    "positions": "INSERT INTO positions (snapshot_id, coin, size, entry_px) VALUES (?,?,?,?)",
    "hardstops": "INSERT INTO hardstops (session_id, ts_ms, state, reason) VALUES (?,?,?,?)",
    "rejections": "INSERT INTO rejections (session_id, ts_ms, cloid, coin, reason, benign)"
    " VALUES (?,?,?,?,?,?)",
}


class JournalError(Exception):
    """The journal cannot be opened, written or read; the message names the file."""


# ---- argument checks: cheap, so a bad value fails at the caller, never inside a flush ----


def _text(value: Any, name: str) -> str:
    if type(value) is str:
        # parse once here so a garbage string fails at the caller, not in the summary
        try:
            ok = Decimal(value).is_finite()
        except InvalidOperation:
            ok = False
        if not ok:
            raise ValueError(f"journal: {name} must be a finite decimal, got {value!r}")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"journal: {name} must be a finite decimal, got {value}")
        return str(value)
    if type(value) is int:
        return str(value)
    # floats are refused on purpose: their text is not the exact price the bot used
    raise TypeError(
        f"journal: {name} must be a decimal string or Decimal, got {type(value).__name__}"
    )


def _opt_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _label(value: Any, name: str, *, allow_empty: bool = False) -> str:
    if type(value) is not str:
        raise TypeError(f"journal: {name} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"journal: {name} must not be empty")
    return value


def _int(value: Any, name: str) -> int:
    if type(value) is not int:
        raise TypeError(f"journal: {name} must be an int, got {type(value).__name__}")
    return value


def _opt_int(value: Any, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _bool(value: Any, name: str) -> int:
    if type(value) is not bool:
        raise TypeError(f"journal: {name} must be a bool, got {type(value).__name__}")
    return int(value)


def _real(value: Any, name: str) -> float:
    if type(value) not in (int, float) and not isinstance(value, Decimal):
        raise TypeError(f"journal: {name} must be a number, got {type(value).__name__}")
    out = float(value)
    if out != out or out in (float("inf"), float("-inf")):
        raise ValueError(f"journal: {name} must be finite, got {value}")
    return out


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def new_session_id() -> str:
    """Sortable by start time and unique across processes and hosts."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open the database; explicit BEGIN/COMMIT (isolation_level=None) so a flush is exactly
    one transaction whatever Python's implicit-transaction rules are."""
    if read_only:
        # mode=ro never writes the journal. When no -wal file exists no bot is writing it (a
        # writer in WAL mode keeps its -wal for as long as it is open), so the file is read
        # as immutable: SQLite then creates no -wal/-shm beside a journal it only reads.
        wal = path.with_name(path.name + "-wal")
        flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        uri = f"{path.resolve().as_uri()}?{flags}"
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    return sqlite3.connect(str(path), isolation_level=None)


def check_schema(conn: sqlite3.Connection, path: Path, *, existing: bool = False) -> None:
    """Refuse a file that is not a hip3 journal, or one written by a newer schema. With
    `existing` (readers) an empty database is refused too; a writer initialises it."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a readable journal ({exc})") from exc
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path}: journal schema version {version} is newer than this hip3 "
            f"understands ({SCHEMA_VERSION})"
        )
    expected = TABLES if version >= 2 else [t for t in TABLES if t not in _ADDED_IN_2]
    missing = [t for t in expected if t not in names]
    if version >= 1 and missing:
        raise JournalError(f"{path}: not a hip3 journal (missing tables: {', '.join(missing)})")
    if existing and missing:
        raise JournalError(f"{path}: not a hip3 journal (no journal tables)")
    if version == 0 and names and missing:
        raise JournalError(f"{path}: an SQLite file, but not a hip3 journal")


def _migrate_from_2(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: orders gain their priority fee rate (NULL: none)."""
    conn.execute("ALTER TABLE orders ADD COLUMN priority_rate INTEGER")


def _migrate_from_1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2, inside the opener's transaction (see the module docstring)."""
    conn.execute("ALTER TABLE sessions ADD COLUMN end_reason TEXT")
    conn.execute(
        "UPDATE orders SET ts_ms = COALESCE("
        " (SELECT MIN(t.ts_ms) FROM order_transitions t"
        "  WHERE t.session_id = orders.session_id AND t.cloid = orders.cloid),"
        " (SELECT s.started_ms FROM sessions s WHERE s.id = orders.session_id),"
        " ts_ms)"
    )


# The last row a session wrote, over every table that carries its id and a time.
_LAST_ROW_MS = " ".join(
    f"UNION ALL SELECT MAX(ts_ms) FROM {table} WHERE session_id = sessions.id"
    for table in (
        "signals",
        "orders",
        "order_transitions",
        "fills",
        "position_snapshots",
        "hardstops",
        "rejections",
    )
)


def _close_killed_sessions(conn: sqlite3.Connection) -> int:
    """Sessions without an end were killed: the caller holds the writer lock, so no process is
    still writing them. Each is ended at its last journaled row (or its start) and marked."""
    cur = conn.execute(
        "UPDATE sessions SET end_reason = 'killed', ended_ms = (SELECT MAX(t) FROM ("
        f" SELECT started_ms AS t {_LAST_ROW_MS})) WHERE ended_ms IS NULL"
    )
    return cur.rowcount


class Journal:
    """Append-only trading journal; one instance per process, one session per instance.

    Only one process may write a journal file at a time (an advisory lock beside it enforces
    this), which is what makes ids allocated from an in-memory counter safe.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        session: str | None = None,
        mode: str | None = None,
        network: str | None = None,
        clock_ms: Any = _wall_ms,
        pid: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock_ms = clock_ms
        self._pid = os.getpid() if pid is None else pid
        self._closed = False
        self._lock_fd: int | None = None
        self._buffers: dict[str, list[tuple]] = {name: [] for name in _INSERTS}
        self.flush_failures = 0
        self.dropped_rows = 0
        self.last_error: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot create its directory ({exc})") from exc
        self._take_lock()
        try:
            self._conn = self._open()
            self._signal_seq = self._max_id("signals")
            self._snapshot_seq = self._max_id("position_snapshots")
            self.session_id = session if session is not None else new_session_id()
            self._begin_session(label=session, mode=mode, network=network)
        except BaseException:
            self._release_lock()
            raise

    # ---- opening ----

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover - non-POSIX: no second-writer protection
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot create lock file ({exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise JournalError(
                f"{self.path}: another process is writing this journal; "
                "give each bot its own journal.path"
            ) from exc
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self.path, read_only=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open journal ({exc})") from exc
        try:
            check_schema(conn, self.path)
            conn.execute("PRAGMA busy_timeout = 2000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{self.path}: cannot switch the journal to WAL (got {mode})")
            # NORMAL in WAL: a committed batch survives the process being killed; only an
            # OS crash or power loss can lose the last few, and never corrupts the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._create_schema(conn)
            if version == 1:
                _migrate_from_1(conn)
            if version in (1, 2):
                _migrate_from_2(conn)
            killed = _close_killed_sessions(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
            if killed:
                log.warning(
                    "journal %s: %d earlier session(s) never closed (killed): marked ended "
                    "at their last journaled row",
                    self.path,
                    killed,
                )
        except JournalError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"{self.path}: not a usable journal ({exc})") from exc
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        # executescript would COMMIT the surrounding transaction; run statement by statement
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)

    def _max_id(self, table: str) -> int:
        return self._conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]

    def _begin_session(self, *, label: str | None, mode: str | None, network: str | None) -> None:
        row = (self.session_id, self._clock_ms(), self._pid, mode, network, label)
        try:
            self._conn.execute(
                "INSERT INTO sessions (id, started_ms, pid, mode, network, label)"
                " VALUES (?,?,?,?,?,?)",
                row,
            )
        except sqlite3.IntegrityError as exc:
            self._conn.close()
            raise JournalError(
                f"{self.path}: session {self.session_id!r} already exists; a session name "
                "must be new for every run"
            ) from exc

    # ---- hot path: validate and buffer ----

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")

    def signal(
        self,
        *,
        ts_ms: int,
        coin: str,
        is_buy: bool,
        ref_px: str,
        oracle_px: str | None,
        mark_px: str | None,
        bid_px: str | None,
        ask_px: str | None,
        edge_bps: float,
        size: str,
        outcome: str,
    ) -> int:
        """Record a detector signal; returns its id (for follow-ups) without touching SQLite."""
        self._check_open()
        row = (
            self.session_id,
            _int(ts_ms, "ts_ms"),
            _label(coin, "coin"),
            _bool(is_buy, "is_buy"),
            _text(ref_px, "ref_px"),
            _opt_text(oracle_px, "oracle_px"),
            _opt_text(mark_px, "mark_px"),
            _opt_text(bid_px, "bid_px"),
            _opt_text(ask_px, "ask_px"),
            _real(edge_bps, "edge_bps"),
            _text(size, "size"),
            _label(outcome, "outcome"),
        )
        self._signal_seq += 1
        self._buffers["signals"].append((self._signal_seq, *row))
        return self._signal_seq

    def signal_followup(
        self,
        signal_id: int,
        *,
        offset_s: float,
        ts_ms: int,
        bid_px: str | None,
        ask_px: str | None,
        oracle_px: str | None,
        mark_px: str | None,
    ) -> None:
        """The market some seconds after a signal: did the book move towards the oracle?"""
        self._check_open()
        _int(signal_id, "signal_id")
        if not 0 < signal_id <= self._signal_seq:
            raise ValueError(f"journal: signal_id {signal_id} was never issued by this journal")
        self._buffers["signal_followups"].append(
            (
                signal_id,
                _real(offset_s, "offset_s"),
                _int(ts_ms, "ts_ms"),
                _opt_text(bid_px, "bid_px"),
                _opt_text(ask_px, "ask_px"),
                _opt_text(oracle_px, "oracle_px"),
                _opt_text(mark_px, "mark_px"),
            )
        )

    def order(
        self,
        *,
        cloid: str,
        coin: str,
        is_buy: bool,
        px: str,
        sz: str,
        reduce_only: bool,
        purpose: str,
        ts_ms: int | None = None,
        priority_rate: int | None = None,
    ) -> None:
        """An order as it is sent. Stamped with the journal's Unix clock unless `ts_ms` (Unix
        ms) is given: the sender's own clock is monotonic, which no other table uses.
        `priority_rate`: its priority fee rate in 10^-8 of notional (None: none)."""
        if priority_rate is not None and not 0 < _int(priority_rate, "priority_rate") <= 10**8:
            raise ValueError(f"journal: priority_rate must be in 1..10^8, got {priority_rate}")
        self._check_open()
        self._buffers["orders"].append(
            (
                self.session_id,
                self._clock_ms() if ts_ms is None else _int(ts_ms, "ts_ms"),
                _label(cloid, "cloid"),
                _label(coin, "coin"),
                _bool(is_buy, "is_buy"),
                _text(px, "px"),
                _text(sz, "sz"),
                _bool(reduce_only, "reduce_only"),
                _label(purpose, "purpose"),
                priority_rate,
            )
        )

    def order_transition(
        self, *, ts_ms: int, cloid: str, source: str, target: str, event: str, detail: str = ""
    ) -> None:
        self._check_open()
        self._buffers["order_transitions"].append(
            (
                self.session_id,
                _int(ts_ms, "ts_ms"),
                _label(cloid, "cloid"),
                _label(source, "source"),
                _label(target, "target"),
                _label(event, "event"),
                _label(detail, "detail", allow_empty=True),
            )
        )

    def fill(
        self,
        *,
        ts_ms: int,
        tid: int,
        coin: str,
        is_buy: bool,
        px: str,
        sz: str,
        fee: str,
        closed_pnl: str,
        oid: int | None,
        cloid: str | None,
        snapshot: bool,
    ) -> None:
        """Idempotent on `tid`: a fill seen again (snapshot, restart) is ignored."""
        self._check_open()
        self._buffers["fills"].append(
            (
                _int(tid, "tid"),
                self.session_id,
                _int(ts_ms, "ts_ms"),
                _label(coin, "coin"),
                _bool(is_buy, "is_buy"),
                _text(px, "px"),
                _text(sz, "sz"),
                _text(fee, "fee"),
                _text(closed_pnl, "closed_pnl"),
                _opt_int(oid, "oid"),
                None if cloid is None else _label(cloid, "cloid"),
                _bool(snapshot, "snapshot"),
            )
        )

    def position_snapshot(self, *, ts_ms: int, positions: dict[str, tuple[str, str]]) -> None:
        """All open positions at one moment (coin -> (signed size, entry px)); an empty dict
        records that the account was flat."""
        self._check_open()
        ts = _int(ts_ms, "ts_ms")
        if not isinstance(positions, dict):
            raise TypeError(f"journal: positions must be a dict, got {type(positions).__name__}")
        rows = []
        for coin, value in positions.items():
            _label(coin, "positions key")
            if not isinstance(value, tuple) or len(value) != 2:
                raise TypeError(f"journal: positions[{coin!r}] must be a (size, entry_px) tuple")
            size = _text(value[0], f"positions[{coin!r}] size")
            entry = _text(value[1], f"positions[{coin!r}] entry_px")
            rows.append((coin, size, entry))
        self._snapshot_seq += 1
        sid = self._snapshot_seq
        self._buffers["position_snapshots"].append((sid, self.session_id, ts, len(rows)))
        self._buffers["positions"].extend((sid, *r) for r in rows)

    def rejection(self, *, ts_ms: int, cloid: str, coin: str, reason: str, benign: bool) -> None:
        """An order the exchange refused, with its text; `benign` ones do not count towards
        the consecutive-rejection HardStop."""
        self._check_open()
        self._buffers["rejections"].append(
            (
                self.session_id,
                _int(ts_ms, "ts_ms"),
                _label(cloid, "cloid"),
                _label(coin, "coin"),
                _label(reason, "reason", allow_empty=True),
                _bool(benign, "benign"),
            )
        )

    def hardstop(self, *, ts_ms: int, state: str, reason: str) -> None:
        self._check_open()
        self._buffers["hardstops"].append(
            (
                self.session_id,
                _int(ts_ms, "ts_ms"),
                _label(state, "state"),
                _label(reason, "reason", allow_empty=True),
            )
        )

    # ---- writing ----

    @property
    def pending(self) -> int:
        """Rows buffered and not yet committed."""
        return sum(len(rows) for rows in self._buffers.values())

    def flush(self) -> bool:
        """Commit everything buffered as ONE transaction.

        Never raises for a write failure (a full disk must not stop the bot's loop): the batch
        stays buffered for the next flush, the failure is counted and logged. Returns True when
        nothing is left pending.
        """
        if self._closed:
            return True
        batches = [(name, rows) for name, rows in self._buffers.items() if rows]
        if not batches:
            return True
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for name, rows in batches:
                conn.executemany(_INSERTS[name], rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._flush_failed(exc)
            return False
        for _name, rows in batches:
            rows.clear()
        if self.last_error is not None:
            log.warning("journal %s: writing again after failures", self.path)
            self.last_error = None
        return True

    def _flush_failed(self, exc: sqlite3.Error) -> None:
        self.flush_failures += 1
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:  # log on change only; the tick would repeat it 10x/s
            log.error("journal %s: flush failed, keeping batch for retry (%s)", self.path, text)
        self.last_error = text
        excess = self.pending - MAX_BUFFERED_ROWS
        for rows in self._buffers.values():
            if excess <= 0:
                break
            cut = min(excess, len(rows))
            del rows[:cut]
            self.dropped_rows += cut
            excess -= cut

    def close(self) -> None:
        """Flush, stamp the session's end and release the file. Raises JournalError when
        buffered rows could not be written (after the file is released)."""
        if self._closed:
            return
        flushed = self.flush()
        unwritten = self.pending
        try:
            self._conn.execute(
                "UPDATE sessions SET ended_ms = ?, end_reason = 'closed' WHERE id = ?",
                (self._clock_ms(), self.session_id),
            )
        except sqlite3.Error as exc:
            log.error("journal %s: cannot record the session end (%s)", self.path, exc)
        finally:
            self._closed = True
            self._conn.close()
            self._release_lock()
        if not flushed:
            raise JournalError(
                f"{self.path}: {unwritten} journal rows could not be written ({self.last_error})"
            )

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
