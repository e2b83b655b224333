"""Read a journal back: a summary for people, and a CSV export for spreadsheets.

Readers open the file read-only, so a summary can be taken while the bot is writing (WAL lets
a reader see the last committed batch without blocking the writer).
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hip3.journal.store import TABLES, JournalError, check_schema, connect

_BPS = Decimal(10_000)
_RATE_SCALE = Decimal(100_000_000)  # priority fee rates are in 10^-8 of notional
_RATE_PER_BPS = Decimal(10_000)


@dataclass(frozen=True)
class SessionRow:
    id: str
    started_ms: int
    ended_ms: int | None
    pid: int
    mode: str | None
    network: str | None
    signals: int
    # 'closed' (the bot stopped), 'killed' (found unclosed by a later bot), None (still open,
    # or a version 1 journal not yet reopened by a bot)
    end_reason: str | None = None


@dataclass
class MarketStats:
    coin: str
    signals: int = 0
    edge_sum_bps: float = 0.0
    sent: int = 0
    observation: int = 0
    blocked: int = 0
    other: int = 0
    blocked_by: dict[str, int] = field(default_factory=dict)
    entry_orders: int = 0
    entry_orders_filled: int = 0
    fills: int = 0
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)

    @property
    def mean_edge_bps(self) -> float | None:
        return self.edge_sum_bps / self.signals if self.signals else None

    @property
    def fill_rate(self) -> float | None:
        return self.entry_orders_filled / self.entry_orders if self.entry_orders else None

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.fees


@dataclass(frozen=True)
class FollowupStats:
    """How the book moved after observation signals, `offset_s` seconds later.

    move_bps: mid change in the signal's direction (positive = towards the oracle), in bps of
    the mid at signal time. gap_closed: fraction of the oracle-mid gap that closed
    (1 = fully converged, negative = widened).
    """

    offset_s: float
    n: int
    mean_move_bps: float
    mean_gap_closed: float | None


@dataclass
class PriorityGroup:
    """IOC entries that paid one kind of priority (none, or some)."""

    entry_orders: int = 0
    entry_orders_filled: int = 0
    rate_sum: int = 0  # of the entries, in 10^-8 of notional
    paid_usd: Decimal = Decimal(0)

    @property
    def fill_rate(self) -> float | None:
        return self.entry_orders_filled / self.entry_orders if self.entry_orders else None

    @property
    def mean_rate_bps(self) -> Decimal | None:
        if not self.entry_orders:
            return None
        return Decimal(self.rate_sum) / self.entry_orders / _RATE_PER_BPS


@dataclass
class PriorityStats:
    """Priority fees: fill rate of IOC entries without and with one, and what was paid.

    The exchange's fills do not carry the fee (it is taken in HYPE from the staking balance),
    so it is computed per fill as px x sz x the order's rate."""

    without: PriorityGroup = field(default_factory=PriorityGroup)
    with_priority: PriorityGroup = field(default_factory=PriorityGroup)
    exits_paid_usd: Decimal = Decimal(0)
    # a strategy's own IOCs that carried a rate (Context.submit's priority_bps)
    strategy_orders: int = 0
    strategy_orders_filled: int = 0
    strategy_paid_usd: Decimal = Decimal(0)

    @property
    def paid_usd(self) -> Decimal:
        return self.with_priority.paid_usd + self.exits_paid_usd + self.strategy_paid_usd


@dataclass(frozen=True)
class HardStopRow:
    session_id: str
    ts_ms: int
    state: str
    reason: str


@dataclass
class Summary:
    path: Path
    sessions: list[SessionRow]
    markets: dict[str, MarketStats]
    followups: list[FollowupStats]
    hardstops: list[HardStopRow]
    # the exchange's refusal texts: reason -> (count, benign count)
    rejections: dict[str, tuple[int, int]] = field(default_factory=dict)
    schema_version: int = 0
    integrity: str = "not checked"
    priority: PriorityStats = field(default_factory=PriorityStats)

    @property
    def total(self) -> MarketStats:
        t = MarketStats(coin="TOTAL")
        for m in self.markets.values():
            t.signals += m.signals
            t.edge_sum_bps += m.edge_sum_bps
            t.sent += m.sent
            t.observation += m.observation
            t.blocked += m.blocked
            t.other += m.other
            for gate, n in m.blocked_by.items():
                t.blocked_by[gate] = t.blocked_by.get(gate, 0) + n
            t.entry_orders += m.entry_orders
            t.entry_orders_filled += m.entry_orders_filled
            t.fills += m.fills
            t.realized_pnl += m.realized_pnl
            t.fees += m.fees
        return t


def open_existing(path: str | Path) -> sqlite3.Connection:
    """Open a journal for reading; a clear JournalError naming the path otherwise."""
    p = Path(path)
    if not p.exists():
        raise JournalError(f"{p}: no journal at this path")
    if not p.is_file():
        raise JournalError(f"{p}: not a file")
    try:
        conn = connect(p, read_only=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{p}: cannot open journal ({exc})") from exc
    try:
        check_schema(conn, p, existing=True)
    except BaseException:
        conn.close()
        raise
    return conn


class JournalCorrupt(JournalError):
    """`PRAGMA integrity_check` found damage; the message lists the first problems."""


def check_integrity(conn: sqlite3.Connection, path: Path) -> str:
    """SQLite's own full check of the file: pages, indexes, constraints. 'ok' or raises."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        raise JournalCorrupt(f"{path}: integrity check failed: {exc}") from exc
    if problems != ["ok"]:
        raise JournalCorrupt(f"{path}: integrity check failed: {'; '.join(problems[:5])}")
    return "ok"


# Tables whose rows belong to a session, and how: directly by a session_id column, or through
# the row they hang off.
_SESSION_SCOPED = {
    "sessions": "SELECT * FROM main.sessions WHERE id IN (SELECT id FROM temp.chosen)",
    "signal_followups": "SELECT * FROM main.signal_followups WHERE signal_id IN"
    " (SELECT id FROM main.signals WHERE session_id IN (SELECT id FROM temp.chosen))",
    "positions": "SELECT * FROM main.positions WHERE snapshot_id IN (SELECT id FROM"
    " main.position_snapshots WHERE session_id IN (SELECT id FROM temp.chosen))",
}


def choose_session(conn: sqlite3.Connection, path: Path, session: str) -> str:
    """Limit every later query on `conn` to one session: `session` is its id or `last` (the
    session started last). Returns the id.

    Each journal table is shadowed by a TEMP view of the same name holding only that session's
    rows (SQLite resolves an unqualified name in `temp` before `main`), so every reader, the
    summary's and the HTML report's alike, reports on the choice without a filter of its own.
    The views live in this connection's memory: the journal file is not written.
    """
    if session == "last":
        row = conn.execute(
            "SELECT id FROM sessions ORDER BY started_ms DESC, rowid DESC"
        ).fetchone()
        if row is None:
            raise JournalError(f"{path}: no sessions to choose the last of")
    else:
        row = conn.execute("SELECT id FROM sessions WHERE id = ?", (session,)).fetchone()
        if row is None:
            raise JournalError(f"{path}: no session {session!r} in this journal")
    chosen = row[0]
    conn.execute("CREATE TEMP TABLE chosen (id TEXT)")
    conn.execute("INSERT INTO temp.chosen VALUES (?)", (chosen,))
    present = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")}
    for table in TABLES:
        if table not in present:
            continue
        query = _SESSION_SCOPED.get(
            table, f"SELECT * FROM main.{table} WHERE session_id IN (SELECT id FROM temp.chosen)"
        )
        conn.execute(f"CREATE TEMP VIEW {table} AS {query}")
    return chosen


@contextlib.contextmanager
def reading(
    path: str | Path, *, session: str | None = None
) -> Iterator[tuple[sqlite3.Connection, str]]:
    """A read-only connection whose integrity SQLite has checked (yields it with the check's
    result), limited to `session` when one is given; damage found while reading is a
    JournalError naming the file."""
    conn = open_existing(path)
    try:
        integrity = check_integrity(conn, Path(path))
        if session is not None:
            choose_session(conn, Path(path), session)
        yield conn, integrity
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: journal is damaged ({exc})") from exc
    finally:
        conn.close()


def load_summary(path: str | Path, *, session: str | None = None) -> Summary:
    with reading(path, session=session) as (conn, integrity):
        summary = summarise(conn, Path(path))
        summary.integrity = integrity
        return summary


def _market(markets: dict[str, MarketStats], coin: str) -> MarketStats:
    m = markets.get(coin)
    if m is None:
        m = markets[coin] = MarketStats(coin=coin)
    return m


def summarise(conn: sqlite3.Connection, path: Path) -> Summary:
    markets: dict[str, MarketStats] = {}
    for coin, outcome, n, edge_sum in conn.execute(
        "SELECT coin, outcome, COUNT(*), SUM(edge_bps) FROM signals GROUP BY coin, outcome"
    ):
        m = _market(markets, coin)
        m.signals += n
        m.edge_sum_bps += edge_sum
        if outcome == "sent":
            m.sent += n
        elif outcome == "observation":
            m.observation += n
        elif outcome.startswith("blocked"):
            m.blocked += n
            gate = outcome.partition(":")[2] or "unspecified"
            m.blocked_by[gate] = m.blocked_by.get(gate, 0) + n
        else:
            m.other += n

    for coin, n, filled in conn.execute(
        "SELECT o.coin, COUNT(DISTINCT o.cloid),"
        " COUNT(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM fills f WHERE f.cloid = o.cloid)"
        " THEN o.cloid END)"
        " FROM orders o WHERE o.purpose = 'entry' GROUP BY o.coin"
    ):
        m = _market(markets, coin)
        m.entry_orders = n
        m.entry_orders_filled = filled

    # Exact decimal sums: SQLite's SUM over TEXT would go through binary floats.
    for coin, closed_pnl, fee in conn.execute("SELECT coin, closed_pnl, fee FROM fills"):
        m = _market(markets, coin)
        m.fills += 1
        m.realized_pnl += Decimal(closed_pnl)
        m.fees += Decimal(fee)

    version = conn.execute("PRAGMA user_version").fetchone()[0]
    end_reason = "s.end_reason" if version >= 2 else "NULL"
    sessions = [
        SessionRow(*row)
        for row in conn.execute(
            "SELECT s.id, s.started_ms, s.ended_ms, s.pid, s.mode, s.network,"
            " (SELECT COUNT(*) FROM signals g WHERE g.session_id = s.id),"
            f" {end_reason} FROM sessions s ORDER BY s.started_ms, s.rowid"
        )
    ]
    rejections: dict[str, tuple[int, int]] = {}
    if version >= 2:
        for reason, n, benign in conn.execute(
            "SELECT reason, COUNT(*), SUM(benign) FROM rejections GROUP BY reason"
            " ORDER BY COUNT(*) DESC, reason"
        ):
            rejections[reason] = (n, benign)
    hardstops = [
        HardStopRow(*row)
        for row in conn.execute(
            "SELECT session_id, ts_ms, state, reason FROM hardstops ORDER BY ts_ms, id"
        )
    ]
    return Summary(
        path=path,
        sessions=sessions,
        markets=dict(sorted(markets.items())),
        followups=_followups(conn),
        hardstops=hardstops,
        rejections=rejections,
        schema_version=version,
        priority=_priority(conn, version),
    )


def _priority(conn: sqlite3.Connection, version: int) -> PriorityStats:
    stats = PriorityStats()
    # before version 3 no order paid priority: every entry is one without
    rate = "o.priority_rate" if version >= 3 else "NULL"
    for order_rate, filled in conn.execute(
        f"SELECT MAX({rate}), EXISTS (SELECT 1 FROM fills f WHERE f.cloid = o.cloid)"
        " FROM orders o WHERE o.purpose = 'entry' GROUP BY o.cloid"
    ):
        group = stats.with_priority if order_rate else stats.without
        group.entry_orders += 1
        group.entry_orders_filled += 1 if filled else 0
        group.rate_sum += order_rate or 0
    if version < 3:
        return stats
    for _rate, filled in conn.execute(
        "SELECT MAX(o.priority_rate), EXISTS (SELECT 1 FROM fills f WHERE f.cloid = o.cloid)"
        " FROM orders o WHERE o.purpose = 'strategy' AND o.priority_rate IS NOT NULL"
        " GROUP BY o.cloid"
    ):
        stats.strategy_orders += 1
        stats.strategy_orders_filled += 1 if filled else 0
    # exact decimals per fill (a fill seen twice has one tid, so one row)
    for px, sz, order_rate, purpose in conn.execute(
        "SELECT f.px, f.sz, o.rate, o.purpose FROM fills f JOIN"
        " (SELECT cloid, MAX(priority_rate) AS rate, MIN(purpose) AS purpose FROM orders"
        "  WHERE priority_rate IS NOT NULL GROUP BY cloid) o ON o.cloid = f.cloid"
    ):
        paid = Decimal(px) * Decimal(sz) * order_rate / _RATE_SCALE
        if purpose == "entry":
            stats.with_priority.paid_usd += paid
        elif purpose == "strategy":
            stats.strategy_paid_usd += paid
        else:
            stats.exits_paid_usd += paid
    return stats


def _mid(bid: str | None, ask: str | None) -> Decimal | None:
    if bid is None or ask is None:
        return None
    return (Decimal(bid) + Decimal(ask)) / 2


@dataclass(frozen=True)
class FollowupSample:
    """One follow-up of one observation signal (see FollowupStats for the measures)."""

    coin: str
    offset_s: float
    move_bps: float
    gap_closed: float | None


def followup_samples(conn: sqlite3.Connection) -> Iterator[FollowupSample]:
    """Every measurable follow-up of an observation signal: both sides of the book were known
    at the signal and at the follow-up."""
    rows = conn.execute(
        "SELECT s.coin, s.is_buy, s.bid_px, s.ask_px, s.oracle_px,"
        " f.offset_s, f.bid_px, f.ask_px, f.oracle_px"
        " FROM signal_followups f JOIN signals s ON s.id = f.signal_id"
        " WHERE s.outcome = 'observation'"
    )
    for coin, is_buy, bid0, ask0, oracle0, offset_s, bid1, ask1, oracle1 in rows:
        mid0, mid1 = _mid(bid0, ask0), _mid(bid1, ask1)
        if mid0 is None or mid1 is None or mid0 <= 0:
            continue  # one side of the book was missing: nothing to measure
        direction = 1 if is_buy else -1
        closed = None
        if oracle0 is not None and oracle1 is not None:
            gap0 = Decimal(oracle0) - mid0
            if gap0 != 0:
                closed = float(1 - (Decimal(oracle1) - mid1) / gap0)
        yield FollowupSample(
            coin=coin,
            offset_s=round(offset_s, 3),
            move_bps=float(direction * (mid1 - mid0) / mid0 * _BPS),
            gap_closed=closed,
        )


def followup_stats(samples: Iterable[FollowupSample]) -> list[FollowupStats]:
    """Means per offset, in offset order."""
    moves: dict[float, list[float]] = defaultdict(list)
    closes: dict[float, list[float]] = defaultdict(list)
    for x in samples:
        moves[x.offset_s].append(x.move_bps)
        if x.gap_closed is not None:
            closes[x.offset_s].append(x.gap_closed)
    out = []
    for offset in sorted(moves):
        m, c = moves[offset], closes.get(offset, [])
        out.append(
            FollowupStats(
                offset_s=offset,
                n=len(m),
                mean_move_bps=sum(m) / len(m),
                mean_gap_closed=sum(c) / len(c) if c else None,
            )
        )
    return out


def _followups(conn: sqlite3.Connection) -> list[FollowupStats]:
    return followup_stats(followup_samples(conn))


# ---- rendering ----


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _ended(s: SessionRow) -> str:
    if s.ended_ms is None:
        return "(open, or killed)"
    return _when(s.ended_ms) + (" (killed)" if s.end_reason == "killed" else "")


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line.rstrip()]
    for r in rows:
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
    return out


def render(summary: Summary) -> str:
    lines = [
        f"journal {summary.path} (schema {summary.schema_version}, opened read-only)",
        f"integrity: {summary.integrity} (PRAGMA integrity_check)",
        "",
    ]
    lines.append(f"sessions: {len(summary.sessions)}")
    if summary.sessions:
        lines += [
            "  " + row
            for row in _table(
                ["session", "started (UTC)", "ended (UTC)", "pid", "mode", "network", "signals"],
                [
                    [
                        s.id,
                        _when(s.started_ms),
                        _ended(s),
                        str(s.pid),
                        s.mode or "-",
                        s.network or "-",
                        str(s.signals),
                    ]
                    for s in summary.sessions
                ],
            )
        ]
    markets = list(summary.markets.values())
    total = summary.total
    lines += ["", "signals per market:"]
    if total.signals:
        lines += [
            "  " + row
            for row in _table(
                ["market", "signals", "mean edge bps", "sent", "observation", "blocked", "other"],
                [
                    [
                        m.coin,
                        str(m.signals),
                        _num(m.mean_edge_bps, ".2f"),
                        str(m.sent),
                        str(m.observation),
                        str(m.blocked),
                        str(m.other),
                    ]
                    for m in [*[m for m in markets if m.signals], total]
                ],
            )
        ]
        if total.blocked_by:
            gates = ", ".join(f"{g}={n}" for g, n in sorted(total.blocked_by.items()))
            lines.append(f"  blocked by gate: {gates}")
    else:
        lines.append("  (none)")

    lines += ["", "orders and PnL per market:"]
    traded = [m for m in markets if m.entry_orders or m.fills]
    if traded:
        lines += [
            "  " + row
            for row in _table(
                [
                    "market",
                    "entry orders",
                    "filled",
                    "fill rate",
                    "fills",
                    "realized pnl",
                    "fees",
                    "net",
                ],
                [
                    [
                        m.coin,
                        str(m.entry_orders),
                        str(m.entry_orders_filled),
                        _num(None if m.fill_rate is None else 100 * m.fill_rate, ".1f")
                        + ("%" if m.fill_rate is not None else ""),
                        str(m.fills),
                        str(m.realized_pnl),
                        str(m.fees),
                        str(m.net_pnl),
                    ]
                    for m in [*traded, total]
                ],
            )
        ]
    else:
        lines.append("  (no orders or fills)")

    lines += ["", "priority fees (IOC entries without and with one):"]
    pri = summary.priority
    groups = [("without", pri.without), ("with", pri.with_priority)]
    if any(g.entry_orders for _name, g in groups):
        lines += [
            "  " + row
            for row in _table(
                ["priority", "entry orders", "filled", "fill rate", "mean rate bps", "paid"],
                [
                    [
                        name,
                        str(g.entry_orders),
                        str(g.entry_orders_filled),
                        _num(None if g.fill_rate is None else 100 * g.fill_rate, ".1f")
                        + ("%" if g.fill_rate is not None else ""),
                        "-" if g.mean_rate_bps is None else f"{g.mean_rate_bps:.2f}",
                        f"{g.paid_usd:.6f}",
                    ]
                    for name, g in groups
                ],
            )
        ]
    else:
        lines.append("  (no entry orders)")
    lines += [
        f"  priority paid: {pri.paid_usd:.6f} USD (entries {pri.with_priority.paid_usd:.6f},"
        f" exits {pri.exits_paid_usd:.6f}, strategy orders {pri.strategy_paid_usd:.6f})",
        "  (px x sz x the order's rate per fill; the exchange takes it in HYPE from staking)",
    ]
    if pri.strategy_orders:
        lines.append(
            f"  strategy IOCs with priority: {pri.strategy_orders},"
            f" {pri.strategy_orders_filled} filled"
        )

    lines += ["", "observation follow-ups (book move towards the oracle):"]
    if summary.followups:
        lines += [
            "  " + row
            for row in _table(
                ["after", "n", "mean move bps", "mean gap closed"],
                [
                    [
                        f"+{f.offset_s:g}s",
                        str(f.n),
                        f"{f.mean_move_bps:+.2f}",
                        _num(None if f.mean_gap_closed is None else 100 * f.mean_gap_closed, "+.1f")
                        + ("%" if f.mean_gap_closed is not None else ""),
                    ]
                    for f in summary.followups
                ],
            )
        ]
    else:
        lines.append("  (none)")

    total_rejections = sum(n for n, _benign in summary.rejections.values())
    lines += ["", f"rejections: {total_rejections}"]
    for reason, (n, benign) in summary.rejections.items():
        lines.append(f"  {n:>6}  {reason}" + (f"  ({benign} benign)" if benign else ""))
    lines += ["", f"HardStop events: {len(summary.hardstops)}"]
    for h in summary.hardstops:
        reason = f" ({h.reason})" if h.reason else ""
        lines.append(f"  {_when(h.ts_ms)}  {h.state}{reason}  [session {h.session_id}]")
    return "\n".join(lines)


# ---- CSV export ----


def export_csv(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every journal table to `out_dir/<table>.csv` (header row, rows in id order,
    NULL as an empty cell). Returns the files written."""
    conn = open_existing(path)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        conn.close()
        raise JournalError(f"{out}: cannot create the CSV directory ({exc})") from exc
    written = []
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        # the known tables first, in the journal's own order, then anything newer
        ordered = [t for t in TABLES if t in names] + [t for t in names if t not in TABLES]
        for table in ordered:
            target = out / f"{table}.csv"
            cur = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
            header = [d[0] for d in cur.description]
            with target.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(("" if v is None else v for v in row) for row in cur)
            written.append(target)
    except OSError as exc:
        raise JournalError(f"{out}: cannot write CSV ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: journal is damaged ({exc})") from exc
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    return written
