"""Test helpers for driving the dispatcher without sockets: a fake clock, a recording
transport, and the dispatcher wired to the simulator's exchange core through the delivery layer
(`hip3.sim.delivery`): one exchange model for every test, whose frames the test delivers in
any order a real connection could produce.

A fake clock drives both sides (the exchange's clock is the bot's wall clock, so nonces and
fill times agree); a recording transport hands what the bot writes to the delivery layer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from hip3.config import load_config
from hip3.events import FrameIn, OperatorCommand, SocketClosed, SocketOpened, Tick, WriteFailed
from hip3.protocol.actions import cancel_action, limit_order_wire, order_action
from hip3.protocol.frames import decode_frame
from hip3.protocol.numbers import Rounding, format_price
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.runtime.dispatcher import Dispatcher
from hip3.sim.delivery import Delivery, Frame
from hip3.sim.exchange import Exchange
from hip3.sim.universe import Universe

WALL0_MS = 1_760_000_000_000
# A fixed test key (never a real one): keeps runs reproducible under derandomized profiles.
TEST_SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe512961708279f1d8b1a3b8f7a5e1d3")
MAKER = "0x" + "77" * 20
COINS = ("xyz:AAA", "xyz:BBB")
MARGIN_TEXT = "Insufficient margin to place order."


@dataclass(frozen=True)
class MarketDef:
    coin: str
    asset: int
    sz_decimals: int
    oracle: Decimal  # the exchange's starting oracle price


# the oracle each test market starts from (the exchange is moved there before the bot starts)
_TEST_ORACLES = {"xyz:AAA": Decimal("100"), "xyz:BBB": Decimal("50")}
MARKETS: dict[str, MarketDef] = {
    a.coin: MarketDef(a.coin, a.asset_id, a.sz_decimals, _TEST_ORACLES[a.coin])
    for a in (Universe.default().asset(c) for c in COINS)
}


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


class RecordingTransport:
    """Records every frame the bot writes and hands it to the exchange's side.

    `watch` is called with each decoded frame at the moment of the write, before the exchange
    sees it. It must not raise (the dispatcher would catch it): it records violations.
    """

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
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
        c = self.delivery.connection
        if c is not None and c.number == epoch:
            self.delivery.disconnect()
        if self.open_epoch == epoch:
            self.open_epoch = None

    def send(self, data: str | bytes, post_id: int | None = None) -> None:
        msg = msgspec.json.decode(data)
        if self.watch is not None:
            self.watch(msg)
        self.sent.append(msg)
        c = self.delivery.connection
        if c is not None and c.number == self.open_epoch:
            self.delivery.receive(data)


def order_wires(msg: dict) -> list[dict]:
    """The order wires of an outbound order post, else []."""
    if msg.get("method") != "post" or msg["request"]["type"] != "action":
        return []
    action = msg["request"]["payload"]["action"]
    return action["orders"] if action["type"] == "order" else []


def make_config(**overrides: Any):
    # the basic detector: every dislocated book is a signal, so orderings with orders are common
    base: dict[str, Any] = {"markets": [{"coin": c} for c in COINS], "detector": {"kind": "basic"}}
    base.update(overrides)
    return load_config(overrides=base)


class Harness:
    """A dispatcher against the exchange core, with helpers that speak in exchange terms."""

    def __init__(self, **config_overrides: Any) -> None:
        self.clock = FakeClock()
        signer = FastSigner(TEST_SECRET)
        self.signer = signer
        self.user = signer.address.lower()
        self.delivery = Delivery()
        self.exchange = Exchange(
            Universe.default(),
            clock_ms=self.clock.wall_ms,
            emit=self.delivery.on_event,
            seed=7,
            funding=False,
        )
        self.delivery.attach(self.exchange)
        for dex in self.exchange.universe.dexes:
            self.exchange.fund(self.user, Decimal(100_000), dex.name)
        self.oracle = {c: m.oracle for c, m in MARKETS.items()}
        for coin in COINS:
            self.exchange.set_oracle(coin, self.oracle[coin])
            self.quote(coin)
        self.delivery.publish_market_data()  # nobody listens yet: nothing is queued
        self.transport = RecordingTransport(self.delivery)
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
        # another client of the same account (a second terminal, a person): its own nonces
        self._other_nonces = NonceSource(clock_ms=lambda: self.clock.wall_ms() + 5_000)

    # --- events ---------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.d.conn.epoch

    def handle(self, event: Any) -> None:
        self.d.handle(event)

    def start(self) -> None:
        self.d.start()

    def open_socket(self) -> None:
        epoch = self.d.conn.epoch
        if self.transport.open_epoch == epoch and not self.delivery.is_open:
            self.delivery.connect(epoch)
        self.handle(SocketOpened(epoch))

    def drop_socket(self, executed: int = 0, reason: str = "connection reset") -> None:
        """The connection dies; the exchange still executes the next `executed` requests."""
        epoch = self.d.conn.epoch
        c = self.delivery.connection
        if c is not None and c.number == epoch:
            self.delivery.disconnect(executed)
        self.transport.open_epoch = None
        self.handle(SocketClosed(epoch, reason))

    def tick(self, advance_ms: int = 0) -> None:
        self.clock.advance(advance_ms)
        self.handle(Tick())

    def frame(self, text: str | bytes, epoch: int | None = None) -> None:
        self.handle(
            FrameIn(self.epoch if epoch is None else epoch, decode_frame(text), self.clock.now_ns())
        )

    def operator(self, kind: str) -> None:
        self.handle(OperatorCommand(kind, "test"))

    def write_failed(self, post_id: int) -> None:
        self.handle(WriteFailed(self.epoch, post_id, "broken pipe"))

    # --- the market -----------------------------------------------------------------------

    def quote(self, coin: str, *, dislocated: str | None = None, depth: str = "40") -> None:
        """The maker's quotes around the oracle; `dislocated` "buy" puts the ask 30 bps under
        the oracle, "sell" the bid 30 bps over it (the default threshold is 11.5 bps)."""
        o = self.oracle[coin]
        bid, ask = o * Decimal("0.9995"), o * Decimal("1.0005")
        if dislocated == "buy":
            ask = o * Decimal("0.997")
            bid = ask * Decimal("0.999")
        elif dislocated == "sell":
            bid = o * Decimal("1.003")
            ask = bid * Decimal("1.001")
        size = Decimal(depth)
        self.exchange.replace_maker_quotes(coin, MAKER, [(bid, size)], [(ask, size)])

    def market_moves(self, coin: str, *, dislocated: str | None = None, depth: str = "40") -> None:
        """The oracle ticks and the maker requotes: a context and a bbo frame are queued."""
        self.clock.advance(1)
        self.exchange.set_oracle(coin, self.oracle[coin])
        self.quote(coin, dislocated=dislocated, depth=depth)
        self.delivery.publish_market_data()

    def bbo(self, coin: str, *, dislocated: str | None = None) -> None:
        """The maker requotes `coin` and its bbo frame reaches the bot at once."""
        self.quote(coin, dislocated=dislocated)
        self.delivery.publish_market_data()
        self.deliver_lanes("bbo:" + coin)

    def ctx(self, coin: str) -> None:
        """The oracle ticks and `coin`'s context frame reaches the bot at once."""
        self.exchange.set_oracle(coin, self.oracle[coin])
        self.delivery.publish_market_data()
        self.deliver_lanes("activeAssetCtx:" + coin)

    # --- the exchange's side --------------------------------------------------------------

    def execute(self, fault: str | None = None) -> int | None:
        self.clock.advance(1)  # one request, one block
        return self.delivery.execute_next(fault)

    def reject_next_order(self, text: str = MARGIN_TEXT) -> None:
        self.exchange.reject_next_orders(1, text)

    def other_client_order(self, coin: str, *, is_buy: bool, resting: bool, sz: str) -> dict:
        """An order on the bot's account that the bot did not send: resting far from the book,
        or an IOC that takes the maker's quote."""
        asset = self.exchange.universe.asset(coin)
        ref = self.oracle[coin]
        if resting:
            px = ref * (Decimal("0.8") if is_buy else Decimal("1.2"))
            rounding = Rounding.PASSIVE
        else:
            px = ref * (Decimal("1.01") if is_buy else Decimal("0.99"))
            rounding = Rounding.AGGRESSIVE
        wire = limit_order_wire(
            asset=asset.asset_id,
            is_buy=is_buy,
            px=format_price(px, sz_decimals=asset.sz_decimals, is_buy=is_buy, rounding=rounding),
            sz=sz,
            reduce_only=False,
            tif="Gtc" if resting else "Ioc",
        )
        action = order_action([wire])
        nonce = self._other_nonces.next()
        self.clock.advance(1)
        answer = self.exchange.action(
            {
                "action": action,
                "nonce": nonce,
                "signature": self.signer.sign_l1(action, nonce, mainnet=False),
            }
        )
        self.delivery.publish_market_data()
        return answer

    def other_client_cancel(self, coin: str, oid: int) -> dict:
        """Another client of the account cancels one of its orders."""
        action = cancel_action([(self.exchange.universe.asset(coin).asset_id, oid)])
        nonce = self._other_nonces.next()
        self.clock.advance(1)
        answer = self.exchange.action(
            {
                "action": action,
                "nonce": nonce,
                "signature": self.signer.sign_l1(action, nonce, mainnet=False),
            }
        )
        self.delivery.publish_market_data()
        return answer

    def deliver_lane(self, lane: str) -> Frame:
        """Deliver the head of `lane` (e.g. "orderUpdates", "ack:bbo:xyz:AAA", "post:7")."""
        for i in self.delivery.deliverable():
            if self.delivery.frames[i].lane == lane:
                return self.deliver(i)
        raise AssertionError(f"nothing to deliver on lane {lane}: {self.delivery.lanes()}")

    def deliver_lanes(self, prefix: str) -> None:
        """Deliver everything queued on the lanes whose name starts with `prefix`."""
        while True:
            heads = [
                i
                for i in self.delivery.deliverable()
                if self.delivery.frames[i].lane.startswith(prefix)
            ]
            if not heads:
                return
            self.deliver(heads[0])

    def deliver(self, index: int) -> Frame:
        f = self.delivery.take(index)
        self.frame(f.data, f.connection)
        return f

    def deliver_all(self) -> None:
        while self.delivery.frames:
            self.deliver(self.delivery.deliverable()[0])

    def acks(self) -> list[int]:
        """Indices of the subscription acks a socket could deliver next."""
        frames = self.delivery.frames
        return [
            i for i in self.delivery.deliverable() if b'"subscriptionResponse"' in frames[i].data
        ]

    def ack(self, n: int = 0) -> None:
        """Deliver the n-th deliverable subscription ack."""
        self.deliver(self.acks()[n])

    def entry(self, coin: str = "xyz:AAA") -> str:
        """The book dislocates and the bot sends one entry order; returns its cloid."""
        before = len(self.delivery.requests)
        self.market_moves(coin, dislocated="buy")
        self.deliver_lanes("activeAssetCtx:" + coin)
        self.deliver_lanes("bbo:" + coin)
        assert len(self.delivery.requests) == before + 1, self.d.executor.blocked
        return order_wires(self.delivery.requests[-1])[0]["c"]

    def bring_up(self) -> None:
        """Connect, subscribe and reconcile in the plain order."""
        if self.d.conn.state == "disconnected":
            self.start()
        self.open_socket()
        self.settle()
        for coin in COINS:
            self.market_moves(coin)
        self.settle()

    def settle(self, *, reject: str | None = None) -> None:
        """Execute every request and deliver every frame, oldest first, until quiet; with
        `reject`, the exchange refuses every order with that text."""
        for _ in range(200):
            if not (self.delivery.requests or self.delivery.frames):
                return
            while self.delivery.requests:
                if reject is not None:
                    n = len(order_wires(self.delivery.requests[0]))
                    if n:
                        self.exchange.reject_next_orders(n, reject)
                self.execute()
            self.deliver_all()
        raise AssertionError("the exchange and the bot never went quiet")

    # --- views ----------------------------------------------------------------------------

    def bot_positions(self) -> dict[str, Decimal]:
        return {c: p.size for c, p in self.d.positions.positions.items() if p.size != 0}

    def true_positions(self) -> dict[str, Decimal]:
        return {c: s for c, s in self.exchange.positions(self.user).items() if s != 0}

    def true_open_orders(self) -> list[dict]:
        return self.exchange.open_orders(self.user)

    def true_fills(self) -> list[dict]:
        return self.exchange.user_fills(self.user)

    def order_status(self, cloid: str) -> tuple[str, Decimal] | None:
        """(exchange status, filled size) of the bot's order `cloid`, or None if unknown."""
        found = self.exchange.order_status(self.user, cloid)
        if found is None:
            return None
        order, status, _ms = found
        return status, order.orig_sz - order.sz if status != "filled" else order.orig_sz

    def filled_size(self, cloid: str) -> Decimal:
        return sum(
            (Decimal(f["sz"]) for f in self.true_fills() if f.get("cloid") == cloid), Decimal(0)
        )
