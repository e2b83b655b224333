"""The dashboard's cost to the bot: how long a snapshot holds the event loop, and how long a
browser's poll takes, with the real bot trading against the in-process simulator.

    python -m bench.dashboard [--seconds 10] [--poll-ms 100]

The bot runs with its dashboard on a free loopback port; a client thread polls `/api/state`
every `--poll-ms` (ten times a browser's pace) and times each answer. Beside it, on the loop,
the same snapshot and PnL sample the server takes are timed directly every 50 ms: that is the
time the dispatcher waits, since a snapshot runs between two events.

The last line is `RESULT dashboard_snapshot_p50_us=... dashboard_snapshot_p99_us=...
dashboard_sample_p50_us=... dashboard_request_p50_ms=... dashboard_request_p99_ms=...
dashboard_state_bytes=... n=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import re
import threading
import time
from typing import Any

from bench.tick_to_post import calibration_ns, percentile
from hip3.app.bot import run_bot
from hip3.config import load_config
from hip3.dashboard.source import BotSource
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness

perf = time.perf_counter_ns


class _Url(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.port: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"dashboard on http://[^:]+:(\d+)/", record.getMessage())
        if found:
            self.port = int(found.group(1))


def _poll(port: int, every_s: float, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while not stop.is_set():
        t0 = perf()
        conn.request("GET", "/api/state")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200:
            out.append(((perf() - t0) / 1e6, len(body)))
        time.sleep(every_s)
    conn.close()


async def main(seconds: float, poll_ms: float) -> dict[str, Any]:
    url = _Url()
    server_log = logging.getLogger("hip3.dashboard.server")
    server_log.addHandler(url)
    server_log.setLevel(logging.INFO)
    async with SimHarness(seed=11) as sim:
        cfg = load_config(
            overrides={
                "network": "sim",
                "ws_url": sim.ws_url,
                "journal": {"enabled": False},
                "dashboard": {"enabled": True, "port": 0},
                "shutdown": {"flatten_on_exit": True},
            }
        )
        box: dict[str, Any] = {}
        bot = asyncio.create_task(
            run_bot(
                cfg,
                duration_s=seconds + 8,
                install_signals=False,
                on_dispatcher=lambda d, _s: box.setdefault("d", d),
                key=SigningKey.from_hex(sim.account[1]),
            )
        )
        while "d" not in box or url.port is None or not box["d"].ready.trading():
            await asyncio.sleep(0.05)
        source = BotSource(box["d"])
        requests: list[tuple[float, int]] = []
        stop = threading.Event()
        client = threading.Thread(target=_poll, args=(url.port, poll_ms / 1000, stop, requests))
        client.start()
        snap_us: list[float] = []
        sample_us: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = perf()
            source.snapshot()
            t1 = perf()
            source.money_sample()
            t2 = perf()
            snap_us.append((t1 - t0) / 1000)
            sample_us.append((t2 - t1) / 1000)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, client.join)
        summary = await bot
    server_log.removeHandler(url)
    latencies = sorted(r[0] for r in requests)
    return {
        "snap": sorted(snap_us),
        "sample": sorted(sample_us),
        "latencies": latencies,
        "bytes": max((r[1] for r in requests), default=0),
        "fills": summary.get("fills"),
    }


def run(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--poll-ms", type=float, default=100.0)
    args = p.parse_args(argv)
    print(f"calibration sum(range(100)) = {calibration_ns():.0f} ns")
    r = asyncio.run(main(args.seconds, args.poll_ms))
    snap, sample, lat = r["snap"], r["sample"], r["latencies"]
    print(f"snapshots timed on the loop: {len(snap)}; polls answered: {len(lat)}")
    print(
        f"RESULT dashboard_snapshot_p50_us={percentile(snap, 0.5):.1f}"
        f" dashboard_snapshot_p99_us={percentile(snap, 0.99):.1f}"
        f" dashboard_sample_p50_us={percentile(sample, 0.5):.1f}"
        f" dashboard_request_p50_ms={percentile(lat, 0.5):.2f}"
        f" dashboard_request_p99_ms={percentile(lat, 0.99):.2f}"
        f" dashboard_state_bytes={r['bytes']} n={len(lat)}"
    )


if __name__ == "__main__":
    run()
