"""Stateful property test of the DISPATCHER (not the machines alone) against a consistent
fake exchange (tests/runtime/fakes.py).

Hypothesis generates interleavings of: socket open/close at any point (connecting,
subscribing, reconciling, live, with posts in flight, with the exchange executing some of
them anyway); acks, snapshots and market data in any order (data before its ack); the
exchange executing posts with every outcome (resting, filled, partial, per-order errors,
top-level err, post-level error, statuses shorter than the orders, an unrecognised status,
error-channel failure naming `id=`, no response at all); the resulting orderUpdates, userFills
and userEvents messages before or after the post response; duplicate fills and snapshot
overlap; frames and post responses from old epochs; write failures; operator HardStop and
reset at any point; timer ticks with time advancing.

After every step the invariants (a)-(g) of issue 3 item 5 are checked; the rule
`deliver_everything` is the liveness check (b) — the drain deadlock of the seed bot.
"""

from __future__ import annotations

import json
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

from tests.runtime.fakes import BY_ASSET, MARKETS, ORDER_OUTCOMES, Harness, order_wires

COINS = sorted(MARKETS)
OPEN_STATES = ("connecting", "subscribing", "reconciling", "live")
# outcomes the drain uses: the exchange answers, so every order reaches a definite state
DRAIN_OUTCOMES = ("fill", "rest", "partial", "reject_benign")


class DispatcherProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.violations: list[str] = []
        self.sent_cloids: set[str] = set()
        self.h.transport.watch = self._on_write
        self.hardstop_before = "armed"
        self.reset_step = False
        self.h.start()

    # --- checks at the moment of a write (a), (g) -----------------------------------------

    def _on_write(self, msg: dict) -> None:
        d, ex = self.h.d, self.h.exchange
        if msg.get("method") == "post" and not d.ready.can_reduce():
            self.violations.append(f"post written while the connection is {d.conn.state}")
        for w in order_wires(msg):
            self.sent_cloids.add(w["c"])
            coin = BY_ASSET[w["a"]].coin
            if not w["r"]:
                # (a) an entry is written only while READY-TRADING holds
                if not (d.ready.trading() and d.hardstop.is_armed):
                    self.violations.append(
                        f"(a) entry order on {coin} written while not READY-TRADING: "
                        f"conn={d.conn.state} hardstop={d.hardstop.state} "
                        f"missing={None if d.readiness is None else d.readiness.missing()}"
                    )
                continue
            # (g) at most one flatten order per market in flight, as the bot and the
            # exchange see it
            mine = [i.cloid for i, _m in d.orders.live_orders() if i.coin == coin and i.reduce_only]
            theirs = [o.cloid for o in ex.open_orders() if o.coin == coin and o.reduce_only] + [
                x["c"]
                for p in ex.inbox
                for x in order_wires(p)
                if BY_ASSET[x["a"]].coin == coin and x["r"]
            ]
            if mine or theirs:
                self.violations.append(
                    f"(g) second flatten order on {coin}: bot has {mine}, exchange has {theirs}"
                )

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
    @rule(executed=st.lists(st.sampled_from(ORDER_OUTCOMES), max_size=3))
    def socket_lost(self, executed: list[str]) -> None:
        self.h.drop_socket(executed)

    @rule(ms=st.sampled_from([0, 0, 100, 1_000, 2_500, 5_100, 10_100, 16_000, 31_000, 61_000]))
    def time_passes(self, ms: int) -> None:
        self.h.tick(ms)

    # --- what the exchange sends --------------------------------------------------------

    @precondition(lambda self: bool(self.h.exchange.acks))
    @rule(data=st.data())
    def ack_arrives(self, data: st.DataObject) -> None:
        self.h.ack(data.draw(st.integers(0, len(self.h.exchange.acks) - 1), label="ack"))

    @rule(
        coin=st.sampled_from(COINS),
        kind=st.sampled_from(["bbo", "activeAssetCtx", "both", "both"]),
        dislocated=st.sampled_from([None, "buy", "sell"]),
    )
    def market_data(self, coin: str, kind: str, dislocated: str | None) -> None:
        # "both": a fresh oracle then a book, the pair a signal needs (data ages <= 2 s)
        if kind != "bbo" and self.h.subscribed(f"activeAssetCtx:{coin}"):
            self.h.ctx(coin)
        if kind != "activeAssetCtx" and self.h.subscribed(f"bbo:{coin}"):
            self.h.bbo(coin, dislocated=dislocated)

    @precondition(lambda self: bool(self.h.exchange.inbox))
    @rule(outcome=st.sampled_from((*ORDER_OUTCOMES, "fill", "rest", "info_error")))
    def exchange_executes_next_post(self, outcome: str) -> None:
        self.h.process(outcome)

    @precondition(lambda self: bool(self.h.exchange.outbox))
    @rule(data=st.data())
    def message_arrives(self, data: st.DataObject) -> None:
        choices = self.h.exchange.deliverable()
        self.h.deliver(data.draw(st.sampled_from(choices), label="message"))

    @precondition(
        lambda self: bool(self.h.exchange.delivered_tids) and self.h.subscribed("userFills")
    )
    @rule(data=st.data(), channel=st.sampled_from(["userFills", "user"]))
    def duplicate_fill_arrives(self, data: st.DataObject, channel: str) -> None:
        ex = self.h.exchange
        delivered = [f for f in ex.fills if f["tid"] in ex.delivered_tids]
        if not delivered:
            return
        fill = data.draw(st.sampled_from(delivered), label="duplicate")
        body = {"user": ex.user, "fills": [fill]} if channel == "userFills" else {"fills": [fill]}
        self.h.frame(json.dumps({"channel": channel, "data": body}))

    @precondition(lambda self: bool(self.h.exchange.lost))
    @rule(data=st.data(), in_current_epoch=st.booleans())
    def old_epoch_frame_arrives(self, data: st.DataObject, in_current_epoch: bool) -> None:
        m = data.draw(st.sampled_from(self.h.exchange.lost), label="old frame")
        if in_current_epoch and m.post_id is not None:
            # a response to a post of a dead connection, as if it came on the new one
            self.h.frame(m.text)
        else:
            self.h.frame(m.text, m.epoch)

    @rule(status=st.sampled_from(["open", "canceled", "someNewStatus", "filled"]))
    def order_update_for_a_stranger(self, status: str) -> None:
        if not self.h.subscribed("orderUpdates"):
            return
        upd = {
            "order": {
                "coin": "xyz:AAA",
                "side": "B",
                "limitPx": "99.0",
                "sz": "1.0",
                "oid": 42,
                "timestamp": 1,
                "origSz": "1.0",
            },
            "status": status,
            "statusTimestamp": 1,
        }
        self.h.frame(json.dumps({"channel": "orderUpdates", "data": [upd]}))

    @precondition(lambda self: bool(self.h.exchange.inbox))
    @rule(data=st.data())
    def write_fails(self, data: st.DataObject) -> None:
        ex = self.h.exchange
        i = data.draw(st.integers(0, len(ex.inbox) - 1), label="lost write")
        post = ex.inbox.pop(i)  # the frame never reached the exchange
        self.h.write_failed(post["id"])

    # --- operator -----------------------------------------------------------------------

    @rule()
    def operator_hardstop(self) -> None:
        self.h.operator("hardstop")

    @rule()
    def operator_reset(self) -> None:
        self.reset_step = True
        self.h.operator("reset")

    # --- (b) liveness: the drain deadlock -----------------------------------------------

    @rule(data=st.data())
    def deliver_everything(self, data: st.DataObject) -> None:
        """Bring the connection up and deliver every outstanding lifecycle fact of the epoch
        (acks, first data, snapshot, every post and its answers) in a generated order; then
        READY-TRADING must hold unless HardStop is not armed."""
        h, d, ex = self.h, self.h.d, self.h.exchange
        md_done: set[tuple[int, str]] = set()
        steps = 0
        quiet_rounds = 0
        stop_ticks = 0
        while quiet_rounds < 2:
            if d.conn.state == "backoff":
                h.tick(max(0, d.conn.retry_at_ms - h.clock.now_ms()))
            if d.conn.state == "connecting":
                h.open_socket()
            cands: list[tuple] = [("ack", i) for i in range(len(ex.acks))]
            for coin in COINS:
                for kind in ("bbo", "activeAssetCtx"):
                    key = f"{kind}:{coin}"
                    if h.subscribed(key) and (h.epoch, key) not in md_done:
                        cands.append(("md", kind, coin))
            if ex.inbox:
                cands.append(("process",))
            cands += [("deliver", i) for i in ex.deliverable()]
            if not cands:
                # Quiet: let retries go out (flatten, unknown-order queries); a HardStop in
                # progress gets its retry interval so it can finish against this exchange.
                busy = not (d.hardstop.is_armed or d.hardstop.is_halted)
                h.tick(d.hardstop.retry_interval_ms if busy and stop_ticks < 8 else 0)
                stop_ticks += busy
                quiet_rounds += 1
                continue
            quiet_rounds = 0
            steps += 1
            assert steps < 600, "the exchange and the bot never went quiet"
            c = data.draw(st.sampled_from(cands), label="next fact")
            if c[0] == "ack":
                h.ack(c[1])
            elif c[0] == "md":
                md_done.add((h.epoch, f"{c[1]}:{c[2]}"))
                if c[1] == "bbo":
                    h.bbo(c[2])
                else:
                    h.ctx(c[2])
            elif c[0] == "process":
                h.process(data.draw(st.sampled_from(DRAIN_OUTCOMES), label="outcome"))
            else:
                h.deliver(c[1])
            self.check_all()
        assert d.conn.state == "live", f"connection is {d.conn.state} after delivering everything"
        event(f"drain: hardstop {d.hardstop.state}, epoch {min(h.epoch, 4)}")
        event(f"drain: orders sent {min(len(self.sent_cloids), 5)}")
        event(f"drain: final states {sorted(d.orders.final_counts)}")
        if d.hardstop.is_armed:
            assert d.ready.trading(), (
                f"(b) everything of epoch {h.epoch} delivered but not READY-TRADING; "
                f"missing: {d.readiness.missing()}"
            )
        unknown = [i.cloid for i, _m in d.orders.unknown_orders()]
        assert not unknown, f"(d) orders still unknown after reconciliation: {unknown}"
        assert h.bot_positions() == h.true_positions(), (
            f"(e) positions differ from the exchange: bot {h.bot_positions()} "
            f"exchange {h.true_positions()}"
        )
        live = {i.cloid for i, _m in d.orders.live_orders()}
        for o in ex.open_orders():
            assert o.cloid in live, f"(d) order {o.cloid} rests on the exchange, bot forgot it"

    # --- invariants after every step ----------------------------------------------------

    @invariant()
    def check_all(self) -> None:
        h, d, ex = self.h, self.h.d, self.h.exchange
        assert not self.violations, self.violations
        assert d.fatal is None, d.fatal
        assert d.counters["internal_errors"] == 0, "the dispatcher caught an internal error"
        # (c) inflight posts: never negative, equal to the post book, 0 without a connection
        inflight = d.wire.posts.inflight.count
        assert inflight >= 0
        assert inflight == len(d.wire.posts.pending())
        if d.conn.state not in ("subscribing", "reconciling", "live"):
            assert inflight == 0, f"{inflight} posts in flight with connection {d.conn.state}"
        # (d) every order in exactly one place; terminal states agree with the exchange
        terminal = d.orders._terminal
        both = set(d.orders.machines) & set(terminal)
        assert not both, f"(d) orders both live and terminal: {both}"
        assert sum(d.orders.final_counts.values()) == len(terminal)
        for cloid in self.sent_cloids:
            assert (cloid in d.orders.machines) != (cloid in terminal), f"(d) {cloid} lost track"
        for cloid, state in terminal.items():
            o = ex.orders.get(cloid)
            if state == "filled":
                assert o is not None and o.filled > 0, f"(d) {cloid} filled, exchange: {o}"
            elif state == "rejected":
                assert o is None or (o.status == "rejected" and o.filled == 0), (
                    f"(d) {cloid} rejected but the exchange executed it: {o}"
                )
            elif state == "cancelled":
                assert o is None or o.status != "open", (
                    f"(d) {cloid} cancelled but still resting on the exchange"
                )
        # (e) a fill counts once: an order never holds more than the exchange filled
        for cloid, m in d.orders.machines.items():
            o = ex.orders.get(cloid)
            filled = o.filled if o is not None else Decimal(0)
            assert m.filled_sz <= filled, f"(e) {cloid} counted {m.filled_sz} > {filled}"
        assert d.positions.fills_applied <= len(ex.fills)
        # (f) HardStop: halted only when the exchange is flat; armed again only by a reset
        hs = d.hardstop.state
        if hs == "halted":
            assert ex.is_flat(), (
                f"(f) HardStop halted while the exchange has open orders "
                f"{[o.cloid for o in ex.open_orders()]} or positions {h.true_positions()}"
            )
        if hs == "armed" and self.hardstop_before != "armed":
            assert self.reset_step, f"(f) HardStop re-armed from {self.hardstop_before} alone"
        self.hardstop_before = hs
        self.reset_step = False


TestDispatcherProperties = DispatcherProperties.TestCase
