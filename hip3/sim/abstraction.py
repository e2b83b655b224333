"""Account abstraction modes: `userSetAbstraction` and what a switch does to balances.

Modes (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/account-abstraction-modes):
"disabled" is standard (a balance per perp dex in its collateral, and spot balances);
"unifiedAccount" and "portfolioMargin" keep one balance per token, on spot, shared by the
dexes that use it as collateral (`hip3.sim.margin`). Entering a unified mode moves each perp
dex's balance onto spot in its token; leaving one keeps them on spot, from where a standard
account sends them on with transfers. The live rules for a switch with open positions are not
documented: the simulator refuses it (its own text).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hip3.sim import texts
from hip3.sim.accounts import ABSTRACTIONS, STANDARD, ZERO, Account
from hip3.sim.signatures import USER_SET_ABSTRACTION_TYPES
from hip3.sim.universe import Universe
from hip3.sim.user_signed import UserSignedEnvelope
from hip3.sim.wire import ActionError, address, require


class AbstractionModes:
    def __init__(self, universe: Universe, envelope: UserSignedEnvelope) -> None:
        self._universe = universe
        self._envelope = envelope

    def user_set_abstraction(
        self, action: dict[str, Any], nonce: int, signature: Any, now: int
    ) -> dict[str, Any]:
        user = address(require(action, "user", str, "action"), "action.user")
        mode = require(action, "abstraction", str, "action")
        account = self._envelope.signer(action, nonce, signature, USER_SET_ABSTRACTION_TYPES, now)
        if user != account.address:
            raise ActionError(texts.ABSTRACTION_OTHER_USER.format(user=user))
        self.switch(account, mode)
        return {"status": "ok", "response": {"type": "default"}}

    def switch(self, account: Account, mode: str) -> None:
        if mode not in ABSTRACTIONS:
            raise ActionError(texts.ABSTRACTION_UNKNOWN.format(abstraction=mode))
        if mode == account.abstraction:
            return
        if account.positions or account.open_orders:
            raise ActionError(texts.ABSTRACTION_OPEN_POSITIONS)
        if mode != STANDARD and account.abstraction == STANDARD:
            for dex in self._universe.dexes:
                moved = account.balances.pop(dex.name, None)
                if moved:
                    token = dex.collateral.name
                    account.spot[token] = account.spot.get(token, ZERO) + Decimal(moved)
        account.abstraction = mode
