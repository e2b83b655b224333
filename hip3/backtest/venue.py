"""The exchange side of a backtest: the simulator's core behind one virtual connection.

The bot's transport is `VenueTransport`: what the bot writes goes to the simulator's pieces
without a socket, and what the exchange answers comes back as frames at virtual times.

- Posts (orders, cancels, info requests) go through the simulator's timing model
  (`hip3.sim.timing`: mempool slots, 70 ms blocks, commit, a seeded network delay per
  answer), then the request gateway and the core, exactly as `hip3 sim` runs them. Without
  timing (`timing=None`) each post is answered at once.
- Subscriptions, pings and the user streams (orderUpdates, userFills, userEvents) go through
  the delivery layer (`hip3.sim.delivery`), which builds the frames the server would write;
  they are handed to the bot in the order they were made.
- Market data comes from the recording, not from the core: the core's own bbo and context
  frames are dropped. Each recorded frame moves the core first (`apply`): an l2Book or bbo
  replaces the quotes of one recorded-market maker, an activeAssetCtx sets the oracle, so
  the bot's orders meet the book the recording showed, and what the bot takes is gone until
  the next recorded update replaces it. A resting order of the bot stays in the core's book
  through these replacements; a recorded quote placed at or through its price trades with it
  at once, the bot's order as the maker at its own price (the recorded market moved through
  it, which it could not have done without filling it), up to the recorded quote's size.
- A recorded top of book (bbo) that nothing can see before the next one replaces it is not
  applied at all: it is kept until the core is next used (a post, a block, a reader of
  `exchange`) and then applied at its own time, with the order ids every skipped top would
  have taken counted. The core then shows what applying every frame at once would have
  given; tops that could trade, or that triggers or competitors watch, are applied at once.
- Competing takers (`hip3.sim.competitors`, a scenario's `[[competitors]]`) watch the core's
  books and race for the same stale quotes through the same mempool.
- The core's own clock runs as `hip3 sim` runs it (every `CORE_TICK_MS` of virtual time): a
  scheduleCancel deadline fires, and funding is paid on the hour from every book's mid.

Everything random is seeded; nothing reads the wall clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from hip3.backtest.clock import VirtualTime
from hip3.events import FrameIn, SocketClosed, SocketOpened, WriteFailed
from hip3.protocol import frames as F
from hip3.sim import rules
from hip3.sim.accounts import ZERO
from hip3.sim.delivery import Delivery
from hip3.sim.events import BookChanged, CtxChanged
from hip3.sim.exchange import Exchange
from hip3.sim.funding import HOUR_MS
from hip3.sim.harness import CLOCK_TICK_S
from hip3.sim.requests import RequestGateway
from hip3.sim.scenario import Scenario
from hip3.sim.server import channel_frame, post_answer_frame
from hip3.sim.timing import Sequencer, TimedGateway, TimingConfig

# The account whose quotes are the recorded book (an internal maker of the core).
RECORDED_MAKER = "0x" + "00" * 19 + "b7"
_MARKET_LANES = ("bbo:", "activeAssetCtx:")
CORE_TICK_MS = int(CLOCK_TICK_S * 1000)  # the period `hip3 sim` ticks its core at
_MARKET_EVENTS = frozenset({BookChanged, CtxChanged})
_NUMBERS_KEPT = 1 << 16  # distinct recorded prices and sizes remembered (a few MB at most)


class UnknownCoin(ValueError):
    """Recorded data for a market the scenario's exchange does not list."""


class Venue:
    """The core, its timing model and competitors, and the one connection the bot has."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        time: VirtualTime,
        seed: int,
        timing: TimingConfig | None,
        deliver: Callable[[Any], None],
        oracle_from_mid: bool = False,
    ) -> None:
        self.time = time
        self._deliver = deliver  # hands one event to the bot (FrameIn, SocketOpened, ...)
        self.oracle_from_mid = oracle_from_mid
        self.delivery = Delivery()
        self.sequencer: Sequencer | None = None
        emit: Callable[[object], None] = self._on_event
        clock_ms: Callable[[], int] = lambda: int(time.now_ms())  # noqa: E731
        if timing is not None:
            self.sequencer = Sequencer(
                timing,
                clock=time,
                sink=self._on_event,
                rng=random.Random(f"{seed}:latency"),
                before_block=self._settle,  # orders meet the book the recording showed by then
            )
            emit, clock_ms = self.sequencer.on_event, self.sequencer.clock_ms
        self._taps: list[Callable[[object], None]] = []
        if scenario.competitors:  # they watch every event the core emits, before the rest
            inner_emit = emit

            def tapped(event: object) -> None:
                for tap in self._taps:
                    tap(event)
                inner_emit(event)

            emit = tapped
        core = self._core = Exchange(scenario.universe(), clock_ms=clock_ms, emit=emit, seed=seed)
        self._clock_ms = clock_ms
        self.delivery.attach(core)
        gateway: Any = RequestGateway(core)
        if self.sequencer is not None:
            gateway = TimedGateway(gateway, self.sequencer)
        self.gateway = gateway
        address, secret = core.new_account(scenario.account_usdc, every_dex=True)
        core.staking.hype_usd = scenario.hype_usd
        core.staking.fund(address, scenario.account_staking_hype)
        self.account: tuple[str, str] = (address, secret)
        self._bot = core.accounts[address]
        self.competitors: Any = None
        if scenario.competitors:
            from hip3.sim.competitors import CompetingTakers

            self.competitors = CompetingTakers(
                core,
                list(scenario.competitors),
                submit=self._submit_internal,
                call_later=lambda ms, cb: time.call_at(time.now_ms() + ms, cb),
                now_ms=time.now_ms,
                source="a" if core.network == "Mainnet" else "b",
            )
            self._taps.append(self.competitors.on_event)
        self._epoch = 0
        self._pump_due = False
        self._books_from_l2: set[str] = set()  # coins whose book comes from l2Book frames
        self._bbo_recorded: set[str] = set()  # coins with recorded bbo frames for the bot
        self.frames_to_bot = 0
        self._numbers: dict[str, Decimal] = {}  # recorded text -> its Decimal (`_number`)
        self._deferred: dict[str, _DeferredTop] = {}  # coin -> its latest recorded top, unapplied
        self._deferred_ids = 0  # order ids the deferred tops (and the ones they replaced) take
        self._core_hour = int(time.now_ms()) // HOUR_MS
        self._core_clock = time.call_at(time.now_ms() + CORE_TICK_MS, self._tick_core)

    @property
    def exchange(self) -> Exchange:
        """The core, up to date with every recorded frame applied so far."""
        self._settle()
        return self._core

    # --- recorded market data --------------------------------------------------------------

    def apply(self, frame: Any) -> list[bytes]:
        """Move the core by one decoded recorded frame; returns frames the bot gets in its
        place (the core's bbo for an l2Book when the data has no bbo of that coin, and its
        context when the oracle is taken from the book's mid)."""
        t = type(frame)
        if t is F.BboFrame:
            data = frame.data
            coin = self._coin(data.coin)
            self._bbo_recorded.add(coin)
            if coin not in self._books_from_l2:  # an l2Book has the depth; a bbo only the top
                bid, ask = data.bbo
                number = self._number
                bids = [] if bid is None else [(number(bid.px), number(bid.sz))]
                asks = [] if ask is None else [(number(ask.px), number(ask.sz))]
                if not self._defer(coin, bids, asks):
                    self._settle()  # order ids are handed out in the order of the frames
                    self._core.replace_maker_quotes(coin, RECORDED_MAKER, bids, asks)
            return []
        if t is F.ActiveAssetCtxFrame:
            data = frame.data
            coin = self._coin(data.coin)
            core = self._core
            if self._deferred and core.triggers.watches(coin):
                self._settle()  # the oracle moves the mark the waiting triggers are checked at
            core.set_oracle(coin, self._number(data.ctx.oracle_px))
            return []
        if t is F.L2BookFrame:
            data = frame.data
            coin = self._coin(data.coin)
            self._books_from_l2.add(coin)
            bids, asks = data.levels
            number = self._number
            self._settle()
            self._core.replace_maker_quotes(
                coin,
                RECORDED_MAKER,
                [(number(lv.px), number(lv.sz)) for lv in bids],
                [(number(lv.px), number(lv.sz)) for lv in asks],
            )
            out = []
            if self.oracle_from_mid and bids and asks:
                mid = (number(bids[0].px) + number(asks[0].px)) / 2
                self._core.set_oracle(coin, mid)
                if self.delivery.subscribed("activeAssetCtx", coin):
                    out.append(channel_frame("activeAssetCtx", self._core.asset_ctx(coin)))
            if coin not in self._bbo_recorded and self.delivery.subscribed("bbo", coin):
                out.append(channel_frame("bbo", self._core.bbo(coin)))
            return out
        return []  # other channels (trades, candles, mids) move nothing in the core

    def _number(self, text: str) -> Decimal:
        """The Decimal of a recorded price or size, one object per distinct text.

        Recorded prices and sizes repeat (a book moves by ticks), and the core keys books and
        its price rounding by these values: a Decimal computes its hash once and keeps it, so
        handing the core the same object again saves the parse and the hash (about 2 µs)."""
        value = self._numbers.get(text)
        if value is None:
            if len(self._numbers) >= _NUMBERS_KEPT:
                self._numbers.clear()
            value = self._numbers[text] = Decimal(text)
        return value

    # --- recorded tops applied when something can see them ----------------------------------

    def _defer(self, coin: str, bids: list[Any], asks: list[Any]) -> bool:
        """Keep a recorded top of `coin` unapplied if nothing can see the core's book of `coin`
        change before the next top replaces it or the core is next used (`_settle`); returns
        whether it was kept.

        Most recorded tops are replaced by the next one before anything looks: the bot reads
        the recording, not the core, and acts through posts, which settle first. Skipping them
        is exact only while the swap has no effect but the book itself: no trade (the bot has
        no order resting on `coin` and the top does not cross itself), no waiting trigger to
        check, no competitor watching. The order ids the skipped quotes would have taken are
        still counted, and a kept top is applied at its own time, so the ids, times and books
        the core shows are those of applying every frame at once."""
        core = self._core
        if self.competitors is not None or coin in core.halted or core.triggers.watches(coin):
            return False
        resting = self._bot.open_orders
        if resting and any(order.coin == coin for order in resting.values()):
            return False
        asset = core.universe.by_coin[coin]
        lot = core.markets.lots[coin]
        ids = 0
        placed: list[Decimal] = []  # the prices of the quotes that would rest, bid first
        for px, sz in bids + asks:
            if not px > ZERO:
                return False  # the core refuses it at once, with its own error
            if sz.quantize(lot) > ZERO:
                ids += 1
                placed.append(px)
        if bids and asks and len(placed) == 2:
            bid_px, ask_px = placed  # the core rounds them: it is their rounded prices that cross
            if bid_px >= ask_px or (
                not rules.rounded_apart(asset, bid_px, ask_px)
                and rules.round_price(asset, bid_px) >= rules.round_price(asset, ask_px)
            ):
                return False  # its ask would trade with its bid
        self._deferred.pop(coin, None)  # the coins stay in the order of their latest frames
        self._deferred[coin] = _DeferredTop(self._deferred_ids, ids, bids, asks, self._clock_ms())
        self._deferred_ids += ids
        return True

    def _settle(self) -> None:
        """Apply the kept tops, each at its own time and with the order ids it would have
        taken, and skip the ids of the tops they replaced."""
        deferred = self._deferred
        if not deferred:
            return
        self._deferred = {}
        core = self._core
        taken = 0
        for coin, top in deferred.items():
            core.skip_order_ids(top.ids_before - taken)
            core.replace_maker_quotes(coin, RECORDED_MAKER, top.bids, top.asks, now_ms=top.at_ms)
            taken = top.ids_before + top.ids
        core.skip_order_ids(self._deferred_ids - taken)
        self._deferred_ids = 0

    def wants(self, frame: Any) -> bool:
        """Whether the bot's connection is subscribed to this recorded frame."""
        t = type(frame)
        if t is F.BboFrame:
            return self.delivery.subscribed("bbo", frame.data.coin)
        if t is F.ActiveAssetCtxFrame:
            return self.delivery.subscribed("activeAssetCtx", frame.data.coin)
        if t is F.L2BookFrame:
            return self.delivery.subscribed("l2Book", frame.data.coin)
        return False

    def _coin(self, coin: str) -> str:
        if coin not in self._core.universe.by_coin:
            raise UnknownCoin(coin)
        return coin

    @property
    def epoch(self) -> int:
        return self._epoch

    def deliver(self, event: Any) -> None:
        self._deliver(event)

    # --- the exchange's events -------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        # The recording is the market data, so the core's book and context changes (one or
        # two with every recorded frame) are not handed to the delivery layer: it would only
        # mark the coin for a bbo/context publication the venue never asks for. User events
        # become frames as on a socket.
        if type(event) in _MARKET_EVENTS:
            return  # adds no frame, so needs no pump (whoever adds a frame schedules one)
        delivery = self.delivery
        delivery.on_event(event)
        if delivery.frames:
            self._schedule_pump()

    def _submit_internal(self, payload: dict[str, Any], on_answer: Callable[[Any], None]) -> None:
        self._settle()
        self.gateway.submit("action", payload, lambda answer: on_answer(answer.body))

    def _schedule_pump(self) -> None:
        if not self._pump_due:
            self._pump_due = True
            self.time.soon(self._pump)

    def _pump(self) -> None:
        """Hand the delivery layer's frames to the bot in the order they were made (never from
        inside the bot's own call: always from a timer)."""
        self._pump_due = False
        delivery = self.delivery
        while delivery.frames:
            head = delivery.deliverable()[0]
            frame = delivery.frames[head]
            if frame.lane.startswith(_MARKET_LANES):
                delivery.drop(head)  # the recording is the market data
                continue
            delivery.take(head)
            self._to_bot(frame.connection, frame.data)

    def _to_bot(self, epoch: int, data: bytes) -> None:
        if epoch != self._epoch or not self.delivery.is_open:
            return
        self.frames_to_bot += 1
        self._deliver(FrameIn(epoch, F.decode_frame(data), self.time.ns))

    # --- the bot's transport ---------------------------------------------------------------

    def transport(self) -> VenueTransport:
        return VenueTransport(self)

    def open(self, epoch: int) -> None:
        if self.delivery.is_open:
            self.delivery.disconnect()
        self._epoch = epoch
        self.delivery.connect(epoch)
        self.time.soon(lambda: self._deliver(SocketOpened(epoch)))

    def close(self, epoch: int, reason: str) -> None:
        if epoch != self._epoch or not self.delivery.is_open:
            return
        self.delivery.disconnect()
        self.time.soon(lambda: self._deliver(SocketClosed(epoch, f"closed by client ({reason})")))

    def send(self, data: bytes | str) -> None:
        message = msgspec.json.decode(data)
        if isinstance(message, dict) and message.get("method") == "post":
            post_id = message.get("id")
            request = message.get("request") or {}
            epoch = self._epoch
            if self.sequencer is None or request.get("type") != "action":
                # Answered from the core now (an action waits for its block, which settles).
                self._settle()

            def reply(answer: Any) -> None:
                frame = post_answer_frame(post_id, answer.ws)
                self.time.soon(lambda: self._to_bot(epoch, frame))

            self.gateway.submit(request.get("type"), request.get("payload"), reply)
            return
        self._settle()  # a subscription's first frame is read from the core
        self.delivery.receive(data)
        self._schedule_pump()

    def _tick_core(self) -> None:
        """The core's clock, as `hip3 sim`'s harness runs it: due scheduleCancel deadlines
        fire, and funding is paid when an hour begins."""
        now = int(self.time.now_ms())
        hour = now // HOUR_MS
        if hour != self._core_hour:
            self._core_hour = hour
            self._settle()  # funding reads every book's mid
        self._core.tick(now)
        self._core_clock = self.time.call_at(now + CORE_TICK_MS, self._tick_core)

    def stop(self) -> None:
        self._core_clock.cancel()
        if self.competitors is not None:
            self.competitors.stop()
        if self.sequencer is not None:
            self.sequencer.close()


class _DeferredTop(NamedTuple):
    ids_before: int  # ids taken by deferred tops since the last settle, before this one
    ids: int  # the ids its own quotes take
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    at_ms: int  # the exchange clock when it was recorded


class VenueTransport:
    """What the dispatcher holds as its transport (the shape of `WsTransport`)."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self.frames_out = 0

    def open(self, epoch: int) -> None:
        self._venue.open(epoch)

    def close(self, epoch: int, reason: str = "closing") -> None:
        self._venue.close(epoch, reason)

    def send(self, data: bytes | str, post_id: int | None = None) -> None:
        venue = self._venue
        if not venue.delivery.is_open:
            if post_id is not None:  # as the websocket transport: the post's owner is told
                failed = WriteFailed(venue.epoch, post_id, "connection not open")
                venue.time.soon(lambda: venue.deliver(failed))
            return
        self.frames_out += 1
        self._venue.send(data)


__all__ = ["RECORDED_MAKER", "UnknownCoin", "Venue", "VenueTransport"]
