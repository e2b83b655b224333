"""`hip3 backtest` throughput: recorded frames replayed per second of wall time.

    python -m bench.backtest [minutes] [--only=dense|quiet] [--profile]

Makes recordings in `hip3 bot --record`'s format from the simulator's feeds (four markets,
receive times 150 ms after each feed step; `minutes` of market time, default 10), then replays
each through the default configuration in trading mode against the default scenario with the
exchange's timing model. Two densities:

- `dense`: a bbo and an activeAssetCtx frame for every change of the simulator's 100 ms feed
  (80 frames per second of data): the most frames the bot could be asked to handle, and a
  busy trading session (hundreds of signals a minute);
- `quiet`: the same markets as a quiet HIP-3 day delivers them: an activeAssetCtx at most
  every 3 s per market (the deployer's setOracle cadence, docs/exchange/freshness.md) and a
  bbo at most every 500 ms per market (the public l2Book archive's snapshot cadence, about
  two a second per coin, docs/exchange/market-data-archive.md): about 9 frames per second
  of data, so the bot's 100 ms timer outnumbers the frames.

Prints one line per density:
`RESULT data=<dense|quiet> frames=<n> seconds=<replay wall time> frames_per_s=<rate>
market_s_per_s=<seconds of data per second of wall time> day_minutes=<wall minutes a day of
these four markets would take> no_trade_frames_per_s=<rate of the same replay with an edge
threshold no quote reaches> read_frames_per_s=<rate of reading and decoding the same recording
alone>`. The no-trade rate is the market-data path alone (every frame through the core, the
bot's state, gates and detector, and its ticks; no order); the read rate is the ceiling any
replay of the file has in this interpreter: the gzip stream, the line and the frame decoded and
checked, with no exchange core and no bot behind them. With `--profile`, also the top of a cProfile of one more replay of each.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

from hip3.backtest.data import merged, open_data
from hip3.backtest.engine import run_backtest
from hip3.config import load_config
from hip3.sim.events import BookChanged, CtxChanged
from hip3.sim.exchange import Exchange
from hip3.sim.feeds import Feeds
from hip3.sim.scenario import load_scenario
from hip3.sim.server import channel_frame

START_MS = 1_767_225_600_000
RECEIVE_DELAY_NS = 150_000_000
# quiet: the least time between two recorded frames of one market's channel
QUIET_CTX_EVERY_MS = 3_000
QUIET_BBO_EVERY_MS = 500
# An edge threshold no recorded quote reaches (bps): the no-trade replay's detector never fires.
NO_TRADE_EDGE = 10_000.0


def make_recording(
    path: Path,
    minutes: float,
    seed: int = 7,
    *,
    ctx_every_ms: int = 0,
    bbo_every_ms: int = 0,
) -> int:
    """A recording of the simulator's default markets; returns its number of frames.

    A market's context (bbo) is recorded when it changed and at least `ctx_every_ms`
    (`bbo_every_ms`) have passed since the last one recorded for it (0: every change)."""
    scenario = load_scenario(None)
    now = [START_MS]
    changed: dict[str, set[str]] = {"bbo": set(), "ctx": set()}
    last: dict[tuple[str, str], int] = {}
    every = {"ctx": ctx_every_ms, "bbo": bbo_every_ms}

    def emit(event: object) -> None:
        if isinstance(event, BookChanged):
            changed["bbo"].add(event.coin)
        elif isinstance(event, CtxChanged):
            changed["ctx"].add(event.coin)

    def due(kind: str, coin: str) -> bool:
        if now[0] - last.get((kind, coin), -every[kind]) < every[kind]:
            return False  # still changed: recorded at the next step it is due
        last[(kind, coin)] = now[0]
        changed[kind].discard(coin)
        return True

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
                if due("ctx", coin):
                    frame = channel_frame("activeAssetCtx", exchange.asset_ctx(coin))
                    lines.append(b'{"t":%d,"f":%s}\n' % (t, frame))
            for coin in sorted(changed["bbo"] & coins):
                if due("bbo", coin):
                    frame = channel_frame("bbo", exchange.bbo(coin))
                    lines.append(b'{"t":%d,"f":%s}\n' % (t + 1000, frame))
            out.write(b"".join(lines))
            n += len(lines)
            now[0] += scenario.tick_ms
    return n


VARIANTS = {
    "dense": {},
    "quiet": {"ctx_every_ms": QUIET_CTX_EVERY_MS, "bbo_every_ms": QUIET_BBO_EVERY_MS},
}


def read_rate(data: Path) -> float:
    """Frames per second of reading and decoding `data` alone, best of three passes."""
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        n = sum(1 for _ in merged([open_data(data)]))
        best = max(best, n / (time.perf_counter() - started))
    return best


def measure(name: str, minutes: float, tmp: Path, profile: bool) -> str:
    data = tmp / f"{name}.ndjson.gz"
    frames = make_recording(data, minutes, **VARIANTS[name])
    read_per_s = read_rate(data)
    cfg = load_config(overrides={"mode": "trading"})
    started = time.perf_counter()
    result = run_backtest(cfg, [data], journal=tmp / f"{name}.sqlite")
    seconds = time.perf_counter() - started
    s = result.summary
    print(
        f"{name}: replayed {result.frames} frames ({minutes:g} min of market time): "
        f"{s['signals']} signals, {s['entries_submitted']} entries, {s['fills']} fills"
    )
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run_backtest(cfg, [data], journal=tmp / f"{name}-profiled.sqlite")
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    # The same replay with an edge no quote reaches: every frame is handled, none trades.
    no_trade_cfg = load_config(
        overrides={"mode": "trading", "detector.min_edge_bps": NO_TRADE_EDGE}
    )
    started = time.perf_counter()
    run_backtest(no_trade_cfg, [data], journal=tmp / f"{name}-no-trades.sqlite")
    no_trade_seconds = time.perf_counter() - started
    market_s = minutes * 60 / seconds
    return (
        f"RESULT data={name} frames={frames} seconds={seconds:.2f} "
        f"frames_per_s={frames / seconds:.0f} market_s_per_s={market_s:.0f} "
        f"day_minutes={86_400 / market_s / 60:.1f} "
        f"no_trade_frames_per_s={frames / no_trade_seconds:.0f} "
        f"read_frames_per_s={read_per_s:.0f}"
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    minutes = float(args[0]) if args else 10.0
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
    names = only or list(VARIANTS)
    for name in names:
        if name not in VARIANTS:
            sys.exit(f"--only={name}: expected one of {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        lines = [measure(name, minutes, Path(tmp), "--profile" in sys.argv) for name in names]
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
