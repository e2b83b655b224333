"""Simulator throughput: `python -m bench.sim`.

1. Market data: subscribed clients (in a separate process, as real clients would be) count
   the frames they receive while the exchange's books and oracles change as fast as the
   server can publish them. md_frames_per_s = frames received by all clients per second.
2. Orders: a client process signs IOC orders ahead of time (signing is the client's cost),
   then posts them over one socket with up to 100 in flight and waits for every answer.
   orders_per_s = answered orders per second: the server's accept + recover + match rate.

Targets on the 2-core reference machine: 20k md frames/s, 2k orders/s.
The last line is `RESULT md_frames_per_s=... orders_per_s=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time
from decimal import Decimal
from typing import Any

MD_CLIENTS = 4
MD_SECONDS = 3.0
ORDERS = 3000
INFLIGHT = 100
XYZ = ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD")
MAKER = "0x" + "be" * 20


# --- client processes ---------------------------------------------------------------------


def _md_client(url: str, seconds: float, ready: Any, go: Any, result: Any) -> None:
    async def run() -> int:
        import websockets

        async with websockets.connect(url, max_size=None, compression=None) as ws:
            for coin in XYZ:
                for kind in ("bbo", "l2Book", "activeAssetCtx"):
                    sub = {"type": kind, "coin": coin}
                    await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
            ready.set()
            await asyncio.to_thread(go.wait)
            count = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                await ws.recv(decode=False)
                count += 1
            return count

    result.put(asyncio.run(run()))


def _order_client(url: str, key: str, n: int, result: Any) -> None:
    sys_path_fix()
    from tests.sim.doc_client import limit_order, sign_l1

    base = time.time_ns() // 1_000_000
    frames = []
    for i in range(n):
        # Alternate buy and sell so the position stays small; each one crosses the makers.
        order = limit_order(110000, i % 2 == 0, "26" if i % 2 == 0 else "24", "1", "Ioc")
        action = {"type": "order", "orders": [order], "grouping": "na"}
        nonce = base + i
        payload = {
            "action": action,
            "nonce": nonce,
            "signature": sign_l1(key, action, nonce),
            "vaultAddress": None,
        }
        frames.append(
            json.dumps(
                {"method": "post", "id": i + 1, "request": {"type": "action", "payload": payload}}
            )
        )

    async def run() -> tuple[float, int, int]:
        import websockets

        async with websockets.connect(url, max_size=None, compression=None) as ws:
            sent = answered = filled = 0
            start = time.perf_counter()
            while answered < n:
                while sent < n and sent - answered < INFLIGHT:
                    await ws.send(frames[sent])
                    sent += 1
                frame = json.loads(await ws.recv())
                if frame["channel"] == "post":
                    answered += 1
                    body = frame["data"]["response"]["payload"]
                    if body.get("status") == "ok":
                        status = body["response"]["data"]["statuses"][0]
                        filled += isinstance(status, dict) and "filled" in status
                elif frame["channel"] == "error":
                    raise RuntimeError(frame["data"])
            return time.perf_counter() - start, answered, filled

    result.put(asyncio.run(run()))


def sys_path_fix() -> None:
    import pathlib
    import sys

    root = str(pathlib.Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


# --- server side --------------------------------------------------------------------------


def _churn(sim: Any, step: int) -> None:
    """One change on every xyz market: new maker quotes (book, bbo) and a new oracle."""
    for coin in XYZ:
        start = sim.exchange.universe.asset(coin).start_px
        tick = Decimal(1).scaleb(-(6 - sim.exchange.universe.asset(coin).sz_decimals))
        shift = tick * 10 * (step % 7)
        bid, ask = start * Decimal("0.999") - shift, start * Decimal("1.001") - shift
        size = Decimal(1000)
        sim.exchange.replace_maker_quotes(
            coin,
            MAKER,
            [(bid.quantize(tick), size), ((bid * Decimal("0.999")).quantize(tick), size)],
            [(ask.quantize(tick), size), ((ask * Decimal("1.001")).quantize(tick), size)],
        )


async def bench_md(ctx: Any, seconds: float) -> float:
    from hip3.sim.harness import SimHarness

    async with SimHarness(feeds=False) as sim:
        ready = [ctx.Event() for _ in range(MD_CLIENTS)]
        go = ctx.Event()
        result = ctx.Queue()
        procs = [
            ctx.Process(target=_md_client, args=(sim.ws_url, seconds, ready[i], go, result))
            for i in range(MD_CLIENTS)
        ]
        for p in procs:
            p.start()
        for event in ready:
            await asyncio.to_thread(event.wait, 60)
        await asyncio.sleep(0.5)  # acks and initial snapshots out of the way
        go.set()
        step = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds + 2  # keep publishing until every client has finished
        while loop.time() < end and any(p.is_alive() for p in procs):
            step += 1
            _churn(sim, step)
            await asyncio.sleep(0)  # let the server flush and write
        counts = [await asyncio.to_thread(result.get, True, 30) for _ in procs]
        for p in procs:
            p.join(10)
        print(
            f"md: {step} market changes published, {sim.server.md_frames_written} frames "
            f"written by the server, {sum(counts)} received in the {seconds} s window"
        )
        return sum(counts) / seconds


async def bench_orders(ctx: Any, n: int) -> tuple[float, int, int]:
    from hip3.sim.harness import SimHarness
    from hip3.sim.server import ConnectionLimits

    # The exchange's 2000 messages/minute rule would cap this at 33 orders/s; lift it here,
    # because this measures the server's own capacity.
    limits = ConnectionLimits(messages_per_window=1_000_000_000)
    async with SimHarness(feeds=False, limits=limits) as sim:
        for coin in XYZ[:1]:
            sim.exchange.replace_maker_quotes(
                coin,
                MAKER,
                [(Decimal("24.9"), Decimal("1000000"))],
                [(Decimal("25.1"), Decimal("1000000"))],
            )
        result = ctx.Queue()
        proc = ctx.Process(target=_order_client, args=(sim.ws_url, sim.account[1], n, result))
        proc.start()
        elapsed, answered, filled = await asyncio.to_thread(result.get, True, 300)
        proc.join(10)
        return answered / elapsed, answered, filled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=MD_SECONDS)
    parser.add_argument("--orders", type=int, default=ORDERS)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    md_rate = asyncio.run(bench_md(ctx, args.seconds))
    print(f"md: {md_rate:,.0f} frames/s to {MD_CLIENTS} clients")
    orders_rate, answered, filled = asyncio.run(bench_orders(ctx, args.orders))
    print(f"orders: {answered} answered ({filled} filled), {orders_rate:,.0f} orders/s")
    print(f"RESULT md_frames_per_s={md_rate:.0f} orders_per_s={orders_rate:.0f}")


if __name__ == "__main__":
    main()
