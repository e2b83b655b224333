"""Round trips and post latency, read back from a journal.

A round trip is one entry the bot sent on a signal, followed to the fills that closed it:
signal -> entry order -> the entry's fills -> the exit's fills. The journal links them this way:

- signal -> entry order: the executor journals the entry order and then, in the same buffered
  batch (so one commit holds both or neither), its signal with outcome `sent`; entries are sent
  only on signals. So within one session and market the k-th `sent` signal is the k-th entry
  order, whatever the two clocks stamped.
- entry order -> fills: by cloid.
- entry -> exit: the bot enters only from flat (its gate refuses a market with a position or a
  pending entry), so the fills on the other side in that market after an entry filled reduce
  that entry's position until it is flat again; those are the exit's fills, whatever order
  sent them (time stop, mark regression, HardStop flatten, a restarted bot's flatten).

Post latency is measured from an order's `sent` transition to the next transition of that
order: the exchange's word on it (its post answer, or a fill on the stream when that came
first). When the next one is `lost` (timeout, disconnect) the post went unanswered, however
reconciliation settled the order later; so did one with nothing after `sent`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

_BPS = Decimal(10_000)


@dataclass
class RoundTrip:
    session_id: str
    coin: str
    is_buy: bool
    cloid: str
    signal_id: int | None
    edge_bps: float | None  # the detector's edge at the signal
    entry_ms: int | None = None  # the first entry fill
    exit_ms: int | None = None  # the fill that made the market flat again
    entry_sz: Decimal = Decimal(0)
    entry_notional: Decimal = Decimal(0)
    exit_sz: Decimal = Decimal(0)
    closed_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    exit_fills: int = 0

    @property
    def filled(self) -> bool:
        return self.entry_sz > 0

    @property
    def closed(self) -> bool:
        return self.filled and self.exit_sz >= self.entry_sz

    @property
    def net_pnl(self) -> Decimal:
        """Realized PnL of both legs less the fees of both legs."""
        return self.closed_pnl - self.fees

    @property
    def net_bps(self) -> float | None:
        """The net result in bps of what the entry bought or sold."""
        if not self.entry_notional:
            return None
        return float(self.net_pnl / self.entry_notional * _BPS)


def round_trips(conn: sqlite3.Connection) -> list[RoundTrip]:
    """Every entry order with its signal and, once filled, its exit; in the order sent."""
    signals: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for sid, session, coin, edge in conn.execute(
        "SELECT id, session_id, coin, edge_bps FROM signals WHERE outcome = 'sent' ORDER BY id"
    ):
        signals[(session, coin)].append((sid, edge))
    trips: dict[str, RoundTrip] = {}
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for session, coin, cloid, is_buy in conn.execute(
        "SELECT session_id, coin, cloid, is_buy FROM orders WHERE purpose = 'entry' ORDER BY id"
    ):
        key = (session, coin)
        k = taken[key]
        taken[key] += 1
        sid, edge = signals[key][k] if k < len(signals[key]) else (None, None)
        trips[cloid] = RoundTrip(
            session_id=session,
            coin=coin,
            is_buy=bool(is_buy),
            cloid=cloid,
            signal_id=sid,
            edge_bps=edge,
        )

    exiting: dict[str, RoundTrip] = {}  # coin -> the filled entry not yet flat
    for ts, coin, is_buy, px, sz, fee, pnl, cloid in conn.execute(
        "SELECT ts_ms, coin, is_buy, px, sz, fee, closed_pnl, cloid FROM fills ORDER BY ts_ms, tid"
    ):
        size = Decimal(sz)
        trip = trips.get(cloid) if cloid is not None else None
        if trip is not None:
            if trip.entry_ms is None:
                trip.entry_ms = ts
            trip.entry_sz += size
            trip.entry_notional += size * Decimal(px)
            trip.fees += Decimal(fee)
            trip.closed_pnl += Decimal(pnl)
            exiting[coin] = trip
            continue
        trip = exiting.get(coin)
        if trip is None or bool(is_buy) == trip.is_buy:
            continue  # not closing a round trip of ours (another client's, or adopted)
        trip.exit_sz += size
        trip.fees += Decimal(fee)
        trip.closed_pnl += Decimal(pnl)
        trip.exit_fills += 1
        if trip.closed:
            trip.exit_ms = ts
            del exiting[coin]
    return list(trips.values())


# Upper bounds (ms, exclusive) of the latency histogram's buckets; the last one is open.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True)
class PostLatency:
    latencies_ms: list[int]  # per answered order, in the order sent
    unanswered: int  # sent, and no answer journaled (lost, or the journal ends first)

    def buckets(self) -> list[tuple[str, int]]:
        """(label, count) per bucket of LATENCY_BUCKETS_MS, then the open last one."""
        counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for ms in self.latencies_ms:
            i = next((k for k, b in enumerate(LATENCY_BUCKETS_MS) if ms < b), -1)
            counts[i] += 1
        labels, low = [], 0
        for b in LATENCY_BUCKETS_MS:
            labels.append(f"{low}-{b}")
            low = b
        labels.append(f">={low}")
        return list(zip(labels, counts, strict=True))

    def percentile(self, q: float) -> int | None:
        """The smallest latency at or above a fraction `q` of the answered orders."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least the first
        return ordered[int(rank) - 1]


def post_latency(conn: sqlite3.Connection) -> PostLatency:
    sent: dict[tuple[str, str], int] = {}
    decided: set[tuple[str, str]] = set()  # the transition after `sent` was seen
    latencies: list[int] = []
    # By the states entered rather than the event names: only `sent` enters `sent`, and only
    # `lost` leaves it for `unknown`; a version 1 journal named its events differently.
    for session, cloid, ts, target in conn.execute(
        "SELECT session_id, cloid, ts_ms, target FROM order_transitions ORDER BY id"
    ):
        key = (session, cloid)
        if target == "sent":
            sent.setdefault(key, ts)
        elif key in sent and key not in decided:
            decided.add(key)
            if target != "unknown":  # lost: unanswered, however reconciliation settled it
                latencies.append(ts - sent[key])
    return PostLatency(latencies_ms=latencies, unanswered=len(sent) - len(latencies))
