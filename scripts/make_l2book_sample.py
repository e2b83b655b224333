"""Write a small file in the exchange's l2Book archive format from the simulator's books.

    python scripts/make_l2book_sample.py [OUT] [--coin xyz:AAA] [--minutes 1] [--seed 7]

The books are the simulator's (`hip3.sim.feeds`: a seeded oracle and makers that lag it),
stepped on a virtual clock; one snapshot every 500 ms, as the archive has about twice a
second. The format is docs/exchange/market-data-archive.md: LZ4 frames, one JSON object per
line with the receive time, a version and the websocket message. Same arguments, same bytes;
`examples/data/l2book_sample.lz4` is this script's output with its defaults.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import lz4.frame
import msgspec

from hip3.sim.exchange import Exchange
from hip3.sim.feeds import Feeds
from hip3.sim.scenario import load_scenario

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SNAPSHOT_EVERY_MS = 500
RECEIVE_DELAY_NS = 180_000_000  # the recorder saw each snapshot this long after its block


def iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{rest:09d}"


def sample(coin: str, minutes: float, seed: int) -> bytes:
    scenario = load_scenario(None)
    now = [START_MS]
    exchange = Exchange(
        scenario.universe(), clock_ms=lambda: now[0], emit=lambda _e: None, seed=seed
    )
    feeds = Feeds(exchange, scenario, seed)
    lines = []
    next_snapshot = START_MS
    while now[0] < START_MS + minutes * 60_000:
        feeds.step(direct=True)
        if now[0] >= next_snapshot:
            next_snapshot += SNAPSHOT_EVERY_MS
            received = now[0] * 1_000_000 + RECEIVE_DELAY_NS
            raw = {"channel": "l2Book", "data": exchange.l2_book(coin)}
            lines.append(msgspec.json.encode({"time": iso(received), "ver_num": 1, "raw": raw}))
        now[0] += scenario.tick_ms
    return lz4.frame.compress(b"\n".join(lines) + b"\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=Path("examples/data/l2book_sample.lz4"))
    p.add_argument("--coin", default="xyz:AAA")
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    args.out.write_bytes(sample(args.coin, args.minutes, args.seed))
    print(args.out)


if __name__ == "__main__":
    main()
