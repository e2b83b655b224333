"""The live terminal view of a running bot: `render_status` (pure) and `run_status` (redraw).

`render_status` reads the dispatcher and returns plain text: connection and READY, each market's
READY-MD, best bid/ask, oracle and edge, positions, open orders, HardStop, and the counters
that explain why the bot did or did not trade. `run_status` redraws it about twice a second
with two ANSI escapes (home, clear) when the stream is a terminal, and does nothing otherwise,
so piped output stays plain logs. Rendering a few dozen lines takes well under a millisecond;
it runs on the event loop between events, never inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

log = logging.getLogger(__name__)

_BPS = Decimal(10_000)
_HOME_CLEAR = "\x1b[H\x1b[2J"
MAX_ORDERS_SHOWN = 12


def _px(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


def _quote(px: Decimal | None, sz: Decimal | None) -> str:
    return "-" if px is None else f"{_px(px)} x {_px(sz)}"


def edge_bps(st: Any) -> tuple[Decimal, str] | None:
    """The better side's dislocation against the oracle, in bps, and its side.

    Positive means the quote is stale in the taker's favour (an ask below or a bid above the
    oracle); None without an oracle or a book.
    """
    oracle = st.oracle_px
    if oracle is None or oracle <= 0:
        return None
    best: tuple[Decimal, str] | None = None
    if st.ask_px is not None:
        best = ((oracle - st.ask_px) / oracle * _BPS, "buy")
    if st.bid_px is not None:
        sell = ((st.bid_px - oracle) / oracle * _BPS, "sell")
        if best is None or sell[0] > best[0]:
            best = sell
    return best


def _age(seconds: float) -> str:
    if seconds == float("inf"):
        return "never"
    return f"{seconds:.1f}s" if seconds < 100 else f"{seconds / 60:.0f}m"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def render_status(d: Any, now_ns: int, last_error: Callable[[], str | None] | None = None) -> str:
    """A snapshot of the bot as text; `now_ns` is the perf_counter_ns clock the reader uses.
    `last_error` gives the last connection error, shown while the connection is not live
    (a view that says only `backoff` does not say why)."""
    ready_trading = d.ready.trading(now_ns)
    hs = d.hardstop
    lines = [
        f"hip3 {d.cfg.mode}  epoch {d.conn.epoch} {d.conn.state}"
        f"  READY-TRADING {'yes' if ready_trading else 'no'}"
        f"  HardStop {hs.state}"
        f"  inbox {len(d.inbox)}  posts in flight {d.wire.posts.inflight.count}",
    ]
    if d.conn.state != "live" and last_error is not None:
        error = last_error()
        if error:
            lines.append(f"  last connection error: {error}")
    dms = d.dead_mans_switch
    if dms.state != "off":
        detail = dms.message()
        lines.append(f"  dead man's switch: {dms.state}" + (f": {detail}" if detail else ""))
    silent = d.streams.silent_streams()
    if silent:
        lines.append(
            "  silent streams (resubscribes): "
            + ", ".join(f"{key} ({n})" for key, n in sorted(silent.items()))
        )
    collateral = getattr(getattr(d, "reconciler", None), "collateral", None) or {}
    if collateral:
        # risk limits on a dex are in its collateral token: say which token that is
        lines.append(
            "  collateral: "
            + "; ".join(
                f"{dex or '(first dex)'} {c.get('token', '?')}"
                f" value {c.get('account_value', '?')} available {c.get('available', '?')}"
                for dex, c in sorted(collateral.items())
            )
        )
    reasons = list(getattr(hs, "reasons", None) or ())
    if reasons:
        lines.append("  HardStop reasons: " + "; ".join(str(r) for r in reasons))
    if not ready_trading and d.readiness is not None:
        missing = list(d.readiness.missing())
        if missing:
            lines.append(
                "  waiting for: " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            )
    lines.append("")
    rows = [["MARKET", "READY", "DATA", "BID", "ASK", "ORACLE", "EDGE bps", "BBO AGE"]]
    excluded = dict(d.readiness.excluded) if d.readiness is not None else {}
    for coin, st in d.markets.items():
        ready = (
            "excluded" if coin in excluded else ("yes" if d.ready.market(coin, now_ns) else "no")
        )
        e = edge_bps(st)
        # the market state's one freshness verdict, then what the exchange's book says
        data = st.stale_reason(now_ns) or ("halted" if st.halted else "fresh")
        if st.future_books:
            data += f" ({st.future_books} future books dropped)"
        rows.append(
            [
                coin,
                ready,
                data,
                _quote(st.bid_px, st.bid_sz),
                _quote(st.ask_px, st.ask_sz),
                _px(st.oracle_px),
                "-" if e is None else f"{e[0]:+.1f} {e[1]}",
                _age(st.bbo_age_s(now_ns)),
            ]
        )
    lines += _table(rows)
    lines.append("")
    open_positions = [(c, p) for c, p in d.positions.positions.items() if p.size]
    if open_positions:
        rows = [["POSITION", "SIZE", "ENTRY", "NOTIONAL", "UNREALIZED", "REALIZED", "FEES"]]
        for coin, p in open_positions:
            st = d.markets.get(coin)
            ref = st.reference_px() if st is not None else None
            rows.append(
                [
                    coin,
                    f"{p.size:+f}",
                    _px(p.entry_px),
                    f"{p.notional(ref if ref is not None else p.entry_px):.2f}",
                    "-" if ref is None else f"{p.unrealized(ref):+.4f}",
                    f"{p.realized_pnl:+.4f}",
                    f"{p.fees:.4f}",
                ]
            )
        lines += _table(rows)
    else:
        lines.append("POSITIONS  none")
    realized = sum((p.realized_pnl for p in d.positions.positions.values()), Decimal(0))
    fees = sum((p.fees for p in d.positions.positions.values()), Decimal(0))
    lines.append(f"  session realized {realized:+.4f}  fees {fees:.4f}")
    lines.append("")
    live = d.orders.live_orders()
    if live:
        rows = [["ORDER", "COIN", "SIDE", "PX", "SZ", "STATE", "PURPOSE"]]
        for info, m in live[:MAX_ORDERS_SHOWN]:
            rows.append(
                [
                    info.cloid[:12] + "…",
                    info.coin,
                    "buy" if info.is_buy else "sell",
                    info.px,
                    _px(info.size),
                    m.state,
                    info.purpose,
                ]
            )
        lines += _table(rows)
        if len(live) > MAX_ORDERS_SHOWN:
            lines.append(f"  ... and {len(live) - MAX_ORDERS_SHOWN} more")
    else:
        lines.append("OPEN ORDERS  none")
    lines.append("")
    ex = d.executor
    lines.append(
        f"signals {d.signals_seen}  submitted {ex.submitted}"
        f" (entries {ex.entries_sent}, exits {ex.submitted - ex.entries_sent})"
        f"  fills {d.positions.fills_applied}"
        f"  reconnects {d.reconnects}  post timeouts {d.wire.posts.timeouts}"
    )
    final = dict(d.orders.final_counts)
    if final:
        lines.append("orders " + "  ".join(f"{k} {v}" for k, v in sorted(final.items())))
    blocked = dict(ex.blocked)
    if blocked:
        top = sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append("blocked " + "  ".join(f"{k} {v}" for k, v in top))
    if d.ready_latency_ms:
        last = max(d.ready_latency_ms)
        lines.append(f"READY after {d.ready_latency_ms[last]} ms in epoch {last}")
    return "\n".join(lines) + "\n"


async def run_status(
    d: Any,
    stream: TextIO,
    interval_s: float = 0.5,
    last_error: Callable[[], str | None] | None = None,
) -> None:
    """Redraw the view on `stream` until the dispatcher finishes; no-op unless it is a TTY."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return
    while not d.finished.is_set():
        try:
            text = render_status(d, time.perf_counter_ns(), last_error)
            stream.write(_HOME_CLEAR + text)
            stream.flush()
        except (OSError, ValueError):
            return  # the terminal went away: the bot keeps running, with logs only
        except Exception:
            log.exception("status view failed; continuing without it")
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(d.finished.wait(), interval_s)
