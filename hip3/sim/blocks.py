"""Where an action waits in the simulated mempool, and the order a block executes them in.

The exchange's documented ordering (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/
priority-fees and .../for-developers/api/optimizing-latency):

- Cancels and ALO-only batches sent at time t execute before IOC and GTC orders sent at t,
  and that preference spans several blocks. Other transactions wait like takers but are not
  delayed.
- The mempool sorts by `effective_time = arrival + f(action, fee)`. f is 0 for cancels; for an
  IOC it falls by about 45 ms per basis point of priority fee, down to 8 bps; beyond 8 bps
  there is no further time preference, but the >= 8 bps IOCs that share a 70 ms bucket are
  sorted by decreasing fee.
- The orders and cancels of one batch keep their request order (the core does that).

So an action joins the block of the bucket holding its effective time, and inside the block:
first lane (cancels, ALO-only batches) in arrival order, then the taker lane by effective
time, where the >= cap entries of the block are re-sorted among their own places by
decreasing fee, then arrival. The wait of a taker with no fee, f0, is not published: 360 ms
(the most 8 bps can buy) is inferred from "spans several blocks" and is configurable.
The 400 ms fee re-sort of each price level's recent ALOs is the book's (`hip3.sim.book`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

# The priority rate `p` is in 1e-8 of notional: 1 bp is 10_000 (the order action's
# `grouping: {"p": n}`, https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/priority-fees).
RATE_PER_BP = 10_000
MAX_RATE = 100_000_000


class Lane(IntEnum):
    FIRST = 0  # cancels and ALO-only batches: executed before everything else in a block
    TAKERS = 1  # IOC/GTC orders and every other transaction, by effective time


@dataclass(frozen=True, slots=True)
class MempoolRules:
    """How long each kind of action waits before it can be included (configurable)."""

    order_wait_ms: float = 360.0  # f0: the wait of an IOC/GTC batch paying no priority
    ms_per_bp: float = 45.0  # the wait an IOC buys back per basis point of priority
    max_priority_bps: int = 8  # no further time preference from here on, only fee order

    @property
    def top_rate(self) -> int:
        return self.max_priority_bps * RATE_PER_BP

    def order_wait(self, rate: int) -> float:
        bps = min(rate / RATE_PER_BP, self.max_priority_bps)
        return max(0.0, self.order_wait_ms - self.ms_per_bp * bps)


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one action waits: its lane, its priority rate and its wait f(action, fee)."""

    lane: Lane
    rate: int = 0
    wait_ms: float = 0.0


CANCEL_SLOT = Slot(Lane.FIRST)
PLAIN_SLOT = Slot(Lane.TAKERS)
_CANCELS = frozenset({"cancel", "cancelByCloid"})
_MODIFIES = frozenset({"modify", "batchModify"})


def slot_for(action: Any, rules: MempoolRules) -> Slot:
    """The slot of an action body (`payload["action"]`); malformed input gets a plain slot
    and is refused by the exchange core when its block executes."""
    if not isinstance(action, dict):
        return PLAIN_SLOT
    kind = action.get("type")
    if kind in _CANCELS:
        return CANCEL_SLOT
    if kind == "order":
        orders = action.get("orders")
        if _all_alo(orders):
            return CANCEL_SLOT
        if not isinstance(orders, list):
            return PLAIN_SLOT
        rate = priority_rate(action.get("grouping"))
        return Slot(Lane.TAKERS, rate, rules.order_wait(rate))
    if kind in _MODIFIES:
        entries = action.get("modifies") if kind == "batchModify" else [action]
        replacements = (
            [entry.get("order") for entry in entries if isinstance(entry, dict)]
            if isinstance(entries, list)
            else None
        )
        if (
            replacements is not None
            and len(replacements) == len(entries)
            and _all_alo(replacements)
        ):
            return CANCEL_SLOT
        return Slot(Lane.TAKERS, 0, rules.order_wait(0))
    return PLAIN_SLOT


def priority_rate(grouping: Any) -> int:
    """The rate of a `{"p": n}` grouping, 0 for "na" or anything the core will refuse."""
    if not isinstance(grouping, dict):
        return 0
    rate = grouping.get("p")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= MAX_RATE:
        return 0
    return rate


def _all_alo(orders: Any) -> bool:
    if not isinstance(orders, list) or not orders:
        return False
    for order in orders:
        if not isinstance(order, dict):
            return False
        kind = order.get("t")
        limit = kind.get("limit") if isinstance(kind, dict) else None
        if not isinstance(limit, dict) or limit.get("tif") != "Alo":
            return False
    return True


@dataclass(slots=True)
class Admitted:
    """One action in the mempool: when it arrived, its slot, and what the block runs."""

    slot: Slot
    arrival_ms: float
    seq: int  # admission order: the last tie-break
    work: Any = None  # opaque to the ordering: the sequencer's callable and reply

    @property
    def effective_ms(self) -> float:
        return self.arrival_ms + self.slot.wait_ms


def execution_order(entries: Iterable[Admitted], top_rate: int) -> list[Admitted]:
    """The order one block executes its entries in (see the module docs)."""
    first: list[Admitted] = []
    takers: list[Admitted] = []
    for entry in entries:
        (first if entry.slot.lane is Lane.FIRST else takers).append(entry)
    first.sort(key=lambda e: (e.arrival_ms, e.seq))
    takers.sort(key=lambda e: (e.effective_ms, e.seq))
    places = [i for i, entry in enumerate(takers) if entry.slot.rate >= top_rate]
    if len(places) > 1:
        ranked = sorted(
            (takers[i] for i in places), key=lambda e: (-e.slot.rate, e.arrival_ms, e.seq)
        )
        for i, entry in zip(places, ranked, strict=True):
            takers[i] = entry
    return first + takers


__all__ = [
    "CANCEL_SLOT",
    "MAX_RATE",
    "PLAIN_SLOT",
    "RATE_PER_BP",
    "Admitted",
    "Lane",
    "MempoolRules",
    "Slot",
    "execution_order",
    "priority_rate",
    "slot_for",
]
