"""The dashboard's one reader of the running bot: every attribute of the dispatcher the
dashboard uses is named in this module, so a change in the runtime's layout is fixed here.

`BotSource` turns the dispatcher's state into plain JSON-ready values. It must run ON the
event loop (the server hops there for it): the loop handles one event at a time, to
completion, so a snapshot taken between events is consistent — a position and the fill that
made it, a market's bid and ask, never half of an update. Prices and sizes travel as exact
decimal strings; the chart's series are floats, since a chart has no use for exactness.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hip3.events import OperatorCommand
from hip3.metrics.status import edge_bps

ZERO = Decimal(0)
# Open orders beyond this many are counted, not listed: a page is not a ledger.
MAX_ORDERS_LISTED = 50


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _age(seconds: float) -> float | None:
    return None if seconds == float("inf") else round(seconds, 3)


@dataclass(frozen=True, slots=True)
class MoneySample:
    """The session's money at one moment: what the PnL and fees charts plot."""

    t_ms: int
    realized: float
    fees: float
    unrealized: float

    @property
    def net(self) -> float:
        return self.realized - self.fees + self.unrealized

    def as_json(self) -> dict[str, Any]:
        return {
            "t_ms": self.t_ms,
            "realized": self.realized,
            "fees": self.fees,
            "unrealized": self.unrealized,
            "net": self.net,
        }


class BotSource:
    """Reads one dispatcher (on the loop) and puts operator commands into it."""

    def __init__(self, dispatcher: Any, latency: Any = None) -> None:
        self._d = dispatcher
        # post latencies by kind: answered scheduleCancel posts are the switch's renewals
        self._latency = latency

    # --- money ----------------------------------------------------------------------------

    def _money(self) -> tuple[Decimal, Decimal, Decimal]:
        d = self._d
        realized = fees = unrealized = ZERO
        for coin, p in d.positions.positions.items():
            realized += p.realized_pnl
            fees += p.fees
            if p.size:
                st = d.markets.get(coin)
                ref = st.reference_px() if st is not None else None
                if ref is not None:
                    unrealized += p.unrealized(ref)
        return realized, fees, unrealized

    def money_sample(self) -> MoneySample:
        realized, fees, unrealized = self._money()
        return MoneySample(self._d.clock.wall_ms(), float(realized), float(fees), float(unrealized))

    def schedule_cancel_renewals(self) -> int:
        """scheduleCancel posts the exchange answered (accepted or refused) this run."""
        posts = getattr(self._latency, "posts", None)
        buckets = posts.get("schedule_cancel") if posts is not None else None
        return 0 if buckets is None else buckets.count

    # --- the snapshot -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        d = self._d
        now_ns = d.clock.now_ns()
        readiness = d.readiness
        excluded = dict(readiness.excluded) if readiness is not None else {}
        ready_trading = d.ready.trading(now_ns)
        hs = d.hardstop
        realized, fees, unrealized = self._money()
        return {
            "time_ms": d.clock.wall_ms(),
            "mode": d.cfg.mode,
            "network": d.cfg.network,
            "finished": d.finished.is_set(),
            "connection": {
                "state": d.conn.state,
                "epoch": d.conn.epoch,
                "ready_trading": ready_trading,
                "waiting_for": []
                if ready_trading or readiness is None
                else list(readiness.missing()),
                "reconnects": d.reconnects,
                "inbox": len(d.inbox),
                "posts_in_flight": d.wire.posts.inflight.count,
            },
            "hardstop": {"state": hs.state, "reasons": [str(r) for r in hs.reasons]},
            "dead_mans_switch": self._dead_mans_switch(),
            "markets": [self._market(coin, st, excluded, now_ns) for coin, st in d.markets.items()],
            "positions": self._positions(),
            "open_orders": self._orders(),
            "pnl": {
                "realized": _dec(realized),
                "fees": _dec(fees),
                "unrealized": _dec(unrealized),
                "net": _dec(realized - fees + unrealized),
            },
            "counters": {
                "signals": d.signals_seen,
                "entries": d.executor.entries_sent,
                "exits": d.executor.submitted - d.executor.entries_sent,
                "fills": d.positions.fills_applied,
                "post_timeouts": d.wire.posts.timeouts,
                "blocked": dict(d.executor.blocked),
                "orders_final": dict(d.orders.final_counts),
            },
        }

    def _market(self, coin: str, st: Any, excluded: dict[str, Any], now_ns: int) -> dict[str, Any]:
        edge = edge_bps(st)
        return {
            "coin": coin,
            "ready": "excluded"
            if coin in excluded
            else ("yes" if self._d.ready.market(coin, now_ns) else "no"),
            "data": st.stale_reason(now_ns) or ("halted" if st.halted else "fresh"),
            "bid_px": _dec(st.bid_px),
            "bid_sz": _dec(st.bid_sz),
            "ask_px": _dec(st.ask_px),
            "ask_sz": _dec(st.ask_sz),
            "oracle_px": _dec(st.oracle_px),
            "mark_px": _dec(st.mark_px),
            "edge_bps": None if edge is None else round(float(edge[0]), 2),
            "edge_side": None if edge is None else edge[1],
            "bbo_age_s": _age(st.bbo_age_s(now_ns)),
        }

    def _positions(self) -> list[dict[str, Any]]:
        d = self._d
        out = []
        for coin, p in d.positions.positions.items():
            if not p.size:
                continue
            st = d.markets.get(coin)
            ref = st.reference_px() if st is not None else None
            out.append(
                {
                    "coin": coin,
                    "size": _dec(p.size),
                    "entry_px": _dec(p.entry_px),
                    "reference_px": _dec(ref),
                    "notional": _dec(p.notional(ref if ref is not None else p.entry_px)),
                    "unrealized": None if ref is None else _dec(p.unrealized(ref)),
                    "realized": _dec(p.realized_pnl),
                    "fees": _dec(p.fees),
                }
            )
        return out

    def _orders(self) -> dict[str, Any]:
        live = self._d.orders.live_orders()
        return {
            "count": len(live),
            "listed": [
                {
                    "cloid": info.cloid,
                    "coin": info.coin,
                    "side": "buy" if info.is_buy else "sell",
                    "px": info.px,
                    "size": _dec(info.size),
                    "state": m.state,
                    "purpose": info.purpose,
                }
                for info, m in live[:MAX_ORDERS_LISTED]
            ],
        }

    def _dead_mans_switch(self) -> dict[str, Any]:
        d = self._d
        dms = d.cfg.dead_mans_switch
        return {
            "enabled": dms.enabled,
            # renewed only while trading on a live connection (see hip3/runtime/dead_mans_switch.py)
            "renewing": dms.enabled
            and d.trading
            and d.conn.state == "live"
            and not d.dead_mans_switch.unavailable,
            "interval_s": dms.interval_s,
            "lead_s": dms.lead_s,
            "renewals": self.schedule_cancel_renewals(),
            "refused": d.counters.get("dms_refused", 0),
            # off, pending, active, unavailable (the exchange's volume gate) or refused
            "state": d.dead_mans_switch.state,
            "detail": d.dead_mans_switch.message(),
        }

    # --- operator -------------------------------------------------------------------------

    def operator(self, kind: str, detail: str) -> bool:
        """Put an operator command in the dispatcher's inbox (on the loop, like a signal's);
        False, and nothing put, once the dispatcher has finished and would never handle it."""
        if self._d.finished.is_set():
            return False
        self._d.put(OperatorCommand(kind, detail))
        return True

    def finished(self) -> bool:
        return self._d.finished.is_set()
