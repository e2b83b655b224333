"""Hot path, in-process: a decoded bbo frame that creates a signal -> signed order at the socket.

    python -m bench.hot_path [--triggers 5000] [--profile]

A real `Dispatcher` (configured like bench/tick_to_post.py's bot: full detector, filters that
want a moving oracle off, journal off) is driven through `handle()` with `FrameIn` events, the
way the runtime tests drive it, against a tiny in-process exchange defined here that answers
subscriptions, the reconciliation's info posts, the dead man's switch and orders. Once the
bot is READY-TRADING, every trigger is one bbo frame whose ask sits 30 bps below the oracle:
the detector signals, the executor sends an IOC. The exchange then rejects that IOC ("could
not immediately match"), so the next trigger is again a fresh entry, and a normal book
follows. Frames are decoded before the clock starts; the bench clock runs `--step-ms` ahead
per trigger so the bot's 2000-messages-a-minute budget never refuses a trigger.

Two passes over the same sequence:

- end to end (no instrumentation): `handle()` entry -> order bytes handed to `transport.send`;
- stages (thin wrappers, ~1 us each): dispatch + MarketState + detector, executor gates,
  order build (price/size/notional, wire, action), `Wire.post_action` before signing,
  signing (`sign_l1`), and after signing to `send`.

The last line is `RESULT hot_path_p50_us=... hot_path_p99_us=... sign_p50_us=... n=...`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import random
import time
from decimal import Decimal
from typing import Any

from bench.tick_to_post import (
    COIN,
    LEVEL_USD,
    NORMAL_BPS,
    ORACLE,
    STALE_BPS,
    bot_config,
    calibration_ns,
    percentile,
    print_profile,
)
from hip3.events import FrameIn, Tick
from hip3.protocol.frames import decode_frame
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.runtime.dispatcher import Dispatcher

# A fixed bench key (never a real one).
BENCH_SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe512961708279f1d8b1a3b8f7a5e1d3")
SZ_DECIMALS = 2
ASSET = 110000
REJECT = "Order could not immediately match against any resting orders. asset=110000"
perf = time.perf_counter_ns


class BenchClock:
    """Real monotonic time plus a skew the bench moves forward between triggers."""

    def __init__(self) -> None:
        self.skew_ns = 0
        self._wall0_ms = time.time_ns() // 1_000_000 - perf() // 1_000_000

    def now_ns(self) -> int:
        return perf() + self.skew_ns

    def now_ms(self) -> int:
        return (perf() + self.skew_ns) // 1_000_000

    def wall_ms(self) -> int:
        return self._wall0_ms + (perf() + self.skew_ns) // 1_000_000

    def advance(self, ms: float) -> None:
        self.skew_ns += int(ms * 1_000_000)


def _frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


def _plain(x: Decimal) -> str:
    return format(x.normalize(), "f")


class BenchExchange:
    """Answers everything the bot writes, in write order, as text frames (the post books of
    tests/runtime/fakes.py, reduced to what one market and rejected IOCs need)."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.pending: list[str] = []  # frames to deliver to the bot
        self.orders = 0

    def receive(self, text: str) -> None:
        msg = json.loads(text)
        method = msg.get("method")
        if method == "subscribe":
            sub = msg["subscription"]
            ack = {"method": "subscribe", "subscription": sub}
            self.pending.append(_frame("subscriptionResponse", ack))
            if sub["type"] == "userFills":
                snap = {"isSnapshot": True, "user": self.user, "fills": []}
                self.pending.append(_frame("userFills", snap))
        elif method == "ping":
            self.pending.append(json.dumps({"channel": "pong"}))
        elif method == "post":
            pid, req = msg["id"], msg["request"]
            if req["type"] == "info":
                payload: Any = {"type": req["payload"]["type"], "data": self._info(req["payload"])}
                self._respond(pid, "info", payload)
            else:
                action = req["payload"]["action"]
                if action["type"] == "order":
                    self.orders += 1
                    statuses = [{"error": REJECT} for _ in action["orders"]]
                    body = {"type": "order", "data": {"statuses": statuses}}
                else:
                    body = {"type": "default"}
                self._respond(pid, "action", {"status": "ok", "response": body})
        else:
            raise AssertionError(f"unexpected frame from the bot: {text[:200]}")

    def _respond(self, pid: int, kind: str, payload: Any) -> None:
        data = {"id": pid, "response": {"type": kind, "payload": payload}}
        self.pending.append(_frame("post", data))

    def _info(self, p: dict) -> Any:
        typ = p["type"]
        if typ == "perpDexs":
            dex = {
                "name": "xyz",
                "fullName": "XYZ bench dex",
                "deployer": "0x" + "11" * 20,
                "oracleUpdater": None,
                "feeRecipient": None,
                "assetToStreamingOiCap": [],
                "deployerFeeScale": "1.0",
            }
            return [None, dex]
        if typ == "meta":
            asset = {"szDecimals": SZ_DECIMALS, "name": COIN, "maxLeverage": 10}
            return {"universe": [asset], "marginTables": [], "collateralToken": 0}
        if typ == "clearinghouseState":
            return {
                "assetPositions": [],
                "marginSummary": {"accountValue": "1000.0"},
                "withdrawable": "1000.0",
                "time": 0,
            }
        if typ in ("openOrders", "userFills", "perpsAtOpenInterestCap"):
            return []
        if typ == "userFees":
            return {
                "userCrossRate": "0.00045",
                "userAddRate": "0.00015",
                "activeReferralDiscount": "0.0",
            }
        if typ == "orderStatus":
            return {"status": "unknownOid"}
        raise AssertionError(f"unexpected info type {typ!r}")


class BenchTransport:
    """Stamps and keeps every frame; the exchange sees them only when the bench pumps."""

    def __init__(self, exchange: BenchExchange) -> None:
        self.exchange = exchange
        self.queued: list[str | bytes] = []
        self.last_post_ns = 0
        self.open_epoch: int | None = None

    def open(self, epoch: int) -> None:
        self.open_epoch = epoch

    def close(self, epoch: int, reason: str) -> None:
        self.open_epoch = None

    def send(self, data: str | bytes, post_id: int | None = None) -> None:
        if post_id is not None:
            self.last_post_ns = perf()
        self.queued.append(data)


class Bench:
    def __init__(self, step_ms: float) -> None:
        from hip3.events import SocketOpened

        self.step_ms = step_ms
        self.clock = BenchClock()
        signer = FastSigner(BENCH_SECRET)
        self.user = signer.address.lower()
        self.exchange = BenchExchange(self.user)
        self.transport = BenchTransport(self.exchange)
        self.d = Dispatcher(
            bot_config("ws://127.0.0.1:9/ws"),
            transport=self.transport,
            clock=self.clock,
            signer=signer,
            nonces=NonceSource(clock_ms=self.clock.wall_ms),
            user=self.user,
            rng=random.Random(7),
        )
        self._bbo_time = 0
        self.d.start()
        self.d.handle(SocketOpened(self.d.conn.epoch))
        self.pump()
        self.ctx()
        self.bbo(stale=False)
        for _ in range(20):
            self.tick()
            if self.d.ready.trading():
                break
        if not self.d.ready.trading():
            raise RuntimeError(f"the bot did not become READY: {self.d.ready.describe()}")

    # --- frames ---------------------------------------------------------------------------

    def event(self, text: str) -> FrameIn:
        return FrameIn(self.d.conn.epoch, decode_frame(text), self.clock.now_ns())

    def bbo_text(self, *, stale: bool) -> str:
        o = ORACLE
        if stale:  # both sides shifted down: the ask STALE_BPS under the oracle
            bid_bps, ask_bps = STALE_BPS + 10, -STALE_BPS
        else:
            bid_bps, ask_bps = NORMAL_BPS, NORMAL_BPS
        bid = (o * (1 - bid_bps / 10_000)).quantize(Decimal("0.001"))
        ask = (o * (1 + ask_bps / 10_000)).quantize(Decimal("0.001"))
        size = (LEVEL_USD / o).quantize(Decimal("0.01")) + Decimal(self._bbo_time % 2) / 100
        self._bbo_time += 1
        level = {"sz": _plain(size), "n": 3}
        data = {
            "coin": COIN,
            "time": self.clock.wall_ms(),
            "bbo": [{"px": _plain(bid), **level}, {"px": _plain(ask), **level}],
        }
        return _frame("bbo", data)

    def bbo(self, *, stale: bool) -> None:
        self.d.handle(self.event(self.bbo_text(stale=stale)))
        self.pump()

    def ctx(self) -> None:
        o = _plain(ORACLE)
        ctx = {
            "funding": "0.0000125",
            "openInterest": "1000.0",
            "prevDayPx": o,
            "dayNtlVlm": "100000.0",
            "premium": "0.0",
            "oraclePx": o,
            "markPx": o,
            "midPx": o,
            "impactPxs": [o, o],
            "dayBaseVlm": "1000.0",
        }
        self.d.handle(self.event(_frame("activeAssetCtx", {"coin": COIN, "ctx": ctx})))
        self.pump()

    def tick(self) -> None:
        self.clock.advance(100)
        self.d.handle(Tick())
        self.pump()

    def pump(self) -> None:
        """Hand what the bot wrote to the exchange and its answers back, until quiet."""
        for _ in range(100):
            q = self.transport.queued
            if not q and not self.exchange.pending:
                return
            self.transport.queued = []
            for data in q:
                self.exchange.receive(data.decode() if isinstance(data, bytes) else data)
            answers, self.exchange.pending = self.exchange.pending, []
            for text in answers:
                self.d.handle(self.event(text))
        raise RuntimeError("the exchange never went quiet")

    # --- triggers -------------------------------------------------------------------------

    def between(self, i: int) -> None:
        """Settle the order, put a normal book back, keep ctx fresh and the timer ticking."""
        self.pump()
        self.clock.advance(self.step_ms)
        self.bbo(stale=False)
        if i % 2 == 0:
            self.tick()
        if i % 10 == 0:
            self.ctx()

    def trigger(self) -> int | None:
        """One stale bbo: ns from handle() entry to the order post handed to send, or None."""
        ev = self.event(self.bbo_text(stale=True))
        self.transport.last_post_ns = 0
        t0 = perf()
        self.d.handle(ev)
        sent = self.transport.last_post_ns
        return sent - t0 if sent else None


# --- stage instrumentation ----------------------------------------------------------------


class _SignerProxy:
    def __init__(self, signer: Any, marks: dict[str, int]) -> None:
        self._signer = signer
        self._marks = marks

    def sign_l1(self, *a: Any, **kw: Any) -> Any:
        marks = self._marks
        marks["sign0"] = perf()
        r = self._signer.sign_l1(*a, **kw)
        marks["sign1"] = perf()
        return r


def instrument(b: Bench, marks: dict[str, int]) -> None:
    d = b.d
    det_eval, gate, post_action = d.detector.evaluate, d.executor._gate, d.wire.post_action

    def evaluate(m: Any, now_ns: int) -> Any:
        r = det_eval(m, now_ns)
        marks["det1"] = perf()
        return r

    def _gate(sig: Any, now_ns: int) -> Any:
        marks["gate0"] = perf()
        r = gate(sig, now_ns)
        marks["gate1"] = perf()
        return r

    def wire_post(action: dict, **kw: Any) -> Any:
        marks["post0"] = perf()
        return post_action(action, **kw)

    d.detector.evaluate = evaluate
    d.executor._gate = _gate
    d.wire.post_action = wire_post
    d.wire.signer = _SignerProxy(d.wire.signer, marks)


STAGES = (
    ("detect", "handle -> detector decided (dispatch, MarketState, evaluate)"),
    ("to_gates", "detector -> executor gates start"),
    ("gates", "executor gates"),
    ("build", "gates -> Wire.post_action (price, size, notional, wire, action)"),
    ("pre_sign", "Wire.post_action -> sign_l1"),
    ("sign", "sign_l1"),
    ("post_sign", "sign_l1 done -> transport.send"),
)


def stage_split(t0: int, marks: dict[str, int], sent: int) -> dict[str, int]:
    return {
        "detect": marks["det1"] - t0,
        "to_gates": marks["gate0"] - marks["det1"],
        "gates": marks["gate1"] - marks["gate0"],
        "build": marks["post0"] - marks["gate1"],
        "pre_sign": marks["sign0"] - marks["post0"],
        "sign": marks["sign1"] - marks["sign0"],
        "post_sign": sent - marks["sign1"],
    }


def run(triggers: int, warmup: int, step_ms: float, profile: bool) -> dict[str, Any]:
    b = Bench(step_ms)
    sent_before = b.exchange.orders
    for i in range(warmup):
        b.trigger()
        b.between(i)
    e2e: list[int] = []
    missed = 0
    prof = cProfile.Profile() if profile else None
    gc.collect()
    for i in range(triggers):
        if prof is not None:
            prof.enable()
        ns = b.trigger()
        if prof is not None:
            prof.disable()
        if ns is None:
            missed += 1
        else:
            e2e.append(ns)
        b.between(i)

    # second pass: the same sequence with stage marks
    marks: dict[str, int] = {}
    instrument(b, marks)
    stages: dict[str, list[int]] = {k: [] for k, _ in STAGES}
    total: list[int] = []
    for i in range(triggers):
        marks.clear()
        ev = b.event(b.bbo_text(stale=True))
        b.transport.last_post_ns = 0
        t0 = perf()
        b.d.handle(ev)
        sent = b.transport.last_post_ns
        if sent and len(marks) == 6:
            for k, v in stage_split(t0, marks, sent).items():
                stages[k].append(v)
            total.append(sent - t0)
        b.between(i)
    if prof is not None:
        print_profile(prof, top=30, ours=40)
    return {
        "e2e": e2e,
        "missed": missed,
        "stages": stages,
        "staged_total": total,
        "orders": b.exchange.orders - sent_before,
        "blocked": dict(b.d.executor.blocked),
        "skips": dict(b.d.detector.skips) if hasattr(b.d.detector, "skips") else {},
    }


def _row(label: str, xs: list[int]) -> str:
    if not xs:
        return f"  {label:<10} (none)"
    return (
        f"  {label:<10} p50 {percentile(xs, 0.5) / 1000:7.1f}  p90 {percentile(xs, 0.9) / 1000:7.1f}"
        f"  p99 {percentile(xs, 0.99) / 1000:7.1f} us"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--triggers", type=int, default=5000, help="timed triggers per pass")
    p.add_argument("--warmup", type=int, default=300, help="untimed triggers first")
    p.add_argument("--step-ms", type=float, default=50.0, help="bench clock step per trigger")
    p.add_argument("--profile", action="store_true", help="cProfile the end-to-end pass")
    args = p.parse_args()
    if args.triggers < 10:
        p.error("--triggers must be at least 10")
    print(f"machine calibration: sum(range(100)) = {calibration_ns():.0f} ns (idle reference 545)")
    r = run(args.triggers, args.warmup, args.step_ms, args.profile)
    e2e = r["e2e"]
    if not e2e:
        raise SystemExit(f"no order was sent; blocked {r['blocked']}, skips {r['skips']}")
    print(
        f"triggers {args.triggers} x2  orders {r['orders']}  missed {r['missed']}"
        f"  blocked {r['blocked']}  detector skips {r['skips']}"
    )
    print("end to end (handle() -> order bytes at transport.send), uninstrumented:")
    print(_row("hot_path", e2e))
    print("stages (instrumented pass):")
    for key, label in STAGES:
        print(_row(key, r["stages"][key]) + f"   {label}")
    print(_row("total", r["staged_total"]) + "   (with the instrumentation)")
    sign = r["stages"]["sign"]
    print(
        f"RESULT hot_path_p50_us={percentile(e2e, 0.5) / 1000:.1f}"
        f" hot_path_p99_us={percentile(e2e, 0.99) / 1000:.1f}"
        f" sign_p50_us={percentile(sign, 0.5) / 1000:.1f} n={len(e2e)}"
    )


if __name__ == "__main__":
    main()
