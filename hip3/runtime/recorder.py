"""What the dispatcher tells the journal: signals and their follow-ups, orders and every
transition, fills, periodic position snapshots, HardStop events.

Journal calls only append to a buffer; `tick()` flushes it as one transaction, so nothing here
adds I/O to the hot path. Without a journal every method is a cheap no-op.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hip3.market.state import MarketState

FOLLOWUP_OFFSETS_S = (1.0, 3.0, 5.0)
POSITION_SNAPSHOT_EVERY_MS = 5_000


def _s(x: Any) -> str | None:
    return None if x is None else str(x)


class Recorder:
    def __init__(self, journal: Any | None, *, observation: bool, flush_every_ms: int = 0) -> None:
        """`flush_every_ms`: how often (bot clock) `tick` commits the buffered rows. The live
        bot commits on every tick (0), so a crash loses at most one tick's rows; a backtest,
        which a crash makes rerun from its data anyway, commits less often (one transaction
        per tick was ~70 µs of a busy backtest's tick). The rows and their order are the same
        either way: each table's rows are inserted in the order they were recorded."""
        if flush_every_ms < 0:
            raise ValueError(f"flush_every_ms must be >= 0, got {flush_every_ms}")
        self.journal = journal
        self.observation = observation
        self.flush_every_ms = flush_every_ms
        self._next_flush_ms = 0
        self._followups: deque[tuple[int, int, float, str]] = deque()  # (due_ms, id, offset, coin)
        self._next_snapshot_ms = 0

    @property
    def enabled(self) -> bool:
        return self.journal is not None

    def signal(self, sig: Any, st: MarketState, outcome: str, *, now_ms: int, wall_ms: int) -> None:
        j = self.journal
        if j is None:
            return
        sid = j.signal(
            ts_ms=wall_ms,
            coin=sig.coin,
            is_buy=sig.is_buy,
            ref_px=str(sig.ref_px),
            oracle_px=_s(st.oracle_px),
            mark_px=_s(st.mark_px),
            bid_px=_s(st.bid_px),
            ask_px=_s(st.ask_px),
            edge_bps=float(sig.edge_bps),
            size=str(sig.size),
            outcome=outcome,
        )
        if self.observation:
            for offset in FOLLOWUP_OFFSETS_S:
                self._followups.append((now_ms + int(offset * 1000), sid, offset, sig.coin))

    def transition(self, cloid: str, source: str, target: str, event: str, *, wall_ms: int) -> None:
        if self.journal is not None:
            self.journal.order_transition(
                ts_ms=wall_ms, cloid=cloid, source=source, target=target, event=event
            )

    def fill(self, f: Any, *, snapshot: bool) -> None:
        if self.journal is not None:
            self.journal.fill(
                ts_ms=f.time,
                tid=f.tid,
                coin=f.coin,
                is_buy=f.side == "B",
                px=f.px,
                sz=f.sz,
                fee=f.fee or "0",
                closed_pnl=f.closed_pnl or "0",
                oid=f.oid,
                cloid=f.cloid,
                snapshot=snapshot,
            )

    def rejection(self, cloid: str, coin: str, reason: str, *, benign: bool, wall_ms: int) -> None:
        if self.journal is not None:
            self.journal.rejection(
                ts_ms=wall_ms, cloid=cloid, coin=coin, reason=reason, benign=benign
            )

    def hardstop(self, state: str, reason: str, *, wall_ms: int) -> None:
        if self.journal is not None:
            self.journal.hardstop(ts_ms=wall_ms, state=state, reason=reason)

    def tick(
        self, *, now_ms: int, wall_ms: int, markets: dict[str, MarketState], positions: Any
    ) -> None:
        j = self.journal
        if j is None:
            return
        q = self._followups
        while q and q[0][0] <= now_ms:
            _due, sid, offset, coin = q.popleft()
            m = markets.get(coin)
            if m is not None:
                j.signal_followup(
                    sid,
                    offset_s=offset,
                    ts_ms=wall_ms,
                    bid_px=_s(m.bid_px),
                    ask_px=_s(m.ask_px),
                    oracle_px=_s(m.oracle_px),
                    mark_px=_s(m.mark_px),
                )
        if now_ms >= self._next_snapshot_ms:
            self._next_snapshot_ms = now_ms + POSITION_SNAPSHOT_EVERY_MS
            j.position_snapshot(
                ts_ms=wall_ms,
                positions={
                    c: (str(p.size), str(p.entry_px))
                    for c, p in positions.positions.items()
                    if p.size
                },
            )
        if now_ms >= self._next_flush_ms:
            self._next_flush_ms = now_ms + self.flush_every_ms
            j.flush()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.flush()
            self.journal.close()
