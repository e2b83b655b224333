"""The end-of-run summary, and the final check of positions against the exchange.

The check opens its own short connection and asks `clearinghouseState` for every traded dex,
so it does not depend on anything the bot believed during the run.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import msgspec
import websockets

from hip3.protocol import frames as F


async def exchange_positions(
    ws_url: str, user: str, dexes: list[str], timeout_s: float = 5.0
) -> dict[str, str]:
    """coin -> signed size as the exchange reports it, for every dex in `dexes`."""
    out: dict[str, str] = {}
    async with asyncio.timeout(timeout_s), websockets.connect(ws_url, ping_interval=None) as ws:
        for i, dex in enumerate(dexes, start=1):
            await ws.send(
                F.encode_post_info(i, {"type": "clearinghouseState", "user": user, "dex": dex}),
                text=True,  # the exchange reads text frames; the encoder gives their bytes
            )
        pending = set(range(1, len(dexes) + 1))
        while pending:
            frame = F.decode_frame(await ws.recv())
            if not isinstance(frame, F.PostFrame) or frame.data.id not in pending:
                continue
            pending.discard(frame.data.id)
            err = F.action_error(frame)
            if err is not None:
                raise RuntimeError(f"clearinghouseState failed: {err}")
            state = msgspec.json.decode(frame.data.response.payload.data)
            for ap in state.get("assetPositions", []):
                pos = ap["position"]
                if Decimal(pos["szi"]) != 0:
                    out[pos["coin"]] = str(Decimal(pos["szi"]))
    return dict(sorted(out.items()))


def build_summary(d: Any, *, exchange: dict[str, str] | None, check_error: str | None) -> dict:
    orders: dict[str, int] = dict(d.orders.final_counts)
    for _info, m in d.orders.live_orders():
        orders[m.state] = orders.get(m.state, 0) + 1
    positions = d.positions.signed_sizes()
    ours = {c: Decimal(s) for c, s in positions.items()}
    theirs = {c: Decimal(s) for c, s in (exchange or {}).items()}
    # the final check alone would hide a run whose view of positions diverged on the way
    divergences = d.positions.divergence_report()
    reconciled = exchange is not None and ours == theirs and not divergences
    return {
        "mode": d.cfg.mode,
        "signals": d.signals_seen,
        "orders_submitted": d.executor.submitted,
        "orders": dict(sorted(orders.items())),
        "gate_blocks": dict(sorted(d.executor.blocked.items())),
        "fills": d.positions.fills_applied,
        "duplicate_fills_ignored": d.positions.duplicates,
        "positions": positions,
        "exchange_positions": exchange,
        "reconciled": reconciled,
        "position_divergences": divergences,
        "reconcile_error": check_error,
        "realized_pnl": str(d.positions.realized()),
        "fees": str(d.positions.total_fees()),
        "ready_latency_ms": {str(k): v for k, v in sorted(d.ready_latency_ms.items())},
        "epochs": d.conn.epoch,
        "reconnects": d.reconnects,
        "hardstop": {"state": d.hardstop.state, "reasons": list(d.hardstop.reasons)},
        "fatal": d.fatal,
    }


def render(summary: dict) -> str:
    lines = ["", "=== hip3 bot summary ==="]
    for key in (
        "mode",
        "signals",
        "orders_submitted",
        "orders",
        "gate_blocks",
        "fills",
        "positions",
        "exchange_positions",
        "realized_pnl",
        "fees",
        "ready_latency_ms",
        "epochs",
        "reconnects",
        "hardstop",
        "position_divergences",
        "reconciled",
    ):
        value = summary[key]
        lines.append(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")
    if summary.get("reconcile_error"):
        lines.append(f"reconcile_error: {summary['reconcile_error']}")
    if summary.get("fatal"):
        lines.append(f"fatal: {summary['fatal']}")
    return "\n".join(lines)
