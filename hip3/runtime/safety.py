"""HardStop, flatten, risk triggers, the dead man's switch, operator commands and shutdown:
the dispatcher's protective steps. The decisions are the machines' (HardStopMachine,
FlattenMachine); these steps carry out their commands. Part of the one dispatcher.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hip3.events import OperatorCommand
from hip3.protocol.actions import cancel_action, cancel_by_cloid_action, schedule_cancel_action
from hip3.protocol.numbers import PriceError, Rounding, SizeError, format_price, format_size
from hip3.runtime.common import BPS as _BPS
from hip3.runtime.common import dec as _dec
from hip3.runtime.common import log
from hip3.runtime.common import ms as _ms
from hip3.runtime.reconciliation import positions_from_state
from hip3.transport.posts import PendingPost
from machines.flatten import FlattenMachine

PX_LOOKUP_MAX_AGE_MS = 5_000


class SafetySteps:
    """Executes HardStop and flatten commands; trips the HardStop on risk triggers."""

    # ------------------------------------------------------------------------------------
    # HardStop and flatten

    def _trip(self, reason: str) -> None:
        if self.hardstop.is_armed:
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
        fm = self._flatten_machine(coin)
        size = self.positions.size(coin)
        if size == 0:
            fm.send("cancel_request")
            return
        spec = self.specs.get(coin)
        st = self.markets.get(coin)
        ref = st.reference_px() if st is not None else self._looked_up_px(coin)
        if spec is None or ref is None or not self.ready.can_reduce() or not self.wire.can_post():
            self._flatten_waiting.add(coin)  # retried on the next tick
            return
        self._flatten_waiting.discard(coin)
        is_buy = size < 0
        slip = _dec(self.cfg.exits.slippage_bps) / _BPS
        limit = ref * (1 + slip) if is_buy else ref * (1 - slip)
        try:
            px = format_price(
                limit, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=Rounding.PASSIVE
            )
            sz = format_size(abs(size), sz_decimals=spec.sz_decimals)
        except (PriceError, SizeError) as exc:
            log.error("cannot build flatten order for %s: %s", coin, exc)
            fm.send("cancel_request")
            self._trip(f"flatten impossible on {coin}: {exc}")
            return
        cloid = self.executor.send_order(
            spec,
            is_buy=is_buy,
            px=px,
            sz=sz,
            reduce_only=True,
            purpose="flatten",
            now_ms=self.clock.now_ms(),
        )
        if cloid is None:
            self._flatten_waiting.add(coin)
            return
        fm.send("sent", cloid=cloid, now_ms=self.clock.now_ms())

    def _looked_up_px(self, coin: str) -> Decimal | None:
        """A price for a position in a coin the bot does not stream (the account traded it
        elsewhere): HardStop must flatten it too. Asks the book once and caches it briefly."""
        now = self.clock.now_ms()
        cached = self._px_lookup.get(coin)
        if cached is not None and now - cached[1] <= PX_LOOKUP_MAX_AGE_MS:
            return cached[0]
        if coin not in self._px_pending and self.ready.can_reduce():
            self._px_pending.add(coin)
            self._post_info({"type": "l2Book", "coin": coin}, f"px:{coin}")
        return None

    def _on_px_lookup(self, coin: str, data: Any) -> None:
        self._px_pending.discard(coin)
        levels = data.get("levels") if isinstance(data, dict) else None
        if not isinstance(levels, list) or len(levels) != 2:
            self.counters["px_lookup_bad_answer"] += 1
            return
        tops = [Decimal(side[0]["px"]) for side in levels if side]
        if tops:
            self._px_lookup[coin] = (sum(tops) / len(tops), self.clock.now_ms())

    def _check_flatten_progress(self) -> None:
        if (
            self.hardstop.state == "flattening"
            and not self.positions.open_coins()
            and all(fm.state == "idle" for fm in self.flatten.values())
        ):
            self.hardstop.send("positions_flat")

    def _cancel_all(self) -> None:
        if not self.ready.can_reduce():
            return  # HardStop's tick re-issues CancelAllOrders once a socket is open
        by_asset_oid: list[tuple[int, int]] = []
        by_cloid: list[tuple[int, str]] = []
        for info, m in self.orders.open_orders():
            if info.asset < 0:
                continue
            if m.oid is not None:
                by_asset_oid.append((info.asset, m.oid))
            elif not info.cloid.startswith("oid:"):
                by_cloid.append((info.asset, info.cloid))
        if not by_asset_oid and not by_cloid:
            self.hardstop.send("orders_cancelled")
            return
        for action in ([cancel_action(by_asset_oid)] if by_asset_oid else []) + (
            [cancel_by_cloid_action(by_cloid)] if by_cloid else []
        ):
            p = self.wire.post_action(action, kind="cancel", owner=None)
            if p is not None:
                self._cancel_posts.add(p.post_id)

    def _cancel_post_done(self, p: PendingPost) -> None:
        self._cancel_posts.discard(p.post_id)
        if not self._cancel_posts and self.hardstop.state == "cancelling":
            self.hardstop.send("orders_cancelled")

    def _flatten_all(self) -> None:
        coins = self.positions.open_coins()
        if not coins:
            self.hardstop.send("positions_flat")
            return
        for coin in coins:
            self.request_flatten(coin, "hardstop")

    def _verify_flat(self) -> None:
        if not self.ready.can_reduce() or self.user is None:
            return
        self._verify = {"outstanding": set(), "positions": {}, "open_orders": 0}
        for dex in self.dexes:
            for key, payload in (
                (
                    f"verify:positions:{dex}",
                    {"type": "clearinghouseState", "user": self.user, "dex": dex},
                ),
                (
                    f"verify:open_orders:{dex}",
                    {"type": "openOrders", "user": self.user, "dex": dex},
                ),
            ):
                self._verify["outstanding"].add(key)
                self._post_info(payload, key)

    def _on_verify(self, key: str, data: Any) -> None:
        v = self._verify
        if v is None or key not in v["outstanding"]:
            return
        v["outstanding"].discard(key)
        if key.startswith("verify:positions:"):
            sizes = positions_from_state(data)
            v["positions"].update({c: s for c, (s, _e) in sizes.items() if s != 0})
            self.positions.reconcile(
                sizes,
                set(sizes)
                | {
                    c
                    for c in self.positions.open_coins()
                    if self.specs.get(c) and self.specs[c].dex == key.rsplit(":", 1)[1]
                },
            )
        else:
            v["open_orders"] += len(data or [])
        if not v["outstanding"]:
            flat = not v["positions"] and v["open_orders"] == 0
            self.last_exchange_positions = {c: str(s) for c, s in v["positions"].items()}
            self._verify = None
            if self.hardstop.state == "verifying":
                self.hardstop.send("verified", flat=flat)

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
        self.wire.post_action(schedule_cancel_action(deadline), kind="schedule_cancel")

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
        else:
            log.error("unknown operator command %r", ev.kind)

    def _begin_shutdown(self, *, flatten: bool) -> None:
        if self._shutdown_started_ms is not None:
            return
        self._shutdown_started_ms = self.clock.now_ms()
        log.info("shutting down (flatten=%s)", flatten)
        if self.trading and (flatten or self.cfg.shutdown.cancel_on_exit):
            self._shutdown_flatten = flatten
            if flatten:
                self._trip("shutdown with flatten")
            else:
                self._cancel_all_on_exit()
        self._shutdown_progress(self.clock.now_ms())

    _shutdown_flatten = False

    def _cancel_all_on_exit(self) -> None:
        if not self.ready.can_reduce():
            log.error("shutdown: no open connection, open orders cannot be cancelled now")
            return
        for action in self._exit_cancels():
            self.wire.post_action(action, kind="cancel")

    def _exit_cancels(self) -> list[dict]:
        by_oid = [
            (i.asset, m.oid)
            for i, m in self.orders.open_orders()
            if m.oid is not None and i.asset >= 0
        ]
        return [cancel_action(by_oid)] if by_oid else []

    def _shutdown_progress(self, now: int) -> None:
        if self._shutdown_started_ms is None or self.conn.state in ("closing", "closed"):
            return
        timed_out = now - self._shutdown_started_ms > _ms(self.cfg.shutdown.timeout_s)
        if self._shutdown_flatten:
            done = self.hardstop.state == "halted"
        else:
            done = not self.orders.open_orders() and not self.wire.posts.pending()
        if not self.trading or done or timed_out:
            if timed_out:
                log.error(
                    "shutdown timed out after %.1f s; closing anyway", self.cfg.shutdown.timeout_s
                )
            self.conn.send("shutdown", now_ms=now)
