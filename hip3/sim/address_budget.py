"""The address-based request budget of /exchange actions: 10,000 + 1 per USDC traded.

Rules (the exchange's rate-limit docs,
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits-and-user-limits,
and public probes of the live answers):

- the cap is 10,000 requests plus 1 per USDC of the address's cumulative traded volume
  (growth-mode HIP-3 volume counts 10 %); cancels may go further, to
  min(cap + 100,000, 2 x cap);
- an action costs one request per order, cancel or modify in its batch (failed entries too)
  and 1 otherwise; an action refused as a whole costs nothing, except one refused for a
  stale `expiresAfter`, which costs 5;
- once the used requests reach the cap, the address may still send one action every 10 s
  after the last one let through; the rest are refused with the live text and cost nothing.

Chosen where nothing is published: the budget is the account's (an agent spends its user's),
approveAgent is not counted, and a refusal by the budget does not spend the nonce.
`reserveRequestWeight` is not simulated, so nothing is ever reserved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hip3.sim import rules, texts
from hip3.sim.accounts import Account
from hip3.sim.wire import ActionError

BASE_REQUESTS = 10_000
CANCEL_HEADROOM = 100_000
EXHAUSTED_INTERVAL_MS = 10_000
EXPIRED_COST = 5
GROWTH_MODE_SHARE = Decimal("0.1")
CANCEL_TYPES = frozenset({"cancel", "cancelByCloid"})


class AddressBudget:
    def __init__(
        self,
        *,
        base: int = BASE_REQUESTS,
        exhausted_interval_ms: int = EXHAUSTED_INTERVAL_MS,
        enabled: bool = True,
    ) -> None:
        self.base = base
        self.exhausted_interval_ms = exhausted_interval_ms
        self.enabled = enabled

    def cap(self, account: Account) -> int:
        return self.base + int(account.budget_volume)

    def admit(self, account: Account, kind: str, now: int) -> None:
        """Refuse the action if the budget is spent and the 10 s slot is not free."""
        if not self.enabled:
            return
        cap = self.cap(account)
        limit = min(cap + CANCEL_HEADROOM, 2 * cap) if kind in CANCEL_TYPES else cap
        last = account.last_admitted_ms
        if account.requests_used < limit or (
            last is not None and now - last >= self.exhausted_interval_ms
        ):
            account.last_admitted_ms = now
            return
        raise ActionError(
            texts.ADDRESS_BUDGET.format(
                used=account.requests_used,
                cap=limit,
                volume=rules.wire(rules.usdc(account.budget_volume)),
            )
        )

    def charge(self, account: Account, requests: int) -> None:
        account.requests_used += requests

    @staticmethod
    def add_volume(account: Account, notional: Decimal, growth_mode: bool) -> None:
        account.budget_volume += notional * GROWTH_MODE_SHARE if growth_mode else notional


_BATCH_KEYS = {
    "order": "orders",
    "cancel": "cancels",
    "cancelByCloid": "cancels",
    "batchModify": "modifies",
}


def requests_of(action: dict[str, Any]) -> int:
    """How many requests an (already validated) action costs: its batch length, or 1."""
    key = _BATCH_KEYS.get(action["type"])
    if key is None:
        return 1
    return len(action[key])
