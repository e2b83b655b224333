"""Live orders: one OrderMachine per order that is not yet terminal, indexed by cloid and oid.

Every order the bot places has a cloid, so orderUpdates and fills match by cloid even before
the post response names the oid. Updates for an oid the bot cannot place yet (no cloid, post
response still out) are held and applied when the oid becomes known. Terminal orders are
dropped from the machine table and remembered briefly by cloid, so a late response or a
duplicate update is recognised as late instead of being mistaken for a stranger.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hip3.machines.order import InconsistentFact, OrderMachine

log = logging.getLogger(__name__)

# orderUpdates statuses and what they mean for an order machine
# (docs/exchange/websocket.md#order-statuses)
_CANCELLED = frozenset(
    {
        "canceled",
        "marginCanceled",
        "vaultWithdrawalCanceled",
        "openInterestCapCanceled",
        "selfTradeCanceled",
        "reduceOnlyCanceled",
        "siblingFilledCanceled",
        "delistedCanceled",
        "liquidatedCanceled",
        "scheduledCancel",
        "outcomeSettledCanceled",
        "internalCancel",
    }
)


def classify_update_status(status: str) -> str:
    """'open' | 'filled' | 'cancelled' | 'rejected' | 'unknown' for an orderUpdates status."""
    if status in ("open", "triggered"):
        return "open"
    if status == "filled":
        return "filled"
    if status in _CANCELLED or status.endswith("Canceled") or status.endswith("Cancel"):
        return "cancelled"
    if status == "rejected" or status.endswith("Rejected"):
        return "rejected"
    return "unknown"


@dataclass(slots=True)
class OrderInfo:
    """What the rest of the bot needs about an order besides its machine."""

    cloid: str
    coin: str
    asset: int
    is_buy: bool
    size: Decimal
    px: str
    reduce_only: bool
    purpose: str  # "entry" | "flatten" | "strategy" | "adopted"
    created_ms: int
    post_id: int | None = None
    epoch: int = 0
    priority: int = 0  # priority fee rate sent with it, 10^-8 of notional (0: none)
    tif: str = "Ioc"


class OrderRegistry:
    def __init__(
        self, outbox: list, *, remember_terminal: int = 5000, max_spares: int = 64
    ) -> None:
        self._outbox = outbox
        self.machines: dict[str, OrderMachine] = {}
        self.info: dict[str, OrderInfo] = {}
        self._by_oid: dict[int, str] = {}
        self._spares: list[OrderMachine] = []
        self._retired: list[OrderMachine] = []  # terminal, waiting for `prewarm` to recycle
        self._max_spares = max_spares
        self.machines_built = 0
        self._held: dict[int, list[tuple[str, dict]]] = {}
        self._max_held = 1000
        # final state and description of recently retired orders: an answer about an order can
        # arrive after the stream already ended it (its rejection, say), and must still know
        # which market and side it was
        self._terminal: OrderedDict[str, tuple[str, OrderInfo]] = OrderedDict()
        self._remember_terminal = remember_terminal
        self.final_counts: dict[str, int] = {}
        self.late_events = 0
        self.refused_events = 0
        self.inconsistent_facts = 0
        # called as (cloid, source, target, event) on every state change (the journal)
        self.on_transition: Any = None

    # --- creation ---------------------------------------------------------------------------

    def add(self, info: OrderInfo) -> OrderMachine:
        if info.cloid in self.machines or info.cloid in self._terminal:
            raise ValueError(f"duplicate cloid {info.cloid}")
        fields = {
            "cloid": info.cloid,
            "market": info.coin,
            "is_buy": info.is_buy,
            "size": str(info.size),
            "reduce_only": info.reduce_only,
        }
        if self._spares:
            m = self._spares.pop()
            m.bind(**fields)
        else:
            m = OrderMachine(**fields, outbox=self._outbox)
            self.machines_built += 1
        self.machines[info.cloid] = m
        self.info[info.cloid] = info
        return m

    def prewarm(self, target: int, budget: int) -> int:
        """Refill the spare machines towards `target`; call it off the hot path (the timer),
        so sending an order never pays for building its machine.

        Machines of orders that ended are recycled first (microseconds each, however many);
        only what they cannot cover is built, at most `budget` per call (milliseconds each).
        Recycling waits for this call rather than happening at retirement, so no caller still
        holding the old order's machine within an event can see it change under it.
        Returns the number of machines built."""
        retired, self._retired = self._retired, []
        for m in retired:
            if len(self._spares) >= self._max_spares:
                break
            m.recycle()
            self._spares.append(m)
        built = 0
        while len(self._spares) < target and built < budget:
            self._spares.append(OrderMachine.spare(self._outbox))
            built += 1
        self.machines_built += built
        return built

    # --- lookups ----------------------------------------------------------------------------

    def cloid_for(self, oid: int | None, cloid: str | None) -> str | None:
        if cloid is not None and (cloid in self.machines or cloid in self._terminal):
            return cloid
        if oid is not None:
            return self._by_oid.get(oid)
        return None

    def is_live(self, cloid: str) -> bool:
        return cloid in self.machines

    def was_terminal(self, cloid: str) -> str | None:
        ended = self._terminal.get(cloid)
        return None if ended is None else ended[0]

    def terminal_states(self) -> dict[str, str]:
        """cloid -> final state of the orders still remembered after they ended."""
        return {cloid: state for cloid, (state, _info) in self._terminal.items()}

    def describe(self, cloid: str) -> OrderInfo | None:
        """The order's description while it is live and for a while after it ended."""
        info = self.info.get(cloid)
        if info is not None:
            return info
        ended = self._terminal.get(cloid)
        return None if ended is None else ended[1]

    def live_orders(self) -> list[tuple[OrderInfo, OrderMachine]]:
        return [(self.info[c], m) for c, m in self.machines.items()]

    def pending_entry(self, coin: str) -> bool:
        return any(
            i.coin == coin and i.purpose == "entry" for i in (self.info[c] for c in self.machines)
        )

    def unknown_orders(self) -> list[tuple[OrderInfo, OrderMachine]]:
        return [(self.info[c], m) for c, m in self.machines.items() if m.state == "unknown"]

    def open_orders(self) -> list[tuple[OrderInfo, OrderMachine]]:
        """Orders that may be resting on the book (what a cancel-all must cover)."""
        return [
            (self.info[c], m)
            for c, m in self.machines.items()
            if m.state in ("sent", "resting", "partially_filled", "unknown")
        ]

    # --- driving machines -------------------------------------------------------------------

    def send(self, cloid: str, event: str, **kw) -> str | None:
        """Deliver one event to a live order; returns the state after, or None if not live."""
        m = self.machines.get(cloid)
        if m is None:
            if cloid in self._terminal:
                self.late_events += 1
            return None
        before = m.state
        try:
            m.send(event, **kw)
        except m.TransitionNotAllowed:
            # A fact that does not fit this order's state (duplicate or out-of-order source):
            # counted and logged, never allowed to corrupt the order.
            self.refused_events += 1
            log.info("order %s in %s: event %s %s not applicable", cloid, m.state, event, kw)
            return m.state
        except InconsistentFact as exc:
            # A fact that cannot belong to this order (a forged or garbled answer, or our own
            # view is wrong): neither is trusted; the exchange is asked what the order is.
            self.inconsistent_facts += 1
            log.warning("order %s: %s %s contradicts the order: %s", cloid, event, kw, exc)
            if m.state in ("sent", "resting", "partially_filled", "unknown"):
                m.send("lost", reason=f"contradicting {event}: {exc}")
                if self.on_transition is not None and m.state != before:
                    self.on_transition(cloid, before, m.state, "lost")
            return m.state
        if self.on_transition is not None and m.state != before:
            self.on_transition(cloid, before, m.state, event)
        if event in ("resting", "filled_at_post") or kw.get("oid") is not None:
            oid = kw.get("oid") or m.oid
            if oid is not None:
                self._learn_oid(cloid, oid)
        if m.is_final:
            self._retire(cloid, m.state)
        return m.state

    def _learn_oid(self, cloid: str, oid: int) -> None:
        if self._by_oid.get(oid) == cloid:
            return
        self._by_oid[oid] = cloid
        for event, kw in self._held.pop(oid, []):
            self.send(cloid, event, **kw)

    def hold(self, oid: int, event: str, kw: dict) -> None:
        """Keep an update for an oid not known yet; bounded, since a foreign order's updates
        (placed by another client of the same account) would otherwise be held forever."""
        self._held.setdefault(oid, []).append((event, kw))
        while len(self._held) > self._max_held:
            self._held.pop(next(iter(self._held)))

    def _retire(self, cloid: str, state: str) -> None:
        m = self.machines.pop(cloid)
        info = self.info.pop(cloid)
        if m.oid is not None:
            self._by_oid.pop(m.oid, None)
        self._retired.append(m)
        self._terminal[cloid] = (state, info)
        if len(self._terminal) > self._remember_terminal:
            self._terminal.popitem(last=False)
        self.final_counts[state] = self.final_counts.get(state, 0) + 1
        log.debug("order %s %s on %s final: %s", cloid, info.purpose, info.coin, state)
