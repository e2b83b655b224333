"""Hot path, in-process: a decoded bbo frame that creates a signal -> signed order at the socket.

    python -m bench.hot_path [--triggers 5000] [--profile]

A real `Dispatcher` (configured like bench/tick_to_post.py's bot: full detector, filters that
want a moving oracle off, journal off) is driven through `handle()` with `FrameIn` events, the
way the runtime tests drive it, against the simulator's exchange core without a socket
(`hip3.sim.delivery`): the same matching, answers, user streams and market data the simulator's
server sends, so subscriptions, the reconciliation's info posts, the dead man's switch and the
orders meet the one exchange model of the tests. Once the bot is READY-TRADING, every trigger
is the exchange's own bbo frame after the maker moved its quotes so that the ask sits 30 bps
below the oracle: the detector signals, the executor sends an IOC. Before the exchange reads
that IOC the maker puts the normal book back, so the IOC does not fill ("could not immediately
match", from the real matching), no position builds up and the next trigger is again a fresh
entry. The stale book also moves the exchange's mid, so its context frame, delivered after
the trigger, makes the detector fire again while the order is pending: the executor refuses
that one (`pending_order` in the blocked counts), untimed. The bench clock runs `--step-ms`
ahead per trigger so the bot's 2000-messages-a-minute budget never refuses a trigger; the
exchange's clock is the bot's wall clock. The account is credited with traded volume, so the
exchange's per-address request budget (10,000 + 1 per USDC traded) admits every order.

What is timed is the bot alone: the trigger frame is built and decoded before the clock
starts, and what the bot writes is only queued by the transport (stamped at the order post);
the exchange reads it, executes and answers between triggers, outside the measured span.

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
import random
import time
from decimal import Decimal
from typing import Any

from bench.tick_to_post import (
    COIN,
    MAKER,
    NORMAL_BPS,
    ORACLE,
    STALE_BPS,
    _quotes,
    bot_config,
    calibration_ns,
    percentile,
    print_profile,
)
from hip3.events import FrameIn, SocketOpened, Tick
from hip3.protocol.frames import decode_frame
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.runtime.dispatcher import Dispatcher
from hip3.sim.delivery import Delivery
from hip3.sim.exchange import Exchange
from hip3.sim.universe import Universe

# A fixed bench key (never a real one).
BENCH_SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe512961708279f1d8b1a3b8f7a5e1d3")
# The account has traded: 10,600 orders fit its request budget (10,000 + 1 per USDC traded)
# and the dead man's switch (scheduleCancel wants $1M traded) is allowed.
TRADED_USD = Decimal(10_000_000)
FUNDS_USD = Decimal(100_000)
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


class QueueingTransport:
    """Keeps what the bot writes for the exchange to read later (outside the timed span) and
    stamps the moment an order post is handed over."""

    def __init__(self) -> None:
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
        self.step_ms = step_ms
        self.clock = BenchClock()
        signer = FastSigner(BENCH_SECRET)
        self.user = signer.address.lower()
        self.delivery = Delivery()
        self.exchange = Exchange(
            Universe.default(),
            clock_ms=self.clock.wall_ms,
            emit=self.delivery.on_event,
            seed=1,
            funding=False,
        )
        self.delivery.attach(self.exchange)
        self.exchange.fund_every_dex(self.user, FUNDS_USD)
        self.exchange.credit_traded_volume(self.user, TRADED_USD)
        self.exchange.set_oracle(COIN, ORACLE)
        self._jitter = 0
        self.quote(stale=False)
        self.transport = QueueingTransport()
        self.d = Dispatcher(
            bot_config("ws://127.0.0.1:9/ws"),
            transport=self.transport,
            clock=self.clock,
            signer=signer,
            nonces=NonceSource(clock_ms=self.clock.wall_ms),
            user=self.user,
            rng=random.Random(7),
        )
        self.d.start()
        self.delivery.connect(self.d.conn.epoch)
        self.d.handle(SocketOpened(self.d.conn.epoch))
        self.pump()
        for _ in range(20):
            self.tick()
            if self.d.ready.trading():
                break
        if not self.d.ready.trading():
            raise RuntimeError(f"the bot did not become READY: {self.d.ready.describe()}")

    # --- the exchange's side --------------------------------------------------------------

    def quote(self, *, stale: bool) -> None:
        """The maker requotes: a normal book, or (stale) both sides shifted down so the ask
        sits STALE_BPS under the oracle. The size alternates so every bbo is a new one."""
        if stale:
            bids, asks = _quotes(ORACLE, STALE_BPS + 10, -STALE_BPS, self._jitter % 2)
        else:
            bids, asks = _quotes(ORACLE, NORMAL_BPS, NORMAL_BPS, self._jitter % 2)
        self._jitter += 1
        self.exchange.replace_maker_quotes(COIN, MAKER, bids, asks)

    def event(self, data: bytes) -> FrameIn:
        return FrameIn(self.d.conn.epoch, decode_frame(data), self.clock.now_ns())

    def pump(self) -> None:
        """The exchange reads what the bot wrote and executes it; its frames (answers, user
        streams, market data) reach the bot in the order they were written, until quiet."""
        delivery = self.delivery
        for _ in range(100):
            q = self.transport.queued
            if not q and not delivery.requests and not delivery.frames:
                return
            self.transport.queued = []
            for data in q:
                delivery.receive(data)
            while delivery.requests:
                delivery.execute_next()
            delivery.publish_market_data()
            while delivery.frames:
                self.d.handle(self.event(delivery.take(0).data))
        raise RuntimeError("the exchange never went quiet")

    def market(self) -> None:
        """A fresh normal book and oracle reach the bot."""
        self.quote(stale=False)
        self.exchange.set_oracle(COIN, ORACLE)
        self.delivery.publish_market_data()
        self.pump()

    def tick(self) -> None:
        self.clock.advance(100)
        self.d.handle(Tick())
        self.pump()

    # --- triggers -------------------------------------------------------------------------

    def trigger_event(self) -> FrameIn:
        """The stale book's bbo frame, as the exchange writes it, decoded. The book is put
        back at once, so the IOC the frame causes meets a normal book; the frames written
        after the trigger (the context, the restored book) reach the bot in `between`."""
        self.quote(stale=True)
        self.delivery.publish_market_data()
        lane = "bbo:" + COIN
        heads = [i for i in self.delivery.deliverable() if self.delivery.frames[i].lane == lane]
        if len(heads) != 1:
            raise RuntimeError(f"no bbo frame for the trigger: {self.delivery.lanes()}")
        frame = self.delivery.take(heads[0])
        self.quote(stale=False)
        return self.event(frame.data)

    def between(self, i: int) -> None:
        """Settle the order, put a normal book back, keep ctx fresh and the timer ticking."""
        self.pump()
        self.clock.advance(self.step_ms)
        self.market()
        if i % 2 == 0:
            self.tick()

    def trigger(self) -> int | None:
        """One stale bbo: ns from handle() entry to the order post handed to send, or None."""
        ev = self.trigger_event()
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
    sent_before = b.d.executor.submitted
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
        ev = b.trigger_event()
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
        "orders": b.d.executor.submitted - sent_before,
        "order_states": dict(b.d.orders.final_counts),
        "exchange_positions": {c: s for c, s in b.exchange.positions(b.user).items() if s},
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
