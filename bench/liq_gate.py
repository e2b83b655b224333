"""What the liquidation-buffer gate costs an entry that every other gate allowed.

    python -m bench.liq_gate [n_calls]

The gate (hip3/execution/liquidation.py) runs last on the entry path when a market has
`min_liq_buffer_ratio` set: it projects the position after the order and its liquidation
price from the dex's last clearinghouseState. Measured on a dex whose state holds `positions`
other positions (cross, so each one's maintenance margin is summed) and on an isolated market
(only its own position counts), per call, the best of three rounds; plus the cost of reading
a clearinghouseState answer (once per state read, off the entry path). Prints
`RESULT case=<name> positions=<n> us=<per call>` lines and a calibration line.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from types import SimpleNamespace

from bench.tick_to_post import calibration_ns
from hip3.execution.liquidation import LiquidationBuffer
from hip3.market.state import MarketSpec

_ROUNDS = 3
COIN = "xyz:AAA"


def _state(others: int) -> dict:
    rows = [
        {
            "position": {
                "coin": f"xyz:M{i}",
                "szi": "2",
                "positionValue": "50",
                "marginUsed": "10",
                "maxLeverage": 10,
                "leverage": {"type": "cross", "value": 5},
            }
        }
        for i in range(others)
    ]
    return {"assetPositions": rows, "marginSummary": {"accountValue": "100000"}}


def _gate(cross: bool, others: int) -> LiquidationBuffer:
    gate = LiquidationBuffer(
        ratios={COIN: Decimal("0.15")},
        specs={COIN: MarketSpec(COIN, "xyz", 110000, 2, max_leverage=10)},
        markets={COIN: SimpleNamespace(mark_px=Decimal("25.02"))},
        settings={COIN: (cross, 3)}.get,
        tracked_size=lambda coin: Decimal(0),
    )
    gate.note_state("xyz", _state(others))
    return gate


def _per_call_us(fn, n: int) -> float:
    best = float("inf")
    for _ in range(_ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n / 1000)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"machine calibration: sum(range(100)) = {calibration_ns():.0f} ns (idle reference 545)")
    size, px = Decimal("2"), Decimal("25.1")
    for case, cross, others in (("isolated", False, 0), ("cross", True, 4), ("cross", True, 40)):
        gate = _gate(cross, others)
        assert gate.refusal(COIN, is_buy=True, size=size, px=px) is None, gate.last_refusal
        us = _per_call_us(lambda g=gate: g.refusal(COIN, is_buy=True, size=size, px=px), n)
        print(f"RESULT case={case} positions={others} us={us:.2f}")
    gate, state = _gate(True, 0), _state(4)
    us = _per_call_us(lambda: gate.note_state("xyz", state), n // 10)
    print(f"RESULT case=state_read positions=4 us={us:.2f}")


if __name__ == "__main__":
    main()
