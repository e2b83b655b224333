"""The end-of-run summary, and the final check of positions against the exchange.

The check opens its own short connection and asks `clearinghouseState` and `openOrders` for
every traded dex, so it does not depend on anything the bot believed during the run.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import msgspec
import websockets

from hip3.protocol import frames as F
from hip3.runtime.safety import STOP_REASON


async def exchange_state(
    ws_url: str, user: str, dexes: list[str], timeout_s: float = 5.0
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """What is open on the exchange, for every dex in `dexes`: coin -> signed size, and the
    open orders (coin, side, size, price, oid)."""
    positions: dict[str, str] = {}
    orders: list[dict[str, Any]] = []
    requests: dict[int, tuple[str, str]] = {}
    for dex in dexes:
        requests[len(requests) + 1] = ("clearinghouseState", dex)
        requests[len(requests) + 1] = ("openOrders", dex)
    async with asyncio.timeout(timeout_s), websockets.connect(ws_url, ping_interval=None) as ws:
        for i, (kind, dex) in requests.items():
            await ws.send(
                F.encode_post_info(i, {"type": kind, "user": user, "dex": dex}),
                text=True,  # the exchange reads text frames; the encoder gives their bytes
            )
        pending = set(requests)
        while pending:
            frame = F.decode_frame(await ws.recv())
            if not isinstance(frame, F.PostFrame) or frame.data.id not in pending:
                continue
            pending.discard(frame.data.id)
            kind = requests[frame.data.id][0]
            err = F.action_error(frame)
            if err is not None:
                raise RuntimeError(f"{kind} failed: {err}")
            answer = msgspec.json.decode(frame.data.response.payload.data)
            if kind == "clearinghouseState":
                for ap in answer.get("assetPositions", []):
                    pos = ap["position"]
                    if Decimal(pos["szi"]) != 0:
                        positions[pos["coin"]] = str(Decimal(pos["szi"]))
            else:
                orders.extend(
                    {
                        "coin": o["coin"],
                        "side": o["side"],
                        "sz": o["sz"],
                        "px": o["limitPx"],
                        "oid": o["oid"],
                    }
                    for o in answer
                )
    return dict(sorted(positions.items())), sorted(orders, key=lambda o: o["oid"])


def last_known_open_orders(d: Any) -> list[dict[str, Any]]:
    """The orders the bot last knew as possibly open (resting, in flight or unknown)."""
    return [
        {
            "coin": info.coin,
            "side": "B" if info.is_buy else "A",
            "sz": str(info.size),
            "px": info.px,
            "oid": m.oid,
            "state": m.state,
        }
        for info, m in d.orders.open_orders()
    ]


def build_summary(
    d: Any,
    *,
    exchange: tuple[dict[str, str], list[dict[str, Any]]] | None,
    check_error: str | None,
) -> dict:
    orders: dict[str, int] = dict(d.orders.final_counts)
    for _info, m in d.orders.live_orders():
        orders[m.state] = orders.get(m.state, 0) + 1
    positions = d.positions.signed_sizes()
    open_orders = last_known_open_orders(d)
    exchange_positions, exchange_orders = exchange if exchange is not None else (None, None)
    stop_timed_out = bool(getattr(d, "shutdown_timed_out", False))
    # the final check alone would hide a run whose view of positions diverged on the way
    divergences = d.positions.divergence_report()
    # Reconciled: the exchange answered the final check, it agrees with the bot on positions
    # and on which orders are open, no divergence was seen on the way, and the stop finished
    # its own cancel/flatten/verify.
    reconciled = (
        exchange is not None
        and {c: Decimal(s) for c, s in positions.items()}
        == {c: Decimal(s) for c, s in exchange_positions.items()}
        and sorted(o["oid"] for o in open_orders if o["oid"] is not None)
        == [o["oid"] for o in exchange_orders]
        and all(o["oid"] is not None for o in open_orders)
        and not divergences
        and not stop_timed_out
    )
    trading = d.cfg.mode == "trading"
    if not trading:
        # observation sends nothing and reads no account: there is nothing to reconcile, and
        # saying False (or True) would claim a check that was never made
        reconciled = None
    entries = d.executor.entries_sent
    return {
        "mode": d.cfg.mode,
        "signals": d.signals_seen,
        # every order written: entries, a strategy's own orders (modifies included), plus
        # exits (reduce-only flattens and time stops)
        "orders_submitted": d.executor.submitted,
        "entries_submitted": entries,
        "strategy_orders_submitted": d.executor.strategy_sent,
        "strategy_modifies_submitted": d.executor.strategy_modifies,
        "exits_submitted": d.executor.submitted - entries - d.executor.strategy_sent,
        "orders": dict(sorted(orders.items())),
        "gate_blocks": dict(sorted(d.executor.blocked.items())),
        "fills": d.positions.fills_applied,
        # fills delivered again (reconciliation re-reads fills the stream already applied),
        # ignored by trade id; normal, so kept out of the printed summary
        "fill_repeats_ignored": d.positions.duplicates,
        "positions": positions,
        "open_orders": open_orders,
        "exchange_positions": exchange_positions,
        "exchange_open_orders": exchange_orders,
        "reconciled": reconciled,
        "position_divergences": divergences,
        "reconcile_error": check_error,
        "stop_timed_out": stop_timed_out,
        "realized_pnl": str(d.positions.realized()),
        "fees": str(d.positions.total_fees()),
        "ready_latency_ms": {str(k): v for k, v in sorted(d.ready_latency_ms.items())},
        "epochs": d.conn.epoch,
        "reconnects": d.reconnects,
        "hardstop": {"state": d.hardstop.state, "reasons": list(d.hardstop.reasons)},
        # per traded dex: its collateral token (the unit of the risk limits on that dex), and
        # its account value and available margin as last read
        "collateral": {dex: dict(v) for dex, v in sorted(d.reconciler.collateral.items())},
        "stop": stop_outcome(d),
        "fatal": d.fatal,
        "account_refused": d.account_refused,
        "actions_sent": d.wire.actions_sent,
        "dead_mans_switch": d.dead_mans_switch.describe(),
        "stale_streams": {
            "silences": dict(sorted(d.streams.silence_counts.items())),
            "resubscribes": dict(sorted(d.streams.retry_counts.items())),
            "reconnects": dict(sorted(d.streams.reconnect_counts.items())),
        },
    }


def stop_outcome(d: Any) -> str:
    """How the run ended, in the operator's words. The graceful stop runs its cancel and
    flatten through the HardStop machine, so `halted` with only the stop's own reason is a
    normal stop, not a HardStop."""
    reasons = [r for r in d.hardstop.reasons if r != STOP_REASON]
    if reasons:
        return f"HardStop {d.hardstop.state}: {'; '.join(reasons)}"
    if d.fatal:
        return "stopped on a fatal error"
    return "stopped"


def render(summary: dict) -> str:
    lines = ["", "=== hip3 bot summary ==="]
    for key in (
        "mode",
        "signals",
        "entries_submitted",
        "strategy_orders_submitted",
        "exits_submitted",
        "orders",
        "gate_blocks",
        "fills",
        "positions",
        "open_orders",
        "exchange_positions",
        "exchange_open_orders",
        "realized_pnl",
        "fees",
        "ready_latency_ms",
        "epochs",
        "reconnects",
        "collateral",
        "stop",
        "position_divergences",
        "reconciled",
    ):
        if key in ("collateral", "strategy_orders_submitted") and key not in summary:
            continue  # a summary written before the key was reported
        value = summary[key]
        if key == "reconciled" and value is None:
            value = "not checked (observation mode: nothing sent, no account read)"
        lines.append(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")
    if summary.get("stop_timed_out"):
        lines.append("stop_timed_out: True (the stop could not finish cancelling/flattening)")
    if summary.get("reconcile_error"):
        lines.append(f"reconcile_error: {summary['reconcile_error']}")
    if summary.get("fatal"):
        lines.append(f"fatal: {summary['fatal']}")
    if summary.get("account_refused"):
        lines.append(f"account_refused: {summary['account_refused']}")
    dms = summary.get("dead_mans_switch") or {}
    if dms.get("state", "off") != "off":
        line = f"dead_mans_switch: {dms['state']}"
        lines.append(line + (f" ({dms['detail']})" if dms.get("detail") else ""))
    streams = summary.get("stale_streams") or {}
    if streams.get("silences"):
        lines.append(f"stale_streams: {json.dumps(streams)}")
    return "\n".join(lines)
