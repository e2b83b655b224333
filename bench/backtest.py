"""`hip3 backtest` throughput: recorded frames replayed per second of wall time.

    python -m bench.backtest [minutes] [--profile]

Makes a recording in `hip3 bot --record`'s format from the simulator's feeds (four markets,
a bbo and an activeAssetCtx frame for every change, receive times 150 ms after each tick:
`minutes` of market time, default 10), then replays it through the default configuration in
trading mode against the default scenario with the exchange's timing model. Prints
`RESULT frames=<n> seconds=<replay wall time> frames_per_s=<rate>`; the target is 100 000.
With `--profile`, also the top of a cProfile of one replay.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

from hip3.backtest.engine import run_backtest
from hip3.config import load_config
from hip3.sim.events import BookChanged, CtxChanged
from hip3.sim.exchange import Exchange
from hip3.sim.feeds import Feeds
from hip3.sim.scenario import load_scenario
from hip3.sim.server import channel_frame

START_MS = 1_767_225_600_000
RECEIVE_DELAY_NS = 150_000_000


def make_recording(path: Path, minutes: float, seed: int = 7) -> int:
    """A recording of the simulator's default markets; returns its number of frames."""
    scenario = load_scenario(None)
    now = [START_MS]
    changed: dict[str, set[str]] = {"bbo": set(), "ctx": set()}

    def emit(event: object) -> None:
        if isinstance(event, BookChanged):
            changed["bbo"].add(event.coin)
        elif isinstance(event, CtxChanged):
            changed["ctx"].add(event.coin)

    exchange = Exchange(scenario.universe(), clock_ms=lambda: now[0], emit=emit, seed=seed)
    feeds = Feeds(exchange, scenario, seed)
    coins = set(load_config().coins)
    n = 0
    with gzip.open(path, "wb") as out:
        while now[0] < START_MS + minutes * 60_000:
            feeds.step(direct=True)
            t = now[0] * 1_000_000 + RECEIVE_DELAY_NS
            lines = []
            for coin in sorted(changed["ctx"] & coins):
                frame = channel_frame("activeAssetCtx", exchange.asset_ctx(coin))
                lines.append(b'{"t":%d,"f":%s}\n' % (t, frame))
            for coin in sorted(changed["bbo"] & coins):
                frame = channel_frame("bbo", exchange.bbo(coin))
                lines.append(b'{"t":%d,"f":%s}\n' % (t + 1000, frame))
            changed["bbo"].clear()
            changed["ctx"].clear()
            out.write(b"".join(lines))
            n += len(lines)
            now[0] += scenario.tick_ms
    return n


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    minutes = float(args[0]) if args else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "recording.ndjson.gz"
        frames = make_recording(data, minutes)
        cfg = load_config(overrides={"mode": "trading"})
        started = time.perf_counter()
        result = run_backtest(cfg, [data], journal=Path(tmp) / "journal.sqlite")
        seconds = time.perf_counter() - started
        s = result.summary
        print(
            f"replayed {result.frames} frames ({minutes:g} min of market time): "
            f"{s['signals']} signals, {s['entries_submitted']} entries, {s['fills']} fills"
        )
        if "--profile" in sys.argv:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            run_backtest(cfg, [data], journal=Path(tmp) / "profiled.sqlite")
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    print(f"RESULT frames={frames} seconds={seconds:.2f} frames_per_s={frames / seconds:.0f}")


if __name__ == "__main__":
    main()
