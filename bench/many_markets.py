"""Many markets on one connection: the bot against the simulator's `many_dexes` scenario
(300 perps on five dexes: 20 on the validator dex, the rest on four HIP-3 dexes named as
whole dexes, `coin = "xyz:*"` and so on, one of them delisted from the start).

    python -m bench.many_markets [--soak-s 60] [--seed 5]

The simulator runs in its own process; the bot (this process, in trading mode with an edge
it never meets, so it subscribes, reconciles and checks everything but sends no order)
expands the whole dexes after discovery, subscribes every market on one connection and
waits for READY-TRADING. Then, for `--soak-s` seconds, it samples every 0.5 s:

- event-loop lag (how late a 50 ms timer fires: a bot behind its frames keeps the loop busy),
- markets whose data is stale by the one freshness definition (a backlog shows up here),
- whether READY-TRADING holds, and the market-data frames handled,
- the process's RSS (the simulator's memory is not in it).

RESULT lines: markets, time to READY (from the start, discovery included, and from the
socket's open), loop lag p99/max, stale markets max, READY share, frames per second, RSS at
READY, at the end and its growth over the second half of the soak (steady state), and the
whole-dex rediscoveries made while connected (every `discovery.rediscover_s`, 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from bench.processes import simulator_in_child

SCENARIO = Path(__file__).resolve().parent.parent / "hip3" / "sim" / "scenarios" / "many_dexes.toml"
WHOLE_DEXES = ("xyz", "flx", "hyna", "cash")
SAMPLE_S = 0.5
LAG_TIMER_S = 0.05


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def simulator_process(conn: Any, seed: int) -> None:
    asyncio.run(_simulate(conn, seed))


async def _simulate(conn: Any, seed: int) -> None:
    from hip3.sim.harness import SimHarness

    async with SimHarness(seed=seed, scenario=SCENARIO) as sim:
        validator = [a.coin for a in sim.exchange.universe.dex("").assets]
        conn.send((sim.ws_url, sim.account[1], validator))
        await asyncio.to_thread(conn.recv)  # the bot has finished


def bench_config(ws_url: str, validator_coins: list[str]) -> Any:
    from hip3.config import load_config

    markets = [{"coin": c} for c in validator_coins] + [{"coin": f"{d}:*"} for d in WHOLE_DEXES]
    return load_config(
        overrides={
            "network": "sim",
            "ws_url": ws_url,
            "markets": markets,
            "journal": {"enabled": False},
            "detector": {"min_edge_bps": 5000.0},  # subscribe and reconcile, never enter
            "ready": {"startup_timeout_s": 60.0},
        }
    )


async def _loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(LAG_TIMER_S)
        samples.append(loop.time() - t - LAG_TIMER_S)


async def run(soak_s: float, seed: int) -> dict:
    from hip3.app.bot import run_bot
    from hip3.events import OperatorCommand
    from hip3.keys import SigningKey

    with simulator_in_child(simulator_process, seed) as pipe:
        url, secret, validator = await asyncio.to_thread(pipe.recv)
        cfg = bench_config(url, validator)
        box: dict[str, Any] = {}
        t0 = time.monotonic()
        bot = asyncio.create_task(
            run_bot(
                cfg,
                duration_s=soak_s + 120,
                install_signals=False,
                on_dispatcher=lambda d, _sim: box.setdefault("d", d),
                key=SigningKey.from_hex(secret),
            )
        )
        while not ("d" in box and box["d"].ready.trading()):
            if bot.done():
                raise RuntimeError(f"the bot stopped before READY: {bot.result()}")
            if time.monotonic() - t0 > 60:
                raise RuntimeError("not READY within 60 s")
            await asyncio.sleep(0.005)
        ready_s = time.monotonic() - t0
        d = box["d"]
        rss_ready = rss_mb()
        lags: list[float] = []
        stop = asyncio.Event()
        lag_task = asyncio.create_task(_loop_lag(lags, stop))
        stale_counts: list[int] = []
        ready_samples: list[bool] = []
        rss: list[tuple[float, float]] = []
        frames0 = sum(m.bbo_updates + m.ctx_updates for m in d.markets.values())
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < soak_s and not bot.done():
            await asyncio.sleep(SAMPLE_S)
            stale_counts.append(len(d.ready.stale_markets()))
            ready_samples.append(d.ready.trading())
            rss.append((elapsed, rss_mb()))
        frames = sum(m.bbo_updates + m.ctx_updates for m in d.markets.values()) - frames0
        soaked = time.monotonic() - start
        stop.set()
        await lag_task
        d.put(OperatorCommand("shutdown", "bench over"))
        summary = await asyncio.wait_for(bot, 60)
        pipe.send("done")
    half = [r for t, r in rss if t >= soak_s / 2]
    lags.sort()
    return {
        "markets": len(d.coins),
        "delisted": sorted(d.ready.retired),
        "ready_s": ready_s,
        "ready_socket_ms": d.ready_latency_ms.get(1),
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
        "lag_max_ms": 1000 * lags[-1] if lags else float("nan"),
        "stale_max": max(stale_counts, default=0),
        "stale_mean": statistics.fmean(stale_counts) if stale_counts else 0.0,
        "ready_share": sum(ready_samples) / len(ready_samples) if ready_samples else 0.0,
        "frames_per_s": frames / soaked if soaked else 0.0,
        "rss_ready": rss_ready,
        "rss_end": rss[-1][1] if rss else rss_ready,
        "rss_max": max((r for _t, r in rss), default=rss_ready),
        "rss_growth_second_half": (half[-1] - half[0]) if len(half) > 1 else 0.0,
        "epochs": d.conn.epoch,
        # whole dexes read again while connected (discovery.rediscover_s), and reads that failed
        "rediscoveries": d.counters["rediscoveries"],
        "rediscovery_failed": d.counters["rediscovery_failed"],
        "summary": summary,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--soak-s", type=float, default=60.0, help="steady-state run after READY")
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    if not 0 < args.soak_s <= 24 * 3600:
        p.error("--soak-s must be in (0, 86400]")
    r = asyncio.run(run(args.soak_s, args.seed))
    print(
        f"{r['markets']} markets on one connection (delisted, not subscribed: {r['delisted']}),"
        f" READY-TRADING {r['ready_s']:.2f} s after start ({r['ready_socket_ms']} ms after the"
        f" socket opened); {r['epochs']} epoch(s)"
    )
    print(
        f"soak: {r['frames_per_s']:.0f} market frames/s, loop lag p99 {r['lag_p99_ms']:.1f} ms"
        f" max {r['lag_max_ms']:.1f} ms, stale markets max {r['stale_max']}"
        f" (mean {r['stale_mean']:.2f}), READY-TRADING in {100 * r['ready_share']:.1f}% of"
        f" samples; RSS {r['rss_ready']:.1f} MB at READY, {r['rss_end']:.1f} MB at the end,"
        f" max {r['rss_max']:.1f} MB"
    )
    print(
        f"RESULT markets={r['markets']} ready_s={r['ready_s']:.2f}"
        f" ready_socket_ms={r['ready_socket_ms']} frames_per_s={r['frames_per_s']:.0f}"
        f" loop_lag_p99_ms={r['lag_p99_ms']:.1f} loop_lag_max_ms={r['lag_max_ms']:.1f}"
        f" stale_markets_max={r['stale_max']} ready_share={r['ready_share']:.3f}"
        f" rss_ready_mb={r['rss_ready']:.1f} rss_end_mb={r['rss_end']:.1f}"
        f" rss_growth_second_half_mb={r['rss_growth_second_half']:+.1f}"
        f" rediscoveries={r['rediscoveries']} rediscovery_failed={r['rediscovery_failed']}"
        f" reconciled={r['summary']['reconciled']}"
    )


if __name__ == "__main__":
    main()
