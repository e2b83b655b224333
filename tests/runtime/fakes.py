"""Test doubles for driving the dispatcher without sockets: a clock, a recording transport and
a tiny exchange that answers the bot's posts consistently and knows the truth.

The exchange model is what makes generated orderings *realistic*: it only ever produces the
messages a real exchange could produce, in an order a real socket could deliver them.

- Posts are processed in the order they were written (one connection is one ordered stream),
  but the test decides *when* and with which outcome.
- Processing a post produces messages: its response and, for orders, `orderUpdates`,
  `userFills` and `user` (userEvents) stream messages. Messages of different channels may be
  delivered in any relative order (orderUpdates or fills before the post response), messages
  of one channel stay in order.
- Info responses are barriers: everything generated before them is delivered before them and
  everything generated after them is delivered after. This is the websocket ordering the
  reconciliation relies on ("a fill streamed before an answer is included in it").
- Subscription acks and market data are not ordered against anything (data before its ack).
- Losing the connection settles a prefix of the unprocessed posts (the exchange may have
  executed them) and loses every undelivered message; those stay available for tests that
  replay frames of an old epoch.

The truth: positions from the fills the exchange executed, resting orders, and what became of
every order by cloid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hip3.config import load_config
from hip3.events import FrameIn, OperatorCommand, SocketClosed, SocketOpened, Tick, WriteFailed
from hip3.protocol.frames import decode_frame
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.runtime.dispatcher import Dispatcher

WALL0_MS = 1_760_000_000_000
# A fixed test key (never a real one): keeps runs reproducible under derandomized profiles.
TEST_SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe512961708279f1d8b1a3b8f7a5e1d3")


@dataclass(frozen=True)
class MarketDef:
    coin: str
    asset: int
    sz_decimals: int
    oracle: Decimal


MARKETS: dict[str, MarketDef] = {
    "xyz:AAA": MarketDef("xyz:AAA", 110000, 2, Decimal("100")),
    "xyz:BBB": MarketDef("xyz:BBB", 110001, 1, Decimal("50")),
}
BY_ASSET = {m.asset: m for m in MARKETS.values()}

# What the exchange does with an order post. Several leave the bot without a usable answer.
ORDER_OUTCOMES = (
    "rest",  # accepted and resting (as if the book did not cross)
    "fill",  # fully filled at the limit price
    "partial",  # IOC: part filled, the rest cancelled
    "reject_benign",  # per-order error the bot treats as the market moving
    "reject_margin",  # per-order error that counts toward the rejection HardStop
    "top_err",  # the whole action refused: {"status":"err"}
    "post_error",  # post-level {"type":"error"} response
    "short",  # executed (filled) but the statuses array is shorter than the orders
    "unknown_status",  # executed (resting) but the status element is not recognised
    "error_channel",  # refused on the error channel naming the post id, no post response
    "no_response",  # executed (filled), the response never comes: the bot times out
)
# Outcomes after which the exchange has NOT executed the order.
NOT_EXECUTED = frozenset(
    {"reject_benign", "reject_margin", "top_err", "post_error", "error_channel"}
)


class FakeClock:
    """Monotonic and wall time that only move when the test says so."""

    def __init__(self) -> None:
        self.mono_ms = 10_000

    def now_ms(self) -> int:
        return self.mono_ms

    def now_ns(self) -> int:
        return self.mono_ms * 1_000_000

    def wall_ms(self) -> int:
        return WALL0_MS + self.mono_ms

    def advance(self, ms: int) -> None:
        self.mono_ms += ms


@dataclass
class Message:
    """One frame the exchange has generated and not yet delivered."""

    seq: int
    epoch: int
    channel: str  # ordering lane: "post:<id>", "orderUpdates", "userFills", "user", "error", ...
    text: str
    barrier: bool = False
    tids: tuple[int, ...] = ()
    post_id: int | None = None


def _wire(x: Decimal) -> str:
    return format(x.normalize(), "f")


def _frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


@dataclass
class ExchangeOrder:
    cloid: str
    oid: int
    coin: str
    is_buy: bool
    px: str
    orig_sz: Decimal
    remaining: Decimal
    reduce_only: bool
    timestamp: int
    status: str  # "open" | "filled" | "canceled" | "rejected"
    filled: Decimal = Decimal(0)

    def basic(self) -> dict:
        d = {
            "coin": self.coin,
            "side": "B" if self.is_buy else "A",
            "limitPx": self.px,
            "sz": _wire(self.remaining),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "origSz": _wire(self.orig_sz),
            "cloid": self.cloid,
        }
        if self.reduce_only:
            d["reduceOnly"] = True
        return d


@dataclass
class FakeExchange:
    user: str
    clock: FakeClock
    epoch: int | None = None  # the open connection's epoch
    subs: set[str] = field(default_factory=set)
    acks: list[tuple[int, dict]] = field(default_factory=list)
    inbox: list[dict] = field(default_factory=list)  # posts written, not yet processed
    outbox: list[Message] = field(default_factory=list)
    lost: list[Message] = field(default_factory=list)
    positions: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, ExchangeOrder] = field(default_factory=dict)  # by cloid: every order
    fills: list[dict] = field(default_factory=list)
    delivered_tids: set[int] = field(default_factory=set)
    processed: dict[int, str] = field(default_factory=dict)  # post id -> outcome
    next_oid: int = 7_000
    next_tid: int = 90_000
    _seq: int = 0

    # --- the truth -----------------------------------------------------------------------

    def open_orders(self) -> list[ExchangeOrder]:
        return [o for o in self.orders.values() if o.status == "open"]

    def size(self, coin: str) -> Decimal:
        return self.positions.get(coin, Decimal(0))

    def is_flat(self) -> bool:
        return not self.open_orders() and all(v == 0 for v in self.positions.values())

    # --- connection ----------------------------------------------------------------------

    def connect(self, epoch: int) -> None:
        self.epoch = epoch
        self.subs = set()
        self.acks = []

    def disconnect(self, executed: list[str]) -> None:
        """The socket is gone: the first len(executed) unprocessed posts were executed anyway
        (their answers are lost with the socket); the rest never reached the matching engine."""
        for outcome in executed:
            if not self.inbox:
                break
            self.process_next(outcome)
        self.inbox.clear()
        self.lost.extend(self.outbox)
        self.outbox.clear()
        self.acks.clear()
        self.subs.clear()
        self.epoch = None

    # --- what the bot writes -------------------------------------------------------------

    def receive(self, text: str) -> dict:
        msg = json.loads(text)
        method = msg.get("method")
        if method == "subscribe":
            self._subscribe(msg["subscription"])
        elif method == "ping":
            self._emit("pong", json.dumps({"channel": "pong"}))
        elif method == "post":
            self.inbox.append(msg)
        else:
            raise AssertionError(f"the bot wrote an unknown frame: {text[:200]}")
        return msg

    def _subscribe(self, sub: dict) -> None:
        assert self.epoch is not None, "subscribe written without an open socket"
        typ = sub["type"]
        key = f"{typ}:{sub['coin']}" if "coin" in sub else typ
        assert key not in self.subs, f"subscribed twice on one connection: {key}"
        self.subs.add(key)
        self.acks.append((self.epoch, sub))
        if typ == "userFills":
            assert sub["user"] == self.user
            snap = {"isSnapshot": True, "user": self.user, "fills": list(self.fills)}
            self._emit(
                "userFills", _frame("userFills", snap), tids=tuple(f["tid"] for f in self.fills)
            )

    def _emit(
        self,
        channel: str,
        text: str,
        *,
        barrier: bool = False,
        tids: tuple[int, ...] = (),
        post_id: int | None = None,
    ) -> None:
        self._seq += 1
        self.outbox.append(
            Message(self._seq, self.epoch or 0, channel, text, barrier, tids, post_id)
        )

    # --- delivery order ------------------------------------------------------------------

    def deliverable(self) -> list[int]:
        """Indices of outbox messages a socket could deliver next."""
        out: list[int] = []
        seen_channels: set[str] = set()
        for i, m in enumerate(self.outbox):
            if m.barrier:
                if i == 0:
                    out.append(i)
                break  # nothing generated after a barrier may overtake it
            if m.channel not in seen_channels:
                out.append(i)
            seen_channels.add(m.channel)
        return out

    def take(self, i: int) -> Message:
        m = self.outbox.pop(i)
        self.delivered_tids.update(m.tids)
        return m

    # --- processing posts ----------------------------------------------------------------

    def process_next(self, outcome: str) -> int | None:
        """Execute the oldest unprocessed post; returns its id."""
        if not self.inbox:
            return None
        msg = self.inbox.pop(0)
        pid = msg["id"]
        req = msg["request"]
        if req["type"] == "info":
            self._info(pid, req["payload"], error=outcome == "info_error")
            self.processed[pid] = "info"
            return pid
        action = req["payload"]["action"]
        typ = action["type"]
        if typ == "order":
            self._orders(pid, action["orders"], outcome)
        elif typ in ("cancel", "cancelByCloid"):
            self._cancels(pid, action, outcome)
        elif typ == "scheduleCancel":
            self._respond(pid, {"status": "ok", "response": {"type": "default"}})
        else:
            raise AssertionError(f"the bot sent an unexpected action type {typ!r}")
        self.processed[pid] = outcome
        return pid

    def _respond(self, pid: int, payload: Any, *, kind: str = "action") -> None:
        data = {"id": pid, "response": {"type": kind, "payload": payload}}
        self._emit(f"post:{pid}", _frame("post", data), post_id=pid)

    def _action_ok(self, pid: int, rtype: str, statuses: list) -> None:
        self._respond(
            pid, {"status": "ok", "response": {"type": rtype, "data": {"statuses": statuses}}}
        )

    def _orders(self, pid: int, wires: list[dict], outcome: str) -> None:
        if outcome == "top_err":
            self._respond(pid, {"status": "err", "response": "User or API Wallet does not exist."})
            return
        if outcome == "post_error":
            self._respond(pid, "502 Bad Gateway: order could not be processed", kind="error")
            return
        if outcome == "error_channel":
            self._emit("error", _frame("error", f"too many pending post requests id={pid}"))
            return
        statuses = [self._one_order(w, outcome) for w in wires]
        if outcome == "short":
            statuses = statuses[:-1]
        elif outcome == "unknown_status":
            statuses = [{"mystery": {"code": 7}} for _ in statuses]
        if outcome != "no_response":
            self._action_ok(pid, "order", statuses)

    def _one_order(self, w: dict, outcome: str) -> Any:
        m = BY_ASSET[w["a"]]
        if outcome == "reject_benign":
            return {
                "error": f"Order could not immediately match against any resting orders. asset={m.asset}"
            }
        if outcome == "reject_margin":
            self._record_rejected(w, m)
            return {"error": f"Insufficient margin to place order. asset={m.asset}"}
        oid = self.next_oid
        self.next_oid += 1
        size = Decimal(w["s"])
        o = ExchangeOrder(
            cloid=w["c"],
            oid=oid,
            coin=m.coin,
            is_buy=w["b"],
            px=w["p"],
            orig_sz=size,
            remaining=size,
            reduce_only=w["r"],
            timestamp=self.clock.wall_ms(),
            status="open",
        )
        assert o.cloid not in self.orders, f"cloid reused: {o.cloid}"
        pos = self.size(m.coin)
        if o.reduce_only:
            reduces = pos != 0 and (pos < 0) == o.is_buy
            if not reduces:
                o.status = "rejected"
                self.orders[o.cloid] = o
                return {"error": f"Reduce only order would increase position. asset={m.asset}"}
            size = min(size, abs(pos))
        self.orders[o.cloid] = o
        if outcome in ("rest", "unknown_status") and not o.reduce_only:
            # an IOC cannot rest; the model lets entries rest anyway to exercise cancels, but
            # never a reduce-only flatten order (HardStop would wait on it forever, unlike reality)
            self._order_update(o)
            return {"resting": {"oid": oid}}
        qty = size
        if outcome == "partial":
            half = (size / 2).quantize(Decimal(1).scaleb(-m.sz_decimals), rounding=ROUND_DOWN)
            qty = half if half > 0 else size
        self._fill(o, qty)
        o.status = "filled" if o.remaining == 0 else "canceled"
        o.remaining = Decimal(0) if outcome == "partial" else o.remaining
        self._order_update(o)
        return {"filled": {"totalSz": _wire(qty), "avgPx": o.px, "oid": oid}}

    def _record_rejected(self, w: dict, m: MarketDef) -> None:
        self.orders[w["c"]] = ExchangeOrder(
            w["c"], -1, m.coin, w["b"], w["p"], Decimal(w["s"]), Decimal(0), w["r"], 0, "rejected"
        )

    def _fill(self, o: ExchangeOrder, qty: Decimal) -> None:
        tid = self.next_tid
        self.next_tid += 1
        signed = qty if o.is_buy else -qty
        start = self.size(o.coin)
        self.positions[o.coin] = start + signed
        o.remaining -= qty
        o.filled += qty
        fill = {
            "coin": o.coin,
            "px": o.px,
            "sz": _wire(qty),
            "side": "B" if o.is_buy else "A",
            "time": self.clock.wall_ms(),
            "startPosition": _wire(start),
            "dir": "Open Long" if o.is_buy else "Open Short",
            "closedPnl": "0.0",
            "hash": "0x" + "ab" * 32,
            "oid": o.oid,
            "crossed": True,
            "fee": "0.01",
            "tid": tid,
            "cloid": o.cloid,
            "feeToken": "USDC",
        }
        self.fills.append(fill)
        if "userFills" in self.subs:
            self._emit(
                "userFills", _frame("userFills", {"user": self.user, "fills": [fill]}), tids=(tid,)
            )
        if "userEvents" in self.subs:
            # the same fill again on userEvents: the bot must count it once
            self._emit("user", _frame("user", {"fills": [fill]}), tids=(tid,))

    def _order_update(self, o: ExchangeOrder) -> None:
        if "orderUpdates" in self.subs:
            upd = {"order": o.basic(), "status": o.status, "statusTimestamp": self.clock.wall_ms()}
            self._emit("orderUpdates", _frame("orderUpdates", [upd]))

    def _cancels(self, pid: int, action: dict, outcome: str) -> None:
        if outcome == "post_error":
            self._respond(pid, "502 Bad Gateway: cancel could not be processed", kind="error")
            return
        if outcome == "error_channel":
            self._emit("error", _frame("error", f"too many pending post requests id={pid}"))
            return
        statuses: list[Any] = []
        for c in action["cancels"]:
            if action["type"] == "cancel":
                found = [o for o in self.open_orders() if o.oid == c["o"]]
            else:
                found = [o for o in self.open_orders() if o.cloid == c["cloid"]]
            if found:
                o = found[0]
                o.status = "canceled"
                self._order_update(o)
                statuses.append("success")
            else:
                statuses.append({"error": "Order was never placed, already canceled, or filled."})
        if outcome != "no_response":
            self._action_ok(pid, "cancel", statuses)

    def _info(self, pid: int, p: dict, *, error: bool) -> None:
        tids: tuple[int, ...] = ()
        if error:
            self._respond(pid, "429 Too Many Requests", kind="error")
            self.outbox[-1].barrier = True
            return
        typ = p["type"]
        if typ == "perpDexs":
            data: Any = [
                None,
                {
                    "name": "xyz",
                    "fullName": "XYZ test dex",
                    "deployer": "0x" + "11" * 20,
                    "oracleUpdater": None,
                    "feeRecipient": None,
                    "assetToStreamingOiCap": [],
                    "deployerFeeScale": "1.0",
                },
            ]
        elif typ == "meta":
            assert p["dex"] == "xyz"
            data = {
                "universe": [
                    {"szDecimals": m.sz_decimals, "name": m.coin, "maxLeverage": 10}
                    for m in MARKETS.values()
                ],
                "marginTables": [],
                "collateralToken": 0,
            }
        elif typ == "clearinghouseState":
            assert p["user"] == self.user and p["dex"] == "xyz"
            data = {
                "assetPositions": [
                    {
                        "type": "oneWay",
                        "position": {"coin": c, "szi": _wire(s), "entryPx": "100.0"},
                    }
                    for c, s in sorted(self.positions.items())
                    if s != 0
                ],
                "marginSummary": {"accountValue": "1000.0"},
                "withdrawable": "1000.0",
                "time": self.clock.wall_ms(),
            }
        elif typ == "openOrders":
            assert p["user"] == self.user and p["dex"] == "xyz"
            data = [o.basic() for o in self.open_orders()]
        elif typ == "userFills":
            data = list(self.fills)
            tids = tuple(f["tid"] for f in self.fills)
        elif typ == "perpsAtOpenInterestCap":
            assert p["dex"] == "xyz"
            data = []  # no market at its open-interest cap
        elif typ == "userFees":
            assert p["user"] == self.user
            data = {
                "userCrossRate": "0.00045",
                "userAddRate": "0.00015",
                "activeReferralDiscount": "0.0",
            }
        elif typ == "orderStatus":
            key = p["oid"]
            found = [
                o
                for o in self.orders.values()
                if (o.cloid == key if isinstance(key, str) else o.oid == key) and o.oid >= 0
            ]
            if not found:
                data = {"status": "unknownOid"}
            else:
                o = found[0]
                data = {
                    "status": "order",
                    "order": {"order": o.basic(), "status": o.status, "statusTimestamp": 1},
                }
        else:
            raise AssertionError(f"the bot asked an unexpected info type {typ!r}")
        self._respond(pid, {"type": typ, "data": data}, kind="info")
        self.outbox[-1].barrier = True
        self.outbox[-1].tids = tids


class FakeTransport:
    """Records every frame the bot writes and hands it to the exchange.

    `watch` is called with each decoded frame *before* the exchange sees it, at the exact
    moment of the write, so invariants about "what was true when this was written" can be
    checked there. Assertions must not be raised inside (the dispatcher would catch them):
    `watch` records violations instead.
    """

    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange
        self.sent: list[dict] = []
        self.opened: list[int] = []
        self.closed: list[tuple[int, str]] = []
        self.watch: Any = None
        self.open_epoch: int | None = None

    def open(self, epoch: int) -> None:
        self.opened.append(epoch)
        self.open_epoch = epoch

    def close(self, epoch: int, reason: str) -> None:
        self.closed.append((epoch, reason))
        if self.exchange.epoch == epoch:
            self.exchange.disconnect([])
        if self.open_epoch == epoch:
            self.open_epoch = None

    def send(self, data: str | bytes, post_id: int | None = None) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        msg = json.loads(text)
        if self.watch is not None:
            self.watch(msg)
        self.sent.append(msg)
        if self.exchange.epoch is not None:
            self.exchange.receive(text)


def order_wires(msg: dict) -> list[dict]:
    """The order wires of an outbound order post, else []."""
    if msg.get("method") != "post" or msg["request"]["type"] != "action":
        return []
    action = msg["request"]["payload"]["action"]
    return action["orders"] if action["type"] == "order" else []


def make_config(**overrides: Any):
    # the basic detector: every dislocated book is a signal, so orderings with orders are common
    base: dict[str, Any] = {
        "markets": [{"coin": c} for c in MARKETS],
        "detector": {"kind": "basic"},
    }
    base.update(overrides)
    return load_config(overrides=base)


class Harness:
    """A dispatcher wired to the fakes, with helpers that speak in exchange terms."""

    def __init__(self, **config_overrides: Any) -> None:
        import random

        self.clock = FakeClock()
        signer = FastSigner(TEST_SECRET)
        self.user = signer.address.lower()
        self.exchange = FakeExchange(self.user, self.clock)
        self.transport = FakeTransport(self.exchange)
        self.cfg = make_config(**config_overrides)
        self.d = Dispatcher(
            self.cfg,
            transport=self.transport,
            clock=self.clock,
            signer=signer,
            nonces=NonceSource(clock_ms=self.clock.wall_ms),
            user=self.user,
            rng=random.Random(7),
        )
        self._bbo_time = 0

    # --- events --------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.d.conn.epoch

    def handle(self, event: Any) -> None:
        self.d.handle(event)

    def start(self) -> None:
        self.d.start()

    def open_socket(self) -> None:
        epoch = self.d.conn.epoch
        if self.transport.open_epoch == epoch and self.exchange.epoch != epoch:
            self.exchange.connect(epoch)
        self.handle(SocketOpened(epoch))

    def drop_socket(self, executed: list[str], reason: str = "connection reset") -> None:
        epoch = self.d.conn.epoch
        if self.exchange.epoch == epoch:
            self.exchange.disconnect(executed)
        self.transport.open_epoch = None
        self.handle(SocketClosed(epoch, reason))

    def tick(self, advance_ms: int = 0) -> None:
        self.clock.advance(advance_ms)
        self.handle(Tick())

    def frame(self, text: str, epoch: int | None = None) -> None:
        self.handle(
            FrameIn(self.epoch if epoch is None else epoch, decode_frame(text), self.clock.now_ns())
        )

    def operator(self, kind: str) -> None:
        self.handle(OperatorCommand(kind, "test"))

    def write_failed(self, post_id: int) -> None:
        self.handle(WriteFailed(self.epoch, post_id, "broken pipe"))

    # --- exchange-side helpers -----------------------------------------------------------

    def subscribed(self, key: str) -> bool:
        return self.exchange.epoch == self.epoch and key in self.exchange.subs

    def ack(self, index: int = 0) -> None:
        epoch, sub = self.exchange.acks.pop(index)
        self.frame(
            json.dumps(
                {
                    "channel": "subscriptionResponse",
                    "data": {"method": "subscribe", "subscription": sub},
                }
            ),
            epoch,
        )

    def bbo(self, coin: str, *, dislocated: str | None = None) -> None:
        """A bbo frame; `dislocated` "buy" puts the ask 30 bps under the oracle, "sell" the bid
        30 bps over it (the default threshold is 11.5 bps), with size enough for an order."""
        m = MARKETS[coin]
        o = m.oracle
        bid, ask = o * Decimal("0.9995"), o * Decimal("1.0005")
        if dislocated == "buy":
            ask = o * Decimal("0.997")
        elif dislocated == "sell":
            bid = o * Decimal("1.003")
        self._bbo_time += 1
        level = {"sz": "40", "n": 3}
        data = {
            "coin": coin,
            "time": self.clock.wall_ms(),
            "bbo": [{"px": _wire(bid), **level}, {"px": _wire(ask), **level}],
        }
        self.frame(_frame("bbo", data))

    def ctx(self, coin: str) -> None:
        o = MARKETS[coin].oracle
        ctx = {
            "funding": "0.0000125",
            "openInterest": "1000.0",
            "prevDayPx": _wire(o),
            "dayNtlVlm": "100000.0",
            "premium": "0.0",
            "oraclePx": _wire(o),
            "markPx": _wire(o),
            "midPx": _wire(o),
            "impactPxs": [_wire(o), _wire(o)],
            "dayBaseVlm": "1000.0",
        }
        self.frame(_frame("activeAssetCtx", {"coin": coin, "ctx": ctx}))

    def deliver(self, index: int) -> Message:
        m = self.exchange.take(index)
        self.frame(m.text, m.epoch)
        return m

    def deliver_all(self) -> None:
        while self.exchange.outbox:
            self.deliver(self.exchange.deliverable()[0])

    def process(self, outcome: str = "fill") -> int | None:
        return self.exchange.process_next(outcome)

    def bring_up(self) -> None:
        """Connect, subscribe and reconcile in the plain order; market data for every coin."""
        if self.d.conn.state == "disconnected":
            self.start()
        self.open_socket()
        while self.exchange.acks:
            self.ack(0)
        for coin in MARKETS:
            self.bbo(coin)
            self.ctx(coin)
        for _ in range(50):
            if not (self.exchange.inbox or self.exchange.outbox):
                break
            while self.exchange.inbox:
                self.process("fill")
            self.deliver_all()

    def settle(self, outcome: str = "fill") -> None:
        """Process every post and deliver every message until the exchange is quiet."""
        for _ in range(200):
            if not (self.exchange.inbox or self.exchange.outbox):
                return
            while self.exchange.inbox:
                self.process(outcome)
            self.deliver_all()
        raise AssertionError("exchange never went quiet")

    # --- views ---------------------------------------------------------------------------

    def bot_positions(self) -> dict[str, Decimal]:
        return {c: p.size for c, p in self.d.positions.positions.items() if p.size != 0}

    def true_positions(self) -> dict[str, Decimal]:
        return {c: s for c, s in self.exchange.positions.items() if s != 0}
