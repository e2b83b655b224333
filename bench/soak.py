"""Soak: the bot against a faulty simulator for a bounded time.

    python -m bench.soak --minutes N [--faults SPEC] [--seed 3]

The simulator runs in its own process (its books, positions and fills are the truth to compare
with, sent back at the end) with its default lively scenario and faults: connections dropped
at random, frames duplicated and delayed. The bot (this process) trades, exits and reconnects
on its own. Every 10 s the run prints memory, epochs and fills; at the end it prints the bot's
memory growth (its process's RSS from the first READY to the end; the simulator's own caches
and histories are not in it), fills lost (fills the exchange made for the bot's account that
the bot never applied; must be 0), fills applied twice, and whether each epoch regained READY.
The last line is `RESULT rss_growth_mb=... lost_fills=... epochs=... ready_epochs=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal
from typing import Any

from bench.processes import simulator_in_child, start_bot

DEFAULT_FAULTS = "drop_every_s=20,duplicate_p=0.01,delay_ms=3,seed=3"
REPORT_EVERY_S = 10.0


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def simulator_process(conn: Any, faults: str, seed: int) -> None:
    asyncio.run(_simulate(conn, faults, seed))


async def _simulate(conn: Any, faults: str, seed: int) -> None:
    from hip3.sim.harness import SimHarness

    async with SimHarness(seed=seed, faults=faults) as sim:
        conn.send((sim.ws_url, sim.account[0], sim.account[1]))
        await asyncio.to_thread(conn.recv)  # the bot has finished
        user = sim.account[0]
        truth = sorted(f["tid"] for f in sim.exchange.user_fills(user))
        positions = {c: str(s) for c, s in sim.exchange.positions(user).items() if s != 0}
        conn.send((truth, positions))


def soak_config(ws_url: str) -> Any:
    from hip3.config import load_config

    return load_config(
        overrides={
            "network": "sim",
            "ws_url": ws_url,
            "journal": {"enabled": False},
            "websocket": {"backoff_min_s": 0.2, "backoff_max_s": 2.0},
            # a long run on a lively market: keep HardStop for real faults, not for noise
            "risk": {"loss_limit_usd": 1_000.0},
            "shutdown": {"flatten_on_exit": True},
        }
    )


async def run(minutes: float, faults: str, seed: int) -> dict:
    with simulator_in_child(simulator_process, faults, seed) as pipe:
        url, _address, secret = await asyncio.to_thread(pipe.recv)
        bot, d = await start_bot(soak_config(url), secret, duration_s=minutes * 60)
        rss_start = rss_mb()
        t0 = time.monotonic()
        while not bot.done():
            await asyncio.wait({bot}, timeout=REPORT_EVERY_S)
            print(
                f"t={time.monotonic() - t0:6.0f}s rss={rss_mb():7.1f}MB epoch={d.conn.epoch}"
                f" state={d.conn.state} fills={d.positions.fills_applied}"
                f" submitted={d.executor.submitted} hardstop={d.hardstop.state}"
                f" inbox={len(d.inbox)}",
                flush=True,
            )
        summary = bot.result()
        rss_end = rss_mb()
        pipe.send("done")
        truth_tids, truth_positions = await asyncio.to_thread(pipe.recv)
    truth = set(truth_tids)
    positions = {c: Decimal(s) for c, s in truth_positions.items()}
    ours = {c: Decimal(s) for c, s in summary["positions"].items() if Decimal(s) != 0}
    epochs = d.conn.epoch
    ready = sorted(d.ready_latency_ms)
    return {
        "rss_start": rss_start,
        "rss_end": rss_end,
        "truth_fills": len(truth),
        "applied": d.positions.fills_applied,
        "lost": max(0, len(truth) - d.positions.fills_applied),
        "duplicates_ignored": d.positions.duplicates,
        "epochs": epochs,
        "ready": ready,
        "ready_ms": dict(d.ready_latency_ms),
        "positions_match": ours == positions,
        "summary": summary,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, required=True, help="how long to run")
    p.add_argument("--faults", default=DEFAULT_FAULTS, help=f"default: {DEFAULT_FAULTS}")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        p.error("--minutes must be in (0, 1440]")
    r = asyncio.run(run(args.minutes, args.faults, args.seed))
    s = r["summary"]
    growth = r["rss_end"] - r["rss_start"]
    missing = [e for e in range(1, r["epochs"] + 1) if e not in r["ready_ms"]]
    print(
        f"rss {r['rss_start']:.1f} -> {r['rss_end']:.1f} MB ({growth:+.1f})"
        f"  fills: exchange {r['truth_fills']} applied {r['applied']} lost {r['lost']}"
        f" duplicates ignored {r['duplicates_ignored']}"
    )
    print(
        f"epochs {r['epochs']}  READY regained in {len(r['ready'])}"
        f" (latency ms by epoch: {r['ready_ms']}; without READY: {missing or 'none'})"
    )
    print(
        f"orders submitted {s['orders_submitted']}  final {s['orders']}"
        f"  positions equal the exchange's: {r['positions_match']}"
        f"  reconciled: {s.get('reconciled')}  hardstop: {s['hardstop']['state']}"
    )
    print(
        f"RESULT rss_growth_mb={growth:.1f} lost_fills={r['lost']} epochs={r['epochs']}"
        f" ready_epochs={len(r['ready'])}"
    )


if __name__ == "__main__":
    main()
