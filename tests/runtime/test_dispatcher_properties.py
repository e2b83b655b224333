"""Stateful property test of the DISPATCHER against the simulator's exchange core, whose frames
reach the bot through the delivery layer (tests/runtime/fakes.py) in any order a
real connection could produce.

Hypothesis generates interleavings of: the socket opening and dying at any point (connecting,
subscribing, reconciling, live, with requests in flight, with the exchange executing some of
them anyway so their answers die with the socket); the head of any lane delivered next, so
acks, snapshots, market data, info answers, orderUpdates, userFills and userEvents arrive in
every relative order (the userFills snapshot or the fills answer after clearinghouseState; fills
before the post answer; market data before its ack); the market moving (dislocated books make
the bot send IOC entries; thin books fill them partly or not at all); answers lost, shortened,
unrecognised, refused at post level or on the error channel; orders rejected for margin;
another client of the same account placing resting orders and taking liquidity; duplicates of
delivered frames; frames of dead connections; write failures; operator HardStop and reset;
timer ticks with time advancing.

After every step: entries only while READY-TRADING, at most one flatten order per market,
in-flight accounting, every order in one place and agreeing with the exchange, no fill counted
twice, HardStop halted only on a flat exchange and re-armed only by a reset, and positions
equal to the exchange's whenever the epoch's positions are reconciled and every fill the
exchange made has reached the bot. The rule `deliver_everything` is the liveness check: with
everything delivered, the connection is live, READY-TRADING holds (HardStop armed), nothing is
unknown and positions and open orders equal the exchange's.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from hip3.sim.delivery import ANSWER_FAULTS, Frame
from tests.runtime.fakes import COINS, MARGIN_TEXT, Harness, order_wires

OPEN_STATES = ("connecting", "subscribing", "reconciling", "live")
BENIGN_TEXT = "Order could not immediately match against any resting orders."


class DispatcherProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.violations: list[str] = []
        self.sent_cloids: set[str] = set()
        self.delivered: list[Frame] = []
        self.h.transport.watch = self._on_write
        self.hardstop_before = "armed"
        self.reset_step = False
        self.positions_checked = 0
        self.h.start()

    def _coin(self, asset: int) -> str:
        return self.h.exchange.universe.by_asset_id[asset].coin

    # --- checks at the moment of a write ------------------------------------------------

    def _on_write(self, msg: dict) -> None:
        d, h = self.h.d, self.h
        if msg.get("method") == "post" and not d.ready.can_reduce():
            self.violations.append(f"post written while the connection is {d.conn.state}")
        for w in order_wires(msg):
            self.sent_cloids.add(w["c"])
            coin = self._coin(w["a"])
            if not w["r"]:
                # an entry is written only while READY-TRADING holds
                if not (d.ready.trading() and d.hardstop.is_armed):
                    self.violations.append(
                        f"entry order on {coin} written while not READY-TRADING: "
                        f"conn={d.conn.state} hardstop={d.hardstop.state} "
                        f"missing={None if d.readiness is None else d.readiness.missing()}"
                    )
                continue
            # at most one flatten order per market in flight, as the bot and the exchange see it
            mine = [i.cloid for i, _m in d.orders.live_orders() if i.coin == coin and i.reduce_only]
            theirs = [
                o.get("cloid")
                for o in h.true_open_orders()
                if o["coin"] == coin and o.get("reduceOnly")
            ] + [
                x["c"]
                for p in h.delivery.requests
                for x in order_wires(p)
                if self._coin(x["a"]) == coin and x["r"]
            ]
            if mine or theirs:
                self.violations.append(
                    f"second flatten order on {coin}: bot has {mine}, exchange has {theirs}"
                )

    def _deliver(self, index: int) -> None:
        self.delivered.append(self.h.deliver(index))

    @initialize(data=st.data(), up=st.booleans())
    def begin(self, data: st.DataObject, up: bool) -> None:
        """Half the runs start from a live, READY connection (reached in a generated order),
        so that entries, fills and exits are common; the rest start from nothing."""
        if up:
            self.deliver_everything(data)

    # --- connection ---------------------------------------------------------------------

    @precondition(
        lambda self: (
            self.h.d.conn.state == "connecting" and self.h.transport.open_epoch == self.h.epoch
        )
    )
    @rule()
    def socket_opens(self) -> None:
        self.h.open_socket()

    @precondition(lambda self: self.h.d.conn.state in OPEN_STATES)
    @rule(executed=st.integers(0, 3))
    def socket_lost(self, executed: int) -> None:
        """Cut at any point, also between the execution of requests and their answers."""
        self.h.drop_socket(executed)

    @rule(ms=st.sampled_from([0, 0, 100, 1_000, 2_500, 5_100, 10_100, 16_000, 31_000, 61_000]))
    def time_passes(self, ms: int) -> None:
        self.h.tick(ms)

    # --- the market and the exchange ----------------------------------------------------

    @rule(
        coin=st.sampled_from(COINS),
        dislocated=st.sampled_from([None, "buy", "sell"]),
        depth=st.sampled_from(["40", "40", "3", "0.5"]),
    )
    def market_moves(self, coin: str, dislocated: str | None, depth: str) -> None:
        self.h.market_moves(coin, dislocated=dislocated, depth=depth)

    @rule(
        coin=st.sampled_from(COINS),
        dislocated=st.sampled_from(["buy", "sell"]),
        depth=st.sampled_from(["40", "40", "3"]),
    )
    def dislocation_reaches_the_bot(self, coin: str, dislocated: str, depth: str) -> None:
        """The market moves and its frames arrive at once: what makes the bot send entries."""
        self.h.market_moves(coin, dislocated=dislocated, depth=depth)
        for lane in (f"activeAssetCtx:{coin}", f"bbo:{coin}"):
            heads = [
                i for i in self.h.delivery.deliverable() if self.h.delivery.frames[i].lane == lane
            ]
            while heads:
                self._deliver(heads[0])
                heads = [
                    i
                    for i in self.h.delivery.deliverable()
                    if self.h.delivery.frames[i].lane == lane
                ]

    @precondition(lambda self: bool(self.h.delivery.requests))
    @rule(fault=st.sampled_from((None, None, None, *ANSWER_FAULTS)))
    def exchange_executes_next_request(self, fault: str | None) -> None:
        self.h.execute(fault)

    @rule(benign=st.booleans())
    def next_order_is_rejected(self, benign: bool) -> None:
        self.h.reject_next_order(BENIGN_TEXT if benign else MARGIN_TEXT)

    @rule(
        coin=st.sampled_from(COINS),
        is_buy=st.booleans(),
        resting=st.booleans(),
    )
    def another_client_trades_on_the_account(self, coin: str, is_buy: bool, resting: bool) -> None:
        self.h.other_client_order(coin, is_buy=is_buy, resting=resting, sz="1")

    @precondition(lambda self: bool(self.h.delivery.frames))
    @rule(data=st.data(), twice=st.sampled_from([False, False, False, True]))
    def frame_arrives(self, data: st.DataObject, twice: bool) -> None:
        """The head of a lane arrives (twice: the server wrote it twice)."""
        self._deliver(data.draw(st.sampled_from(self.h.delivery.deliverable()), label="frame"))
        if twice:
            f = self.delivered[-1]
            self.h.frame(f.data, f.connection)

    @precondition(lambda self: bool(self.h.delivery.frames))
    @rule(data=st.data())
    def market_data_lost(self, data: st.DataObject) -> None:
        d = self.h.delivery
        md = [i for i, f in enumerate(d.frames) if f.lane.startswith(("bbo:", "activeAssetCtx:"))]
        if md:
            d.drop(data.draw(st.sampled_from(md), label="lost md"))

    @precondition(lambda self: any(f.tids or f.post_id for f in self.delivered[-20:]))
    @rule(data=st.data())
    def duplicate_arrives_later(self, data: st.DataObject) -> None:
        """A fill or an answer delivered again later (a replay overlapping what was seen)."""
        again = [f for f in self.delivered[-20:] if f.tids or f.post_id]
        f = data.draw(st.sampled_from(again), label="duplicate")
        self.h.frame(f.data, f.connection)

    @precondition(lambda self: bool(self.h.delivery.lost))
    @rule(data=st.data(), in_current_epoch=st.booleans())
    def old_connection_frame_arrives(self, data: st.DataObject, in_current_epoch: bool) -> None:
        f = data.draw(st.sampled_from(self.h.delivery.lost[-20:]), label="old frame")
        if in_current_epoch and f.post_id is not None:
            # an answer to a post of a dead connection, as if it came on the new one
            self.h.frame(f.data)
        else:
            self.h.frame(f.data, f.connection)

    @precondition(lambda self: bool(self.h.delivery.requests))
    @rule(data=st.data())
    def write_fails(self, data: st.DataObject) -> None:
        requests = self.h.delivery.requests
        i = data.draw(st.integers(0, len(requests) - 1), label="lost write")
        post = requests.pop(i)  # the frame never reached the exchange
        self.h.write_failed(post["id"])

    # --- operator -----------------------------------------------------------------------

    @rule()
    def operator_hardstop(self) -> None:
        self.h.operator("hardstop")

    @rule()
    def operator_reset(self) -> None:
        self.reset_step = True
        self.h.operator("reset")

    # --- liveness -----------------------------------------------------------------------

    @rule(data=st.data())
    def deliver_everything(self, data: st.DataObject) -> None:
        """Bring the connection up and execute and deliver everything outstanding in a
        generated order; then the bot must be READY (HardStop armed) and agree with the
        exchange."""
        h, d, dl = self.h, self.h.d, self.h.delivery
        steps = 0
        quiet_rounds = 0
        stop_ticks = 0
        refreshed = False
        while quiet_rounds < 2:
            if d.conn.state == "backoff":
                h.tick(max(0, d.conn.retry_at_ms - h.clock.now_ms()))
            if d.conn.state == "connecting":
                h.open_socket()
            cands: list[tuple] = [("deliver", i) for i in dl.deliverable()]
            if dl.requests:
                cands.append(("execute",))
            if not cands:
                if d.conn.state == "live" and not refreshed:
                    refreshed = True  # fresh market data after the waiting below
                    for coin in COINS:
                        h.market_moves(coin)
                    continue
                # Quiet: let retries go out (flatten, unknown-order queries); a HardStop in
                # progress gets its retry interval so it can finish against this exchange.
                busy = not (d.hardstop.is_armed or d.hardstop.is_halted)
                wait_ms = d.hardstop.retry_interval_ms if busy and stop_ticks < 8 else 0
                lost_answer = bool(d.wire.posts.pending())
                if lost_answer:
                    # an answer the exchange lost: only its timeout can settle the post
                    wait_ms = max(wait_ms, d.wire.posts.timeout_ms + 1)
                h.tick(wait_ms)
                stop_ticks += busy
                quiet_rounds += 1
                refreshed = refreshed and not busy and not lost_answer
                continue
            quiet_rounds = 0
            steps += 1
            assert steps < 800, (
                f"the exchange and the bot never went quiet: lanes {dl.lanes()}, "
                f"pending {[q.kind for q in d.wire.posts.pending()]} hardstop {d.hardstop.state} "
                f"counters {dict(d.counters)} attempt {d.hardstop.attempt} "
                f"exchange {h.true_positions()} {h.true_open_orders()} bot {h.bot_positions()} "
                f"live {[(i.cloid, m.state, m.oid) for i, m in d.orders.live_orders()]}"
            )
            c = data.draw(st.sampled_from(cands), label="next fact")
            if c[0] == "execute":
                h.execute()
            else:
                self._deliver(c[1])
            self.check_all()
        assert d.conn.state == "live", f"connection is {d.conn.state} after delivering everything"
        event(f"drain: hardstop {d.hardstop.state}, epoch {min(h.epoch, 4)}")
        event(f"drain: orders sent {min(len(self.sent_cloids), 5)}")
        event(f"drain: final states {sorted(d.orders.final_counts)}")
        if d.hardstop.is_armed:
            assert d.ready.trading(), (
                f"everything of epoch {h.epoch} delivered but not READY-TRADING; "
                f"missing: {d.readiness.missing()}; {d.ready.describe()}"
            )
        unknown = [i.cloid for i, _m in d.orders.unknown_orders()]
        assert not unknown, f"orders still unknown after reconciliation: {unknown}"
        assert h.bot_positions() == h.true_positions(), (
            f"positions differ from the exchange: bot {h.bot_positions()} "
            f"exchange {h.true_positions()}"
        )
        assert d.positions.divergence_report() == [], d.positions.divergence_report()
        live_oids = {m.oid for _i, m in d.orders.live_orders()}
        for o in h.true_open_orders():
            assert o["oid"] in live_oids, f"order {o} rests on the exchange, the bot forgot it"

    # --- invariants after every step ----------------------------------------------------

    @invariant()
    def check_all(self) -> None:
        h, d = self.h, self.h.d
        assert not self.violations, self.violations
        assert d.fatal is None, d.fatal
        assert d.counters["internal_errors"] == 0, "the dispatcher caught an internal error"
        # inflight posts: never negative, equal to the post book, 0 without a connection
        inflight = d.wire.posts.inflight.count
        assert inflight >= 0
        assert inflight == len(d.wire.posts.pending())
        if d.conn.state not in ("subscribing", "reconciling", "live"):
            assert inflight == 0, f"{inflight} posts in flight with connection {d.conn.state}"
        # every order in exactly one place; terminal states agree with the exchange
        terminal = d.orders.terminal_states()
        both = set(d.orders.machines) & set(terminal)
        assert not both, f"orders both live and terminal: {both}"
        assert sum(d.orders.final_counts.values()) == len(terminal)
        for cloid in self.sent_cloids:
            assert (cloid in d.orders.machines) != (cloid in terminal), f"{cloid} lost track"
        open_cloids = {o.get("cloid") for o in h.true_open_orders()}
        for cloid, state in terminal.items():
            if cloid not in self.sent_cloids:
                continue  # adopted orders of another client
            filled = h.filled_size(cloid)
            if state == "filled":
                assert filled > 0, f"{cloid} filled, the exchange filled nothing"
            elif state == "rejected":
                assert filled == 0 and cloid not in open_cloids, (
                    f"{cloid} rejected but the exchange executed it: {h.order_status(cloid)}"
                )
            elif state == "cancelled":
                assert cloid not in open_cloids, f"{cloid} cancelled but still resting"
        # a fill counts once: an order never holds more than the exchange filled
        for cloid, m in d.orders.machines.items():
            assert m.filled_sz <= h.filled_size(cloid), f"{cloid} counted {m.filled_sz}"
        fills = h.true_fills()
        assert d.positions.fills_applied <= len(fills)
        # positions are the exchange's once this epoch's positions are reconciled and every
        # fill the exchange made has reached the bot (whatever order the answers came in)
        m = d.readiness
        if (
            d.conn.state == "live"
            and m is not None
            and "positions" in m.reconciled_parts
            and all(d.positions.has_seen(f["tid"]) for f in fills)
        ):
            self.positions_checked += 1
            assert h.bot_positions() == h.true_positions(), (
                f"positions after reconciliation: bot {h.bot_positions()} "
                f"exchange {h.true_positions()} (divergences {d.positions.divergence_report()})"
            )
        # HardStop: halts only when the exchange is flat, as far as anything that reached the
        # bot can tell: a fill the exchange made after its last answer and that is still on its
        # way cannot stop the halt (another client may trade later, too); armed again only by
        # a reset
        hs = d.hardstop.state
        if hs == "halted" and self.hardstop_before != "halted":
            unseen: dict[str, Decimal] = {}
            for f in fills:
                if not d.positions.has_seen(f["tid"]):
                    signed = Decimal(f["sz"]) if f["side"] == "B" else -Decimal(f["sz"])
                    unseen[f["coin"]] = unseen.get(f["coin"], Decimal(0)) + signed
            unseen = {c: s for c, s in unseen.items() if s != 0}
            assert not h.true_open_orders() and h.true_positions() == unseen, (
                f"HardStop halted while the exchange has open orders {h.true_open_orders()} "
                f"or positions {h.true_positions()} (fills still on their way: {unseen})"
            )
        if hs == "armed" and self.hardstop_before != "armed":
            assert self.reset_step, f"HardStop re-armed from {self.hardstop_before} alone"
        self.hardstop_before = hs
        self.reset_step = False

    def teardown(self) -> None:
        event(f"positions checked {min(self.positions_checked, 10)}")


TestDispatcherProperties = DispatcherProperties.TestCase
