"""Priority fees on order actions: `grouping: {"p": n}`, eligibility, charging and burning.

From the exchange's docs (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/
priority-fees) and the official SDKs' `PriorityGrouping`:

- The order action's `grouping` is either "na" or an object with one integer `p`, the rate
  in 1e-8 of notional: 1 bp is 10000, the cap (100 %) is 100000000. It is part of the signed
  msgpack like any other field, so the signer hashes the object exactly as sent.
- Only eligible batches may carry it: every order IOC, or every order a non-reduce-only ALO.
  GTC, trigger and reduce-only ALO orders, and mixes, are not eligible.
- It is paid from the account's undelegated staking balance (HYPE), converted at the HYPE
  spot price, and burned: an IOC pays rate x filled notional, an ALO pays rate x resting
  notional at placement, whether or not it fills later.

Chosen by the simulator (the live behaviour is not published): the refusal texts below are
invented and whole-action; an action whose rate applied to every order's limit notional is
more than the staking balance is refused before anything executes (a sell may still fill
above its limit; what is due beyond the balance is then waived); the HYPE price is a
setting (`HYPE_USD`, a scenario's `hype_usd`: the simulator has no spot market). Mempool
ordering by priority lives in `hip3.sim.blocks`; a resting ALO's place ahead of its level's
recent, poorer orders in `hip3.sim.book`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal
from typing import Any

from hip3.sim.blocks import MAX_RATE
from hip3.sim.wire import ActionError, OrderWire, malformed

INELIGIBLE = (
    "Priority fee is only allowed on a batch of IOC orders or of non-reduce-only ALO orders."
)
INSUFFICIENT = "Insufficient undelegated staking balance for the priority fee."
HYPE_USD = Decimal(40)  # HYPE's price for converting fees (scenario `hype_usd`)
HYPE_QUANTUM = Decimal("0.00000001")
_RATE_SCALE = Decimal(100_000_000)
ZERO = Decimal(0)


def parse_grouping(grouping: Any) -> int | None:
    """The priority rate of an order action's grouping; None for "na" (no priority)."""
    if grouping == "na":
        return None
    if not isinstance(grouping, dict):
        raise malformed(
            "action.grouping", f'{grouping!r} is not supported (only "na" or {{"p": n}})'
        )
    if set(grouping) != {"p"}:
        raise malformed(
            "action.grouping", f"must be {{'p': n}} with only the key p, got {grouping!r}"
        )
    rate = grouping["p"]
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= MAX_RATE:
        raise malformed("action.grouping.p", f"must be an integer 0..{MAX_RATE}, got {rate!r}")
    return rate


def check_eligible(orders: Iterable[OrderWire]) -> None:
    """Refuse a priority grouping on anything but an all-IOC or all-plain-ALO batch."""
    wires = list(orders)
    all_ioc = all(wire.tif == "Ioc" for wire in wires)
    all_plain_alo = all(wire.tif == "Alo" and not wire.reduce_only for wire in wires)
    if not wires or not (all_ioc or all_plain_alo):
        raise ActionError(INELIGIBLE)


def fee_usd(rate: int, notional: Decimal) -> Decimal:
    return notional * rate / _RATE_SCALE


class StakingLedger:
    """Undelegated staking balances in HYPE, and what priority fees burned."""

    def __init__(self, hype_usd: Decimal = HYPE_USD) -> None:
        self.hype_usd = hype_usd
        self._balances: dict[str, Decimal] = {}
        self.burned = ZERO

    def fund(self, user: str, hype: Decimal) -> None:
        amount = Decimal(hype)
        if not amount.is_finite() or amount < 0:
            raise ValueError("staking amount must be a non-negative finite decimal")
        self._balances[user] = self.balance(user) + amount

    def balance(self, user: str) -> Decimal:
        return self._balances.get(user, ZERO)

    def to_hype(self, usd: Decimal) -> Decimal:
        return (usd / self.hype_usd).quantize(HYPE_QUANTUM, rounding=ROUND_CEILING)

    def require(self, user: str, rate: int, orders: Iterable[OrderWire]) -> None:
        """Refuse the action if the fee on every order's limit notional is not covered."""
        if not rate:
            return
        notional = sum(((w.px or ZERO) * (w.sz or ZERO) for w in orders), ZERO)
        if self.to_hype(fee_usd(rate, notional)) > self.balance(user):
            raise ActionError(INSUFFICIENT)

    def charge(self, user: str, rate: int, notional: Decimal) -> Decimal:
        """Debit and burn rate x notional (capped at the balance); returns the HYPE taken."""
        if not rate or notional <= 0:
            return ZERO
        due = min(self.to_hype(fee_usd(rate, notional)), self.balance(user))
        if due:
            self._balances[user] = self.balance(user) - due
            self.burned += due
        return due


def prioritized_notional(
    status: dict[str, Any], wire: OrderWire, fills: Iterable[dict[str, Any]]
) -> Decimal:
    """What one order's priority fee is charged on: the filled notional of an IOC (from its
    fills in this action), the resting notional of an ALO; nothing for an error."""
    if "resting" in status:
        return (wire.px or ZERO) * (wire.sz or ZERO)
    filled = status.get("filled")
    if not isinstance(filled, dict):
        return ZERO
    oid = filled.get("oid")
    return sum(
        (
            Decimal(f["px"]) * Decimal(f["sz"])
            for f in fills
            if f.get("oid") == oid and f["crossed"]
        ),
        ZERO,
    )


__all__ = [
    "HYPE_USD",
    "INELIGIBLE",
    "INSUFFICIENT",
    "StakingLedger",
    "check_eligible",
    "fee_usd",
    "parse_grouping",
    "prioritized_notional",
]
