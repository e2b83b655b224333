"""Safety: the HardStop's steps, the risk triggers, operator commands and the graceful stop
(the dead man's switch has its own component, `dead_mans_switch.py`).

The HardStopMachine decides (trip → block entries → cancel → flatten → verify → halted); this
component carries out its commands: CancelAllOrders (the one cancel-everything routine),
FlattenAllPositions (through `Flattening`), VerifyFlat (asks the exchange's openOrders and
clearinghouseState and adopts what they say), BlockEntries, HardStopHalted, HardStopRearmed.
On every tick it checks the risk limits (a breach trips the HardStop) and moves a stop on
until it is done or its deadline passes. Events it takes:
OperatorCommand (hardstop, reset, shutdown, accept_params), ticks.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from hip3.events import OperatorCommand
from hip3.machines import commands as C
from hip3.machines.hardstop import HardStopMachine
from hip3.market.gates import accept_changed_params
from hip3.protocol.actions import cancel_action, cancel_by_cloid_action
from hip3.runtime.common import log, ms
from hip3.runtime.flatten import Flattening
from hip3.runtime.post_owners import CancelPost
from hip3.runtime.reconciliation import Reconciler, has_cloid, positions_from_state
from hip3.runtime.trip import STOP_REASON, HardStopTrip

__all__ = ["STOP_REASON", "Safety"]

_ZERO = Decimal(0)

# HardStop step commands and the state each belongs to.
_HARDSTOP_STEPS = {
    C.CancelAllOrders: "cancelling",
    C.FlattenAllPositions: "flattening",
    C.VerifyFlat: "verifying",
}


class Safety:
    """Executes HardStop commands; trips the HardStop on risk triggers; runs the stop."""

    def __init__(
        self,
        *,
        cfg: Any,
        hardstop: HardStopMachine,
        trip: HardStopTrip,
        flattening: Flattening,
        reconciler: Reconciler,
        conn: Any,
        orders: Any,
        positions: Any,
        markets: dict[str, Any],
        specs: dict[str, Any],
        gates: dict[str, Any],
        wire: Any,
        ready: Any,
        risk: Any,
        recorder: Any,
        user: str | None,
        dexes: list[str],
        trading: bool,
        clock: Any,
        counters: Any,
    ) -> None:
        self.cfg = cfg
        self.hardstop = hardstop
        self.trip = trip
        self.flattening = flattening
        self.reconciler = reconciler  # asks the exchange; adopts the open orders it lists
        self.conn = conn
        self.orders = orders
        self.positions = positions
        self.markets = markets
        self.specs = specs
        self.gates = gates
        self.wire = wire
        self.ready = ready
        self.risk = risk
        self.recorder = recorder
        self.user = user
        self.dexes = dexes
        self.trading = trading
        self.clock = clock
        self.counters = counters
        self._step_methods = {
            C.CancelAllOrders: self._cancel_all,
            C.FlattenAllPositions: self._flatten_all,
            C.VerifyFlat: self._verify_flat,
        }
        self._cancel_posts: set[CancelPost] = set()
        self._cancel_attempt = 0
        self._verify: dict[str, Any] | None = None
        # the stop: when it began, and whether it flattens or only cancels
        self._shutdown_started_ms: int | None = None
        self._shutdown_flatten = False
        self._shutdown_cancel = False
        # openOrders count of the last shutdown check; None until one is answered
        self._exit_open_listed: int | None = None
        # The stop ran out of time before its cancels, flattens and verification finished.
        self.shutdown_timed_out = False
        # what the exchange listed at the last HardStop verification (coin -> size)
        self.last_exchange_positions: dict[str, str] | None = None

    @property
    def stopping(self) -> bool:
        """A graceful stop has begun."""
        return self._shutdown_started_ms is not None

    def end_epoch(self) -> None:
        """The connection is gone: an exchange check in flight and the cancel posts of this
        epoch are void (HardStop's tick asks again in the next one)."""
        self._verify = None
        self._cancel_posts.clear()

    # ------------------------------------------------------------------------------------
    # HardStop commands

    def run_step(self, cmd: Any) -> None:
        """CancelAllOrders, FlattenAllPositions, VerifyFlat. A step command can be overtaken
        inside one event: a tick re-emits it, then the same tick's progress check moves
        HardStop on. Run only the current step."""
        t = type(cmd)
        if self.hardstop.state == _HARDSTOP_STEPS[t]:
            self._step_methods[t](cmd.attempt)
        else:
            self.counters["hardstop_stale_step"] += 1

    def entries_blocked(self, cmd: C.BlockEntries) -> None:
        if cmd.reason == STOP_REASON:
            log.info("stopping: entries blocked")
        else:
            log.error("HardStop: entries blocked: %s", cmd.reason)
        self.recorder.hardstop("tripped", cmd.reason, wall_ms=self.clock.wall_ms())

    def halted(self, cmd: C.HardStopHalted) -> None:
        if list(cmd.reasons) == [STOP_REASON]:
            log.info("stopped: orders cancelled, positions flattened and verified")
        else:
            log.error("HardStop halted: %s", "; ".join(cmd.reasons))
        if self.hardstop.given_up:
            log.error(
                "HardStop: flatten gave up on %s; positions adopted from the exchange: %s",
                ", ".join(self.hardstop.given_up),
                self.last_exchange_positions,
            )
        self.recorder.hardstop("halted", "; ".join(cmd.reasons), wall_ms=self.clock.wall_ms())

    def rearmed(self, cmd: C.HardStopRearmed) -> None:
        self.recorder.hardstop("armed", "operator reset", wall_ms=self.clock.wall_ms())
        self.risk.reset()

    def tick(self, now: int) -> None:
        """The HardStop's and the flatten machines' timers, then whether flattening is over."""
        if self.hardstop.tick_due(now):  # sent only when it has something to do
            self.hardstop.send("tick", now_ms=now)
        self.flattening.tick(now)
        self.flattening.check_progress()

    def cancel_everything(self) -> tuple[int, int]:
        """The one cancel-everything routine (HardStop and shutdown): cancels every order that
        may rest, by oid where the exchange told us one, by cloid where only the cloid is known
        (an order whose post answer is still unknown). Returns (orders to cancel, cancel posts
        sent); the posts' answers come back through `_cancel_post_done`. What is still open
        afterwards is settled by the orders' own updates and reconciliation, and the HardStop
        verifies it with the exchange's openOrders."""
        by_asset_oid: list[tuple[int, int]] = []
        adopted: list[tuple[int, int]] = []
        by_cloid: list[tuple[int, str]] = []
        for info, m in self.orders.open_orders():
            if info.asset < 0:
                continue
            if m.oid is not None:
                (adopted if info.purpose == "adopted" else by_asset_oid).append((info.asset, m.oid))
            elif has_cloid(info):
                by_cloid.append((info.asset, info.cloid))
        # Fast cancels (docs/exchange/actions.md#cancel-and-cancelbycloid) for the bot's own
        # orders, which are never trigger orders; an adopted order may be one (placed by
        # someone else on the account), and a fast cancel of a trigger is refused.
        actions = (
            ([cancel_action(by_asset_oid, fast=True)] if by_asset_oid else [])
            + ([cancel_action(adopted)] if adopted else [])
            + ([cancel_by_cloid_action(by_cloid, fast=True)] if by_cloid else [])
        )
        posted = 0
        for action in actions:
            owner = CancelPost(self._cancel_post_done)
            if self.wire.post_action(action, kind="cancel", owner=owner) is not None:
                self._cancel_posts.add(owner)
                posted += 1
        return len(by_asset_oid) + len(adopted) + len(by_cloid), posted

    def _cancel_all(self, attempt: int) -> None:
        if not self.ready.can_reduce():
            return  # HardStop's tick re-issues CancelAllOrders once a socket is open
        self._cancel_attempt = attempt
        wanted, _posted = self.cancel_everything()
        if wanted == 0:
            self.hardstop.send("orders_cancelled", attempt=attempt)
        # otherwise the last cancel answer moves HardStop on; a cancel that could not go out
        # (outbound limit) is re-issued by HardStop's tick

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
            self.flattening.request(coin, "hardstop")

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
                self.reconciler.ask(
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
            self.reconciler.reconcile_open_orders(rows)
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
    # risk

    def check_risk(self, now: int) -> None:
        """On every tick: the loss limit, and exposure while disconnected. Flat, it costs a
        few lookups: only open positions are priced, and the realized part is summed again
        only after a fill."""
        if not self.hardstop.is_armed:
            return
        positions = self.positions
        open_coins = positions.open_coins()
        unrealized = _ZERO
        for coin in open_coins:
            st = self.markets.get(coin)
            ref = st.reference_px() if st is not None else None
            if ref is not None:
                unrealized += positions.positions[coin].unrealized(ref)
        pnl = positions.realized_net_of_fees() + unrealized
        exposed = bool(open_coins) or bool(self.orders.open_orders())
        reason = self.risk.check(
            now_ms=now, pnl=pnl, connected=self.ready.can_reduce(), exposed=exposed
        )
        if reason:
            self.trip(reason)

    # ------------------------------------------------------------------------------------
    # operator

    def operator(self, ev: OperatorCommand) -> None:
        if ev.kind == "hardstop":
            self.trip(f"operator: {ev.detail or 'manual'}")
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

    # ------------------------------------------------------------------------------------
    # the graceful stop

    def _begin_shutdown(self, *, flatten: bool) -> None:
        if self._shutdown_started_ms is not None:
            return
        self._shutdown_started_ms = self.clock.now_ms()
        log.info("shutting down (flatten=%s)", flatten)
        if self.trading and (flatten or self.cfg.shutdown.cancel_on_exit):
            self._shutdown_flatten = flatten
            self._shutdown_cancel = not flatten
            if flatten:
                self.trip(STOP_REASON)
        self.shutdown_progress(self.clock.now_ms())

    def _cancel_all_on_exit(self) -> None:
        """Cancel every open order (the one cancel-everything routine), unless a cancel is
        already in flight. Asked again on every tick of the stop, so a connection lost
        meanwhile is not the end of it: the next epoch's reconciliation settles the orders and
        the cancel follows."""
        if not self.ready.can_reduce():
            return
        if any(isinstance(p.owner, CancelPost) for p in self.wire.posts.pending()):
            return
        self.cancel_everything()

    def _shutdown_done(self) -> bool:
        if self._shutdown_flatten:
            return self.hardstop.state == "halted"
        if self._shutdown_cancel:
            return self._exit_orders_closed()
        return not self.wire.posts.pending()

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

    def shutdown_progress(self, now: int) -> None:
        """The stop keeps its connection going until it is done or its deadline passes: while
        disconnected the connection machine retries on the exposed (short) backoff, and the
        cancels and flattens go out once a socket is open again."""
        if self._shutdown_started_ms is None or self.conn.state in ("closing", "closed"):
            return
        if self._shutdown_cancel:
            self._cancel_all_on_exit()
        timed_out = now - self._shutdown_started_ms > ms(self.cfg.shutdown.timeout_s)
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
