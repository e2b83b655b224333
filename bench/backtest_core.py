"""The exchange core's share of a backtest: `Venue.apply` per recorded frame, without the bot.

    python -m bench.backtest_core [minutes] [--rounds=N]

Makes the `dense` recording of `bench.backtest` (a bbo and an activeAssetCtx for every change
of the simulator's 100 ms feed, four markets), opens the venue's connection and subscribes it
as the bot does, then times `Venue.apply` over every frame, in two ways:

- `apply`: as in a run where the bot only watches: a recorded top nothing can see is kept
  unapplied until the core is next used (hip3/backtest/venue.py), so most bbo frames cost
  only their parse and checks;
- `settled`: the core brought up to date after every frame (as if the bot looked at the core
  after each one): the cost of applying every frame at once, the ceiling of a trading run.

The frames are timed in chunks of 50 and each chunk's fastest round counts, which keeps a
shared machine's scheduler out of the number. Prints
`RESULT data=dense frames=<n> apply_us=<per frame> settled_us=<per frame>` (half the frames
are bbo, half activeAssetCtx).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from bench.backtest import VARIANTS, make_recording
from hip3.backtest.clock import VirtualTime
from hip3.backtest.data import merged, open_data
from hip3.backtest.venue import Venue
from hip3.sim.scenario import load_scenario

CHUNK = 50


def subscribed_venue(first_ns: int, coins: list[str]) -> tuple[Venue, VirtualTime]:
    scenario = load_scenario(None)
    clock = VirtualTime(first_ns)
    venue = Venue(scenario, time=clock, seed=7, timing=scenario.timing, deliver=lambda e: None)
    venue.open(1)
    subscriptions: list[dict[str, Any]] = [
        {"type": kind, "coin": coin} for coin in coins for kind in ("bbo", "activeAssetCtx")
    ]
    user = venue.account[0]
    subscriptions += [{"type": kind, "user": user} for kind in ("orderUpdates", "userFills")]
    for sub in subscriptions:
        venue.send(msgspec.json.encode({"method": "subscribe", "subscription": sub}))
    clock.run_until(first_ns)
    return venue, clock


def one_round(frames: list[tuple[int, Any]], settle_each: bool) -> list[int]:
    """The nanoseconds each chunk of frames took."""
    coins = sorted({frame.data.coin for _, frame in frames})
    venue, clock = subscribed_venue(frames[0][0], coins)
    apply = venue.apply
    settle: Callable[[], Any] = (lambda: venue.exchange) if settle_each else (lambda: None)
    chunks = []
    for start in range(0, len(frames), CHUNK):
        chunk = frames[start : start + CHUNK]
        clock.run_until(chunk[0][0])
        began = time.perf_counter_ns()
        for _, frame in chunk:
            apply(frame)
            settle()
        chunks.append(time.perf_counter_ns() - began)
        clock.run_until(chunk[-1][0])
    return chunks


def best(frames: list[tuple[int, Any]], settle_each: bool, rounds: int) -> list[int]:
    fastest: list[int] | None = None
    for _ in range(rounds):
        spent = one_round(frames, settle_each)
        fastest = (
            spent if fastest is None else [min(a, b) for a, b in zip(fastest, spent, strict=True)]
        )
    assert fastest is not None
    return fastest


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    minutes = float(args[0]) if args else 3.0
    rounds = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--rounds=")), 5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.ndjson.gz"
        make_recording(path, minutes, **VARIANTS["dense"])
        frames = [(ns, frame) for ns, frame, _, _ in merged([open_data(path)])]  # decoded
    applied = best(frames, settle_each=False, rounds=rounds)
    settled = best(frames, settle_each=True, rounds=rounds)
    n = len(frames)
    print(
        f"RESULT data=dense frames={n} apply_us={sum(applied) / n / 1000:.2f} "
        f"settled_us={sum(settled) / n / 1000:.2f}"
    )


if __name__ == "__main__":
    main()
