"""State-machine costs, in-process: an order's lifecycle, one transition, a build, a tick.

    python -m bench.machines [--orders 2000] [--rounds 5] [--engine both|flat|library]

Each measurement runs with hip3's flat-chart engine (machines/engine.py) and with the
library's own `SyncEngine` (what every machine ran on before it), interleaved round by round so
a change in the machine's load falls on both alike; each prints its best round.

- `order`: one order through `OrderRegistry` as the executor and the order flow drive it: `add`
  (a spare machine from the pool, bound), `sent`, `resting`, a partial `fill`, the completing
  `fill` (the order retires), and the `prewarm` that recycles its machine. `transition` is that
  divided by its four transitions.
- `build`: building one spare `OrderMachine` (what `prewarm` does when the pool is short).
- `tick`: a `tick` sent to a FlattenMachine at rest (an internal self-transition: the event
  cycle alone), and `prewarm` when the pool is already full.
- `calls`: Python function calls per order lifecycle (from cProfile), which load does not move.
- `reference`: the library's own baseline, one `send` to a two-state `StateChart` (no hip3
  code) whose transitions each have one guard and one action, on the library's engine.

Last lines: `RESULT engine=... order_us=... transition_us=... build_us=... tick_us=...
prewarm_full_us=... calls_per_order=...`, one per engine, then `RESULT reference_send_us=...
order_speedup=...`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

from hip3.machines.engine import FlatChartEngine
from hip3.machines.flatten import FlattenMachine
from hip3.machines.order import OrderMachine
from statemachine import State, StateChart

from hip3.execution.orders import OrderInfo, OrderRegistry


class Reference(StateChart):
    """The library alone: what one event costs on its engine with a guard and an action."""

    a = State(initial=True)
    b = State()
    go = a.to(b, cond="allowed", on="record") | b.to(a, cond="allowed", on="record")

    def allowed(self, x: int) -> bool:
        return x >= 0

    def record(self, x: int) -> None:
        self.x = x


@contextlib.contextmanager
def engine(kind: str) -> Iterator[None]:
    """Machines built inside get the flat engine ("flat") or the library's ("library")."""
    saved = dict(FlatChartEngine._layouts)
    if kind == "library":
        # A chart recorded as unsuitable gets the library's SyncEngine from `HipChart`.
        for chart in (OrderMachine, FlattenMachine):
            FlatChartEngine._layouts[chart] = None
    else:
        for chart in (OrderMachine, FlattenMachine):
            FlatChartEngine._layouts.pop(chart, None)
    try:
        yield
    finally:
        FlatChartEngine._layouts.clear()
        FlatChartEngine._layouts.update(saved)


def _info(cloid: str) -> OrderInfo:
    return OrderInfo(
        cloid=cloid,
        coin="xyz:AAA",
        asset=110_000,
        is_buy=True,
        size=Decimal("2"),
        px="10",
        reduce_only=False,
        purpose="entry",
        created_ms=0,
    )


class OrderLoop:
    """Orders through one registry, its pool already warm (the runtime's steady state)."""

    def __init__(self) -> None:
        self.registry = OrderRegistry([])
        self.registry.prewarm(target=16, budget=16)
        self.next = 0

    def one(self) -> None:
        i = self.next
        self.next += 1
        cloid = f"0x{i:032x}"
        reg = self.registry
        reg.add(_info(cloid))
        reg.send(cloid, "sent", post_id=i, epoch=1)
        reg.send(cloid, "resting", oid=i)
        reg.send(cloid, "fill", sz="1", tid=2 * i)
        reg.send(cloid, "fill", sz="1", tid=2 * i + 1)
        assert not reg.is_live(cloid)
        reg.prewarm(target=16, budget=4)


def best_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def measure(kind: str, orders: int) -> dict[str, float]:
    with engine(kind):
        loop = OrderLoop()
        for _ in range(50):
            loop.one()
        order_us = best_us(loop.one, orders)
        build_us = best_us(OrderMachine.spare, max(orders // 50, 10))
        flatten = FlattenMachine(
            market="xyz:AAA", timeout_ms=1_000, backoff_ms=100, backoff_max_ms=400, max_attempts=3
        )
        tick_us = best_us(lambda: flatten.send("tick", now_ms=1), orders)
        prewarm_full_us = best_us(lambda: loop.registry.prewarm(target=16, budget=4), orders)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(100):
            loop.one()
        profile.disable()
        calls = pstats.Stats(profile).total_calls / 100  # type: ignore[attr-defined]
    return {
        "order_us": order_us,
        "transition_us": order_us / 4,
        "build_us": build_us,
        "tick_us": tick_us,
        "prewarm_full_us": prewarm_full_us,
        "calls_per_order": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engine", choices=["both", "flat", "library"], default="both")
    args = parser.parse_args()
    kinds = ["library", "flat"] if args.engine == "both" else [args.engine]
    best: dict[str, dict[str, float]] = {}
    reference = Reference()
    reference_us = float("inf")
    for _ in range(args.rounds):
        reference_us = min(reference_us, best_us(lambda: reference.send("go", x=1), args.orders))
        for kind in kinds:
            got = measure(kind, args.orders)
            kept = best.setdefault(kind, got)
            for key, value in got.items():
                kept[key] = min(kept[key], value)
    for kind in kinds:
        fields = " ".join(
            f"{k}={v:.0f}" if k == "calls_per_order" else f"{k}={v:.1f}"
            for k, v in best[kind].items()
        )
        print(f"RESULT engine={kind} {fields}")
    summary = f"RESULT reference_send_us={reference_us:.1f}"
    if len(kinds) == 2:
        summary += f" order_speedup={best['library']['order_us'] / best['flat']['order_us']:.2f}"
    print(summary)


if __name__ == "__main__":
    main()
