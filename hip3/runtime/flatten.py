"""Flattening: one FlattenMachine per market, and the reduce-only orders they ask for.

A flatten is requested by an exit rule (the strategy, through its Context), by the HardStop's flattening step, or
by the operator's stop. The machine decides when to send, when to try again and when to give
up; this component builds and sends its order (a reduce-only IOC priced off the market's
reference price, or off a looked-up book for a coin the bot does not stream) and tells it how
the order ended. Commands it executes: SendFlattenOrder, OrderTerminal (of a flatten order),
FlattenAttemptFailed, FlattenFailed. It also tells the HardStop when its flattening step is
over (every position closed, or every one left given up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hip3.execution.risk import RiskMonitor, is_no_position_rejection
from hip3.machines import commands as C
from hip3.machines.flatten import FlattenMachine
from hip3.machines.hardstop import HardStopMachine
from hip3.protocol.numbers import PriceError, Rounding, SizeError, format_price, format_size
from hip3.runtime.common import BPS, dec, log, ms
from hip3.runtime.price_lookup import PriceLookup


class Flattening:
    def __init__(
        self,
        *,
        cfg: Any,
        flatten: dict[str, FlattenMachine],
        hardstop: HardStopMachine,
        positions: Any,
        markets: dict[str, Any],
        specs: dict[str, Any],
        ready: Any,
        wire: Any,
        executor: Any,
        price_lookup: PriceLookup,
        risk: RiskMonitor,
        trip: Callable[[str], None],
        outbox: list,
        clock: Any,
        counters: Any,
        transition_log: Any | None,
    ) -> None:
        self.cfg = cfg
        self.flatten = flatten  # market -> its FlattenMachine (shared with the executor)
        self.hardstop = hardstop
        self.positions = positions
        self.markets = markets
        self.specs = specs
        self.ready = ready
        self.wire = wire
        self.executor = executor
        self.price_lookup = price_lookup
        self.risk = risk
        self.trip = trip
        self.outbox = outbox
        self.clock = clock
        self.counters = counters
        self.transition_log = transition_log

    def flatten_machine(self, coin: str) -> FlattenMachine:
        fm = self.flatten.get(coin)
        if fm is None:
            fc = self.cfg.flatten
            fm = self.flatten[coin] = FlattenMachine(
                market=coin,
                timeout_ms=ms(fc.timeout_s),
                backoff_ms=ms(fc.retry_backoff_s),
                backoff_max_ms=ms(fc.retry_backoff_max_s),
                max_attempts=fc.max_attempts,
                outbox=self.outbox,
            )
            if self.transition_log is not None:
                self.transition_log.attach(fm)
        return fm

    def request(self, coin: str, reason: str) -> None:
        fm = self.flatten_machine(coin)
        if fm.state != "idle":
            self.counters["flatten_request_while_busy"] += 1
        # a busy machine records the request; it never sends a second order
        fm.send("request", reason=reason, now_ms=self.clock.now_ms())

    def send_order(self, cmd: C.SendFlattenOrder) -> None:
        """Carry out the market's SendFlattenOrder: answer its FlattenMachine with `sent`, or
        `not_sent` and why (the machine decides when to try again, and when to give up)."""
        coin = cmd.market
        fm = self.flatten_machine(coin)
        now = self.clock.now_ms()
        size = self.positions.size(coin)
        if size == 0:
            fm.send("cancel_request")
            return
        if not self.ready.can_reduce() or not self.wire.can_post():
            # nothing reached the exchange, so nothing failed: try again after the backoff
            fm.send(
                "not_sent", reason="no connection or no outbound room", now_ms=now, failure=False
            )
            return
        spec = self.specs.get(coin)
        st = self.markets.get(coin)
        ref = st.reference_px() if st is not None else self.price_lookup.price(coin)
        if spec is None or ref is None:
            missing = "market metadata" if spec is None else "reference price"
            # a price lookup still in flight is a wait, not a failure
            asked = spec is not None and self.price_lookup.waiting(coin)
            fm.send("not_sent", reason=f"no {missing} for {coin}", now_ms=now, failure=not asked)
            return
        try:
            if not size.is_finite():
                raise SizeError(f"the tracked size {size} is not a number")
            is_buy = size < 0
            slip = dec(self.cfg.exits.slippage_bps) / BPS
            limit = ref * (1 + slip) if is_buy else ref * (1 - slip)
            px = format_price(
                limit, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=Rounding.PASSIVE
            )
            sz = format_size(abs(size), sz_decimals=spec.sz_decimals)
        except (PriceError, SizeError) as exc:
            log.error("cannot build flatten order for %s: %s", coin, exc)
            fm.send("not_sent", reason=f"cannot build the order: {exc}", now_ms=now)
            self.trip(f"flatten impossible on {coin}: {exc}")
            return
        cloid = self.executor.send_order(
            spec, is_buy=is_buy, px=px, sz=sz, reduce_only=True, purpose="flatten", now_ms=now
        )
        if cloid is None:
            fm.send("not_sent", reason="outbound limit", now_ms=now, failure=False)
            return
        fm.send("sent", cloid=cloid, now_ms=now)

    def order_ended(self, cmd: C.OrderTerminal) -> None:
        """An order reached a final state: if it was a flatten order, its FlattenMachine learns
        how it went."""
        cloid, state, reason = cmd.cloid, cmd.state, cmd.reason
        for coin, fm in self.flatten.items():
            if fm.inflight_cloid != cloid:
                continue
            outcome = state
            if state == "rejected" and reason is not None and is_no_position_rejection(reason):
                outcome = "no_position"
            fm.send(
                "done",
                outcome=outcome,
                now_ms=self.clock.now_ms(),
                flat=self.positions.size(coin) == 0,
                cloid=cloid,
            )

    def attempt_failed(self, cmd: C.FlattenAttemptFailed) -> None:
        reason = self.risk.on_flatten_failure(cmd.market, cmd.failures, cmd.outcome)
        if reason and self.hardstop.is_armed:
            self.trip(reason)

    def gave_up(self, cmd: C.FlattenFailed) -> None:
        market, failures, outcome = cmd.market, cmd.failures, cmd.outcome
        log.error("flatten of %s gave up after %d failures (last: %s)", market, failures, outcome)
        self.counters["flatten_gave_up"] += 1
        if self.hardstop.is_armed:
            self.trip(f"flatten failures: gave up on {market} after {failures} ({outcome})")
        self.check_progress()

    def tick(self, now: int) -> None:
        for fm in list(self.flatten.values()):
            if fm.tick_due(now):  # sent only when a timeout or retry has come
                fm.send("tick", now_ms=now)

    def check_progress(self) -> None:
        """HardStop's flattening step ends when every position is closed, or when every one
        left is a position whose flatten gave up (verification then asks the exchange)."""
        if self.hardstop.state != "flattening":
            return
        attempt = self.hardstop.attempt
        open_coins = self.positions.open_coins()
        states = {coin: fm.state for coin, fm in self.flatten.items()}
        if not open_coins:
            if all(s == "idle" for s in states.values()):
                self.hardstop.send("positions_flat", attempt=attempt)
            return
        if all(states.get(c) == "failed" for c in open_coins) and all(
            s in ("idle", "failed") for s in states.values()
        ):
            self.hardstop.send(
                "flatten_given_up", markets=tuple(sorted(open_coins)), attempt=attempt
            )
