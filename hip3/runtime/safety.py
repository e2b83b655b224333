"""HardStop, flatten, risk triggers, the dead man's switch, operator commands and shutdown:
the dispatcher's protective steps. The decisions are the machines' (HardStopMachine,
FlattenMachine); these steps carry out their commands. Part of the one dispatcher.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from hip3.events import OperatorCommand
from hip3.execution.risk import is_no_position_rejection
from hip3.machines.flatten import FlattenMachine
from hip3.market.gates import accept_changed_params
from hip3.protocol.actions import cancel_action, cancel_by_cloid_action, schedule_cancel_action
from hip3.protocol.numbers import PriceError, Rounding, SizeError, format_price, format_size
from hip3.runtime.common import BPS as _BPS
from hip3.runtime.common import dec as _dec
from hip3.runtime.common import log
from hip3.runtime.common import ms as _ms
from hip3.runtime.post_owners import CancelPost, ScheduleCancelPost
from hip3.runtime.reconciliation import has_cloid, positions_from_state

# The HardStop reason of a graceful stop that flattens: a routine stop, logged at INFO.
STOP_REASON = "shutdown with flatten"


class SafetySteps:
    """Executes HardStop and flatten commands; trips the HardStop on risk triggers."""

    # ------------------------------------------------------------------------------------
    # HardStop and flatten

    def _trip(self, reason: str) -> None:
        if self.hardstop.is_armed:
            if reason == STOP_REASON:
                log.info("stopping: cancel and flatten through the HardStop steps")
            else:
                log.error("HardStop tripped: %s", reason)
        self.hardstop.send("trip", reason=reason, now_ms=self.clock.now_ms())

    def _flatten_machine(self, coin: str) -> FlattenMachine:
        fm = self.flatten.get(coin)
        if fm is None:
            fc = self.cfg.flatten
            fm = self.flatten[coin] = FlattenMachine(
                market=coin,
                timeout_ms=_ms(fc.timeout_s),
                backoff_ms=_ms(fc.retry_backoff_s),
                backoff_max_ms=_ms(fc.retry_backoff_max_s),
                max_attempts=fc.max_attempts,
                outbox=self.outbox,
            )
            if self.transition_log is not None:
                self.transition_log.attach(fm)
        return fm

    def request_flatten(self, coin: str, reason: str) -> None:
        fm = self._flatten_machine(coin)
        if fm.state != "idle":
            self.counters["flatten_request_while_busy"] += 1
        # a busy machine records the request; it never sends a second order
        fm.send("request", reason=reason, now_ms=self.clock.now_ms())

    def _send_flatten(self, coin: str) -> None:
        """Carry out the market's SendFlattenOrder: answer its FlattenMachine with `sent`, or
        `not_sent` and why (the machine decides when to try again, and when to give up)."""
        fm = self._flatten_machine(coin)
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
            slip = _dec(self.cfg.exits.slippage_bps) / _BPS
            limit = ref * (1 + slip) if is_buy else ref * (1 - slip)
            px = format_price(
                limit, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=Rounding.PASSIVE
            )
            sz = format_size(abs(size), sz_decimals=spec.sz_decimals)
        except (PriceError, SizeError) as exc:
            log.error("cannot build flatten order for %s: %s", coin, exc)
            fm.send("not_sent", reason=f"cannot build the order: {exc}", now_ms=now)
            self._trip(f"flatten impossible on {coin}: {exc}")
            return
        cloid = self.executor.send_order(
            spec, is_buy=is_buy, px=px, sz=sz, reduce_only=True, purpose="flatten", now_ms=now
        )
        if cloid is None:
            fm.send("not_sent", reason="outbound limit", now_ms=now, failure=False)
            return
        fm.send("sent", cloid=cloid, now_ms=now)

    def _flatten_order_ended(self, cloid: str, state: str, reason: str | None) -> None:
        """A flatten order reached a final state: its FlattenMachine learns how it went."""
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

    def _flatten_attempt_failed(self, market: str, failures: int, outcome: str) -> None:
        reason = self.risk.on_flatten_failure(market, failures, outcome)
        if reason and self.hardstop.is_armed:
            self._trip(reason)

    def _flatten_gave_up(self, market: str, failures: int, outcome: str) -> None:
        log.error("flatten of %s gave up after %d failures (last: %s)", market, failures, outcome)
        self.counters["flatten_gave_up"] += 1
        if self.hardstop.is_armed:
            self._trip(f"flatten failures: gave up on {market} after {failures} ({outcome})")
        self._check_flatten_progress()

    def _check_flatten_progress(self) -> None:
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

    def _cancel_everything(self) -> tuple[int, int]:
        """The one cancel-everything routine (HardStop and shutdown): cancels every order that
        may rest, by oid where the exchange told us one, by cloid where only the cloid is known
        (an order whose post answer is still unknown). Returns (orders to cancel, cancel posts
        sent); the posts' answers come back through `_cancel_post_done`. What is still open
        afterwards is settled by the orders' own updates and reconciliation, and the HardStop
        verifies it with the exchange's openOrders."""
        by_asset_oid: list[tuple[int, int]] = []
        by_cloid: list[tuple[int, str]] = []
        for info, m in self.orders.open_orders():
            if info.asset < 0:
                continue
            if m.oid is not None:
                by_asset_oid.append((info.asset, m.oid))
            elif has_cloid(info):
                by_cloid.append((info.asset, info.cloid))
        actions = ([cancel_action(by_asset_oid)] if by_asset_oid else []) + (
            [cancel_by_cloid_action(by_cloid)] if by_cloid else []
        )
        posted = 0
        for action in actions:
            owner = CancelPost(self._cancel_post_done)
            if self.wire.post_action(action, kind="cancel", owner=owner) is not None:
                self._cancel_posts.add(owner)
                posted += 1
        return len(by_asset_oid) + len(by_cloid), posted

    def _cancel_all(self, attempt: int) -> None:
        if not self.ready.can_reduce():
            return  # HardStop's tick re-issues CancelAllOrders once a socket is open
        self._cancel_attempt = attempt
        wanted, _posted = self._cancel_everything()
        if wanted == 0:
            self.hardstop.send("orders_cancelled", attempt=attempt)
        # otherwise the last cancel answer moves HardStop on; a cancel that could not go out
        # (outbound limit) is re-issued by HardStop's tick

    _cancel_attempt = 0

    def _cancel_post_done(self, post: CancelPost) -> None:
        self._cancel_posts.discard(post)
        if not self._cancel_posts and self.hardstop.state == "cancelling":
            self.hardstop.send("orders_cancelled", attempt=self._cancel_attempt)

    def _flatten_all(self, attempt: int) -> None:
        coins = self.positions.open_coins()
        if not coins:
            self.hardstop.send("positions_flat", attempt=attempt)
            return
        for coin in coins:
            self.request_flatten(coin, "hardstop")

    def _verify_flat(self, attempt: int) -> None:
        self._ask_exchange(purpose="hardstop", attempt=attempt, positions=True)

    def _ask_exchange(self, *, purpose: str, attempt: int = 0, positions: bool) -> bool:
        """Ask the exchange what is open on every traded dex: openOrders, and clearinghouseState
        when `positions`. The answers are adopted as they come (`_on_verify`); False when no
        question can go out now."""
        if not self.ready.can_reduce() or self.user is None:
            return False
        self._verify = {
            "outstanding": set(),
            "positions": {},
            "open_orders": 0,
            "attempt": attempt,
            "purpose": purpose,
        }
        for dex in self.dexes:
            parts = [("open_orders", "openOrders")]
            if positions:
                parts.insert(0, ("positions", "clearinghouseState"))
            for part, info_type in parts:
                key = f"verify:{part}:{dex}"
                self._verify["outstanding"].add(key)
                self._post_info(
                    {"type": info_type, "user": self.user, "dex": dex},
                    key,
                    on_answer=partial(self._on_verify, key, part, dex),
                    on_failure=self._verify_failed,
                )
        return True

    def _verify_failed(self, reason: str, now: int) -> None:
        self._verify = None  # the HardStop tick asks again

    def _on_verify(self, key: str, part: str, dex: str, data: Any, now: int) -> None:
        v = self._verify
        if v is None or key not in v["outstanding"]:
            return
        v["outstanding"].discard(key)
        if part == "positions":
            sizes = positions_from_state(data)
            v["positions"].update({c: s for c, (s, _e) in sizes.items() if s != 0})
            # the answer vouches for every coin of its dex, listed or not (flat)
            on_dex = {c for c, spec in self.specs.items() if spec.dex == dex}
            self.positions.reconcile(
                sizes,
                set(sizes) | on_dex,
                request_key=key,
            )
        else:
            rows = data or []
            v["open_orders"] += len(rows)
            # what the exchange lists is what the next cancel-everything must cover, including
            # orders this session never placed or heard of (another client of the account)
            self._reconcile_open_orders(rows)
        if not v["outstanding"]:
            self._verify = None
            if v["purpose"] == "shutdown":
                self._exit_open_listed = v["open_orders"]
                return
            # The answers are snapshots: a fill or an order that reached the bot after one of
            # them was taken (another client of the account, say) is newer than the answer.
            flat = (
                not v["positions"]
                and v["open_orders"] == 0
                and not self.positions.open_coins()
                and not self.positions.needs_state
                and not self.orders.open_orders()
            )
            self.last_exchange_positions = {c: str(s) for c, s in v["positions"].items()}
            if self.hardstop.state == "verifying":
                self.hardstop.send("verified", flat=flat, attempt=v["attempt"])

    # ------------------------------------------------------------------------------------
    # risk and the dead man's switch

    def _check_risk(self, now: int) -> None:
        if not self.hardstop.is_armed:
            return
        unrealized = Decimal(0)
        for coin, p in self.positions.positions.items():
            if p.size:
                st = self.markets.get(coin)
                ref = st.reference_px() if st is not None else None
                if ref is not None:
                    unrealized += p.unrealized(ref)
        pnl = self.positions.realized() - self.positions.total_fees() + unrealized
        exposed = bool(self.positions.open_coins()) or bool(self.orders.open_orders())
        reason = self.risk.check(
            now_ms=now, pnl=pnl, connected=self.ready.can_reduce(), exposed=exposed
        )
        if reason:
            self._trip(reason)

    def _dead_mans_switch(self, now: int) -> None:
        dms = self.cfg.dead_mans_switch
        if (
            not dms.enabled
            or not self.trading
            or self.conn.state != "live"
            or now < self._dms_next_ms
        ):
            return
        self._dms_next_ms = now + _ms(dms.interval_s)
        deadline = self.clock.wall_ms() + _ms(dms.lead_s)
        self.wire.post_action(
            schedule_cancel_action(deadline),
            kind="schedule_cancel",
            owner=ScheduleCancelPost(self._schedule_cancel_refused),
        )

    def _schedule_cancel_refused(self, err: str) -> None:
        log.warning("dead man's switch refused: %s", err)
        self.counters["dms_refused"] += 1

    # ------------------------------------------------------------------------------------
    # operator

    def _on_operator(self, ev: OperatorCommand) -> None:
        if ev.kind == "hardstop":
            self._trip(f"operator: {ev.detail or 'manual'}")
        elif ev.kind == "reset":
            if self.hardstop.state != "halted":
                log.error("operator reset refused: HardStop is %s, not halted", self.hardstop.state)
                self.counters["reset_refused"] += 1
                return
            self.hardstop.send("operator_reset")
        elif ev.kind == "shutdown":
            self._begin_shutdown(flatten=self.cfg.shutdown.flatten_on_exit and self.trading)
        elif ev.kind == "accept_params":
            accepted = accept_changed_params(self.gates)
            log.warning("operator accepted changed market parameters on %s", accepted or "none")
        else:
            log.error("unknown operator command %r", ev.kind)

    def _begin_shutdown(self, *, flatten: bool) -> None:
        if self._shutdown_started_ms is not None:
            return
        self._shutdown_started_ms = self.clock.now_ms()
        log.info("shutting down (flatten=%s)", flatten)
        if self.trading and (flatten or self.cfg.shutdown.cancel_on_exit):
            self._shutdown_flatten = flatten
            self._shutdown_cancel = not flatten
            if flatten:
                self._trip(STOP_REASON)
        self._shutdown_progress(self.clock.now_ms())

    _shutdown_flatten = False
    _shutdown_cancel = False
    # The stop ran out of time before its cancels, flattens and verification finished.
    shutdown_timed_out = False

    def _cancel_all_on_exit(self) -> None:
        """Cancel every open order (the one cancel-everything routine), unless a cancel is
        already in flight. Asked again on every tick of the stop, so a connection lost
        meanwhile is not the end of it: the next epoch's reconciliation settles the orders and
        the cancel follows."""
        if not self.ready.can_reduce():
            return
        if any(isinstance(p.owner, CancelPost) for p in self.wire.posts.pending()):
            return
        self._cancel_everything()

    def _shutdown_done(self) -> bool:
        if self._shutdown_flatten:
            return self.hardstop.state == "halted"
        if self._shutdown_cancel:
            return self._exit_orders_closed()
        return not self.wire.posts.pending()

    # openOrders count of the last shutdown check; None until one is answered
    _exit_open_listed: int | None = None

    def _exit_orders_closed(self) -> bool:
        """A shutdown that cancels without flattening is done when nothing tracked is open or
        in flight and the exchange's openOrders lists nothing. What the check lists is adopted
        (`_on_verify`), so the stop's cancels cover it, and the exchange is asked again."""
        if self.orders.open_orders() or self.wire.posts.pending():
            if self._verify is None:
                self._exit_open_listed = None  # settle these, then ask again
            return False
        if self._exit_open_listed == 0:
            return True
        if self._verify is None:
            self._ask_exchange(purpose="shutdown", positions=False)
        return False

    def _shutdown_progress(self, now: int) -> None:
        """The stop keeps its connection going until it is done or its deadline passes: while
        disconnected the connection machine retries on the exposed (short) backoff, and the
        cancels and flattens go out once a socket is open again."""
        if self._shutdown_started_ms is None or self.conn.state in ("closing", "closed"):
            return
        if self._shutdown_cancel:
            self._cancel_all_on_exit()
        timed_out = now - self._shutdown_started_ms > _ms(self.cfg.shutdown.timeout_s)
        done = self._shutdown_done()
        if not self.trading or done or timed_out:
            if timed_out and not done:
                self.shutdown_timed_out = True
                log.error(
                    "shutdown timed out after %.1f s (connection %s); may still be open: "
                    "positions %s, %d order(s)",
                    self.cfg.shutdown.timeout_s,
                    self.conn.state,
                    self.positions.signed_sizes(),
                    len(self.orders.open_orders()),
                )
            self.conn.send("shutdown", now_ms=now)
