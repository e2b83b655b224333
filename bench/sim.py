"""Simulator throughput: `python -m bench.sim`.

1. Market data: subscribed clients (in separate processes, as real clients would be) count
   the frames they receive while the exchange's books and oracles change as fast as the
   server can publish them. md_frames_per_s = market-data frames received by all clients per
   second. By default the clients are lean: a raw socket that parses websocket frame headers
   and counts bbo/l2Book/activeAssetCtx frames without decoding them (one JSON frame in a
   thousand is decoded as a check), so the number is the server's outbound rate rather than
   the speed of a Python client's frame parser. `--md-client websockets` counts with the
   websockets library instead (each frame parsed by it, not JSON-decoded), for comparison.
2. Orders: a client process signs IOC orders ahead of time (signing is the client's cost),
   then posts them over one socket with up to 100 in flight and waits for every answer.
   orders_per_s = answered orders per second: the server's accept + recover + match rate.
   The default client is lean too (pre-framed requests on a raw socket; every answer is
   JSON-decoded and checked); `--order-client websockets` uses the websockets library.

Targets on the 2-core reference machine: 20k md frames/s, 2k orders/s.
The last line is `RESULT md_frames_per_s=... orders_per_s=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import time
from decimal import Decimal
from typing import Any

MD_CLIENTS = 4
MD_CHANNELS = (b'{"channel":"bbo"', b'{"channel":"l2Book"', b'{"channel":"activeAssetCtx"')
CHECK_EVERY = 1000  # the lean client JSON-decodes one md frame in this many
MD_SECONDS = 3.0
ORDERS = 3000
INFLIGHT = 100
XYZ = ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD")
MAKER = "0x" + "be" * 20


# --- client processes ---------------------------------------------------------------------


def _md_subscriptions() -> list[str]:
    return [
        json.dumps({"method": "subscribe", "subscription": {"type": kind, "coin": coin}})
        for coin in XYZ
        for kind in ("bbo", "l2Book", "activeAssetCtx")
    ]


def _masked_text_frame(text: str) -> bytes:
    """A client-to-server text frame (clients must mask, RFC 6455 §5.3)."""
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    else:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    keystream = (mask * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")
    return header + mask + masked.to_bytes(size, "big")


async def _lean_connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host_port = url.removeprefix("ws://").partition("/")[0]
    host, _, port = host_port.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"websocket upgrade refused: {head[:80]!r}")
    return reader, writer


def split_frames(buf: bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """Complete server frames at the start of `buf`: ([(first byte, start, end)], consumed)."""
    frames = []
    pos, end = 0, len(buf)
    while end - pos >= 2:
        size = buf[pos + 1] & 0x7F  # server frames are never masked
        start = pos + 2
        if size == 126:
            if end - pos < 4:
                break
            size, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
        elif size == 127:
            if end - pos < 10:
                break
            size, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
        if end - start < size:
            break
        frames.append((buf[pos], start, start + size))
        pos = start + size
    return frames, pos


class FrameCounter:
    """Splits a server byte stream into websocket frames and counts the market-data ones."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.md_frames = 0
        self.checked = 0

    def feed(self, chunk: bytes) -> None:
        buf = self.buffer
        buf += chunk
        frames, consumed = split_frames(buf)
        for first, start, end in frames:
            if first == 0x81 and buf.startswith(MD_CHANNELS, start, start + 32):
                self.md_frames += 1
                if self.md_frames % CHECK_EVERY == 0:  # spot check: whole, valid JSON
                    json.loads(bytes(buf[start:end]))
                    self.checked += 1
        del buf[:consumed]


def _lean_md_client(url: str, seconds: float, ready: Any, go: Any, result: Any) -> None:
    async def run() -> int:
        reader, writer = await _lean_connect(url)
        for text in _md_subscriptions():
            writer.write(_masked_text_frame(text))
        await writer.drain()
        ready.set()
        await asyncio.to_thread(go.wait)
        counter = FrameCounter()
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        # Whatever arrived before `go` (acks, snapshots) is not counted.
        counter.feed(await reader.read(1 << 20))
        counter.md_frames = 0
        while loop.time() < end:
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError("server closed the connection")
            counter.feed(chunk)
        writer.close()
        return counter.md_frames

    result.put(asyncio.run(run()))


def _md_client(url: str, seconds: float, ready: Any, go: Any, result: Any) -> None:
    async def run() -> int:
        import websockets

        async with websockets.connect(url, max_size=None, compression=None) as ws:
            for text in _md_subscriptions():
                await ws.send(text)
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


def _signed_orders(key: str, n: int) -> list[str]:
    """n signed IOC post requests; signing is the client's cost, so it happens before timing."""
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
    return frames


class Answers:
    """Tally of post answers; any error frame aborts the run (the benchmark would be void)."""

    def __init__(self) -> None:
        self.answered = 0
        self.filled = 0

    def add(self, frame: dict[str, Any]) -> None:
        if frame["channel"] == "post":
            self.answered += 1
            body = frame["data"]["response"]["payload"]
            if body.get("status") == "ok":
                status = body["response"]["data"]["statuses"][0]
                self.filled += isinstance(status, dict) and "filled" in status
        elif frame["channel"] == "error":
            raise RuntimeError(frame["data"])


def _lean_order_client(url: str, key: str, n: int, result: Any) -> None:
    frames = [_masked_text_frame(text) for text in _signed_orders(key, n)]

    async def run() -> tuple[float, int, int]:
        reader, writer = await _lean_connect(url)
        answers = Answers()
        buf = bytearray()
        sent = 0
        start = time.perf_counter()
        while answers.answered < n:
            if sent < n and sent - answers.answered < INFLIGHT:
                upto = min(n, answers.answered + INFLIGHT)
                writer.write(b"".join(frames[sent:upto]))
                sent = upto
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError("server closed the connection")
            buf += chunk
            complete, consumed = split_frames(buf)
            for first, begin, end in complete:
                if first == 0x81:
                    answers.add(json.loads(bytes(buf[begin:end])))
            del buf[:consumed]
        elapsed = time.perf_counter() - start
        writer.close()
        return elapsed, answers.answered, answers.filled

    result.put(asyncio.run(run()))


def _order_client(url: str, key: str, n: int, result: Any) -> None:
    frames = _signed_orders(key, n)

    async def run() -> tuple[float, int, int]:
        import websockets

        async with websockets.connect(url, max_size=None, compression=None) as ws:
            answers = Answers()
            sent = 0
            start = time.perf_counter()
            while answers.answered < n:
                while sent < n and sent - answers.answered < INFLIGHT:
                    await ws.send(frames[sent])
                    sent += 1
                answers.add(json.loads(await ws.recv()))
            return time.perf_counter() - start, answers.answered, answers.filled

    result.put(asyncio.run(run()))


def sys_path_fix() -> None:
    import pathlib
    import sys

    root = str(pathlib.Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


# --- server side --------------------------------------------------------------------------


Quotes = tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
CHURN_PHASES = 7


def churn_quotes(sim: Any) -> dict[str, list[Quotes]]:
    """Per xyz coin, the maker's quotes for each phase of the churn (computed once, so the
    benchmark's own arithmetic is not charged to the server)."""
    quotes: dict[str, list[Quotes]] = {}
    for coin in XYZ:
        asset = sim.exchange.universe.asset(coin)
        tick = Decimal(1).scaleb(-(6 - asset.sz_decimals))
        size = Decimal(1000)
        phases = []
        for phase in range(CHURN_PHASES):
            shift = tick * 10 * phase
            bid = asset.start_px * Decimal("0.999") - shift
            ask = asset.start_px * Decimal("1.001") - shift
            phases.append(
                (
                    [(bid.quantize(tick), size), ((bid * Decimal("0.999")).quantize(tick), size)],
                    [(ask.quantize(tick), size), ((ask * Decimal("1.001")).quantize(tick), size)],
                )
            )
        quotes[coin] = phases
    return quotes


def _churn(sim: Any, quotes: dict[str, list[Quotes]], step: int) -> None:
    """One change on every xyz market: new maker quotes (book, bbo and context)."""
    replace = sim.exchange.replace_maker_quotes
    for coin in XYZ:
        bids, asks = quotes[coin][step % CHURN_PHASES]
        replace(coin, MAKER, bids, asks)


async def bench_md(ctx: Any, seconds: float, lean: bool) -> float:
    from hip3.sim.harness import SimHarness

    async with SimHarness(feeds=False) as sim:
        quotes = churn_quotes(sim)
        ready = [ctx.Event() for _ in range(MD_CLIENTS)]
        go = ctx.Event()
        result = ctx.Queue()
        client = _lean_md_client if lean else _md_client
        procs = [
            ctx.Process(target=client, args=(sim.ws_url, seconds, ready[i], go, result))
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
        start = loop.time()
        written_before = sim.server.md_frames_written
        end = start + seconds + 2  # keep publishing until every client has finished
        while loop.time() < end and any(p.is_alive() for p in procs):
            step += 1
            _churn(sim, quotes, step)
            await asyncio.sleep(0)  # let the server flush and write
        elapsed = loop.time() - start
        written = sim.server.md_frames_written - written_before
        counts = [await asyncio.to_thread(result.get, True, 30) for _ in procs]
        for p in procs:
            p.join(10)
        print(
            f"md ({'lean' if lean else 'websockets'} clients): {step} market changes published "
            f"in {elapsed:.1f} s, {written} frames written by the server "
            f"({written / elapsed:,.0f}/s), {sum(counts)} received in the {seconds} s window"
        )
        return sum(counts) / seconds


async def bench_orders(ctx: Any, n: int, lean: bool) -> tuple[float, int, int]:
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
        client = _lean_order_client if lean else _order_client
        proc = ctx.Process(target=client, args=(sim.ws_url, sim.account[1], n, result))
        proc.start()
        elapsed, answered, filled = await asyncio.to_thread(result.get, True, 300)
        proc.join(10)
        return answered / elapsed, answered, filled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=MD_SECONDS)
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument(
        "--md-client",
        choices=("lean", "websockets"),
        default="lean",
        help="how the md clients read: raw frame counting (default) or the websockets library",
    )
    parser.add_argument(
        "--order-client",
        choices=("lean", "websockets"),
        default="lean",
        help="how the order client talks: raw socket (default) or the websockets library",
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    md_rate = asyncio.run(bench_md(ctx, args.seconds, args.md_client == "lean"))
    print(f"md: {md_rate:,.0f} frames/s to {MD_CLIENTS} clients")
    orders_rate, answered, filled = asyncio.run(
        bench_orders(ctx, args.orders, args.order_client == "lean")
    )
    print(
        f"orders ({args.order_client} client): {answered} answered ({filled} filled), "
        f"{orders_rate:,.0f} orders/s"
    )
    print(f"RESULT md_frames_per_s={md_rate:.0f} orders_per_s={orders_rate:.0f}")


if __name__ == "__main__":
    main()
