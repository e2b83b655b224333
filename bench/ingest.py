"""Ingest: the highest bbo frame rate the bot keeps up with.

    python -m bench.ingest [--rates 5000,10000,20000,30000,40000,60000] [--step-s 2]

A simulator process writes bbo frames for one market at a fixed rate for `--step-s` seconds
per step, faster each step. The frames are the exchange core's own bbo views of two books
(the maker's level in two sizes, so each frame is a change), taken once before the bot connects
and only re-stamped per batch, written straight to the session: the simulator's matching engine
is not what is measured. The bot in this process — the real `run_bot` with
its reader, dispatcher and detector, over loopback — applies them. A step is kept up
with when, 100 ms after the simulator wrote its last frame, the bot has applied all but 1% of
the step's frames (the backlog did not grow with the step). Clocks: perf_counter_ns is the
system-wide monotonic clock on Linux, so both processes' stamps compare directly.

The last line is `RESULT frames_per_s=<highest rate kept up with>`; target >= 20000.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import time
from typing import Any

from bench.processes import simulator_in_child, start_bot
from bench.tick_to_post import (
    COIN,
    MAKER,
    NORMAL_BPS,
    ORACLE,
    _quotes,
    bot_config,
    calibration_ns,
    print_profile,
)

GRACE_S = 0.1
ALLOWED_BACKLOG = 0.01


def simulator_process(conn: Any, rates: list[int], step_s: float) -> None:
    asyncio.run(_simulate(conn, rates, step_s))


async def _simulate(conn: Any, rates: list[int], step_s: float) -> None:
    from hip3.sim.harness import SimHarness, wall_clock_ms
    from hip3.sim.server import ConnectionLimits, channel_frame

    sim = SimHarness(seed=1, feeds=False, limits=ConnectionLimits(messages_per_window=10**6))
    ex, server = sim.exchange, sim.server
    ex.set_oracle(COIN, ORACLE)
    views: dict[int, dict[str, Any]] = {}
    for jitter in (1, 0):  # ends on the book the bot subscribes to
        ex.replace_maker_quotes(COIN, MAKER, *_quotes(ORACLE, NORMAL_BPS, NORMAL_BPS, jitter))
        views[jitter] = ex.bbo(COIN)
    await sim.start()
    conn.send((sim.ws_url, sim.account[1]))

    def frame(ms: int, jitter: int) -> bytes:
        return channel_frame("bbo", {**views[jitter], "time": ms})

    async def fresh_ctx() -> None:  # the detector and READY want a recent oracle
        while True:
            ex.set_oracle(COIN, ORACLE)
            await asyncio.sleep(0.1)

    ctx_task = asyncio.create_task(fresh_ctx())
    loop = asyncio.get_running_loop()
    for rate in rates:
        await asyncio.to_thread(conn.recv)  # the bot is ready for the next step
        sessions = [s for s in server.sessions if ("bbo", COIN) in server._routes and not s.closed]
        start = loop.time()
        sent = 0
        end = start + step_s
        while True:
            now = loop.time()
            if now >= end:
                break
            due = int((now - start) * rate) - sent
            if due > 0:
                ms = wall_clock_ms()
                frames = (frame(ms, 0), frame(ms, 1))
                for i in range(due):
                    data = frames[i & 1]
                    for s in sessions:
                        s.send(data)
                sent += due
            await asyncio.sleep(0.0005)
        conn.send((rate, sent, time.perf_counter_ns()))
    await asyncio.to_thread(conn.recv)
    ctx_task.cancel()
    await sim.stop()


async def run(rates: list[int], step_s: float, profile: bool = False) -> list[dict]:
    from hip3.events import OperatorCommand

    results = []
    with simulator_in_child(simulator_process, rates, step_s) as pipe:
        url, secret = await asyncio.to_thread(pipe.recv)
        bot, d = await start_bot(bot_config(url), secret)
        st = d.markets[COIN]
        prof = cProfile.Profile() if profile else None
        if prof is not None:
            prof.enable()
        for _ in rates:
            await asyncio.sleep(0.3)  # drained from the previous step
            before = st.bbo_updates
            pipe.send("next")
            rate, sent, t_end = await asyncio.to_thread(pipe.recv)
            # GRACE_S after the last write, measured on the shared monotonic clock
            await asyncio.sleep(max(0.0, (t_end - time.perf_counter_ns()) / 1e9 + GRACE_S))
            applied = st.bbo_updates - before
            backlog = sent - applied
            results.append(
                {
                    "rate": rate,
                    "sent": sent,
                    "applied": applied,
                    "backlog": backlog,
                    "kept_up": backlog <= ALLOWED_BACKLOG * sent,
                }
            )
        if prof is not None:
            prof.disable()
            print_profile(prof, top=20, ours=20)
        d.put(OperatorCommand("shutdown", "benchmark done"))
        await asyncio.wait_for(bot, 30)
        pipe.send("stop")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="5000,10000,20000,30000,40000,60000")
    p.add_argument("--step-s", type=float, default=2.0)
    p.add_argument("--profile", action="store_true", help="cProfile the bot during the steps")
    args = p.parse_args()
    try:
        rates = sorted(int(x) for x in args.rates.split(","))
    except ValueError:
        p.error(f"--rates must be comma-separated integers, got {args.rates!r}")
    if not rates or rates[0] <= 0:
        p.error("--rates must be positive")
    print(f"machine calibration: sum(range(100)) = {calibration_ns():.0f} ns (idle reference 545)")
    results = asyncio.run(run(rates, args.step_s, args.profile))
    best = 0
    for r in results:
        print(
            f"rate {r['rate']:>6}/s  sent {r['sent']:>6}  applied {r['applied']:>6}"
            f"  backlog {r['backlog']:>6}"
            f"  {'kept up' if r['kept_up'] else 'FELL BEHIND'}"
        )
        if (
            r["kept_up"]
            and r["rate"] > best
            and all(x["kept_up"] for x in results if x["rate"] < r["rate"])
        ):
            best = r["rate"]
    print(f"RESULT frames_per_s={best}")


if __name__ == "__main__":
    main()
