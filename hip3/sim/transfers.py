"""Moving collateral: `usdClassTransfer` and `sendAsset`, the user-signed actions that fund a dex.

On the exchange a new account holds USDC on the validator perp dex only. Each HIP-3 dex is
margined on its own, in its own collateral token, and is funded by transfers
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/exchange-endpoint):

- `usdClassTransfer {amount, toPerp}` moves USDC between spot and the validator perp dex only;
- `sendAsset {destination, sourceDex, destinationDex, token, amount, fromSubAccount}` moves a
  token between perp dexes ("" is the validator dex), spot ("spot") and users. Only a dex's
  collateral token can enter or leave that dex.

Both are signed as the official SDKs sign them: EIP-712 in the HyperliquidSignTransaction
domain over the fields of `HyperliquidTransaction:UsdClassTransfer` / `:SendAsset`
(`hip3.sim.signatures`). What leaves a perp dex is limited to what its margin leaves free
(the dex's `withdrawable`). The signer, network and nonce are checked by
`hip3.sim.user_signed`. Sub-accounts are not simulated: a non-empty `fromSubAccount` or a
`subaccount:` amount is refused.

Unified and portfolio-margin accounts keep one balance per token on spot (`hip3.sim.margin`);
moving between their own spot and perp balances means nothing there, so the simulator refuses
it with the text a live capture shows for actions a unified account cannot take (a design
choice: the live rule is not documented). Sending to another user still works.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from hip3.sim import rules, texts
from hip3.sim.accounts import STANDARD, ZERO, Account
from hip3.sim.collateral import USDC, Token, parse_token
from hip3.sim.signatures import SEND_ASSET_TYPES, USD_CLASS_TRANSFER_TYPES
from hip3.sim.universe import Universe
from hip3.sim.user_signed import UserSignedEnvelope
from hip3.sim.wire import ActionError, address, require

SPOT = "spot"
_MAX_DECIMALS = 8


class Transfers:
    def __init__(
        self,
        universe: Universe,
        accounts: dict[str, Account],
        *,
        withdrawable: Callable[[Account, str], Decimal],
        envelope: UserSignedEnvelope,
        on_ledger: Callable[[Account, dict[str, Any]], None] | None = None,
    ) -> None:
        self._universe = universe
        self._on_ledger = on_ledger or _ignore  # records each move as a ledger update
        self._accounts = accounts
        self._withdrawable = withdrawable  # free margin of (account, perp dex)
        self._envelope = envelope

    # ----------------------------------------------------------------- signed actions

    def usd_class_transfer(
        self, action: dict[str, Any], nonce: int, signature: Any, now: int
    ) -> dict[str, Any]:
        amount_text = require(action, "amount", str, "action")
        to_perp = require(action, "toPerp", bool, "action")
        account = self._envelope.signer(action, nonce, signature, USD_CLASS_TRANSFER_TYPES, now)
        if " subaccount:" in amount_text:
            sub = amount_text.partition(" subaccount:")[2]
            raise ActionError(texts.SUB_ACCOUNT_UNKNOWN.format(sub=sub))
        amount = _amount(amount_text)
        if account.abstraction != STANDARD:
            raise ActionError(texts.UNIFIED_ACCOUNT_ACTIVE)
        source, destination = (SPOT, "") if to_perp else ("", SPOT)
        self.move(account, account, source, destination, USDC, amount)
        delta = {"type": "accountClassTransfer", "usdc": rules.wire(amount), "toPerp": to_perp}
        self._on_ledger(account, delta)
        return _ok()

    def send_asset(
        self, action: dict[str, Any], nonce: int, signature: Any, now: int
    ) -> dict[str, Any]:
        destination_user = address(
            require(action, "destination", str, "action"), "action.destination"
        )
        source = require(action, "sourceDex", str, "action")
        destination = require(action, "destinationDex", str, "action")
        token_text = require(action, "token", str, "action")
        amount_text = require(action, "amount", str, "action")
        sub = require(action, "fromSubAccount", str, "action")
        account = self._envelope.signer(action, nonce, signature, SEND_ASSET_TYPES, now)
        if sub:
            raise ActionError(texts.SUB_ACCOUNT_UNKNOWN.format(sub=sub))
        for place in (source, destination):
            if place != SPOT and place not in self._universe.by_dex_name:
                raise ActionError(texts.INVALID_PERP_DEX)
        token = parse_token(token_text)
        if token is None:
            raise ActionError(texts.UNKNOWN_TOKEN.format(token=token_text))
        amount = _amount(amount_text)
        receiver = self._receiver(destination_user)
        if receiver is account and account.abstraction != STANDARD:
            raise ActionError(texts.UNIFIED_ACCOUNT_ACTIVE)
        if receiver is account and source == destination:
            raise ActionError(texts.SAME_PLACE)
        self.move(account, receiver, source, destination, token, amount)
        delta = {
            "type": "send",
            "user": account.address,
            "destination": receiver.address,
            "sourceDex": source,
            "destinationDex": destination,
            "token": token.name,
            "amount": rules.wire(amount),
            "fee": "0.0",
        }
        self._on_ledger(account, delta)
        if receiver is not account:
            self._on_ledger(receiver, dict(delta))
        return _ok()

    # ----------------------------------------------------------------- the move itself

    def move(
        self,
        sender: Account,
        receiver: Account,
        source: str,
        destination: str,
        token: Token,
        amount: Decimal,
    ) -> None:
        """Take `amount` of `token` from the sender's `source` and credit the receiver's
        `destination` ("spot" or a perp dex name); refuse without changing anything."""
        for place in (source, destination):
            if place != SPOT:
                collateral = self._universe.dex(place).collateral
                if collateral != token:
                    raise ActionError(
                        texts.NOT_COLLATERAL.format(
                            token=token.name, dex=place or '""', collateral=collateral.name
                        )
                    )
        available = self.available(sender, source, token)
        if amount > available:
            raise ActionError(
                texts.TRANSFER_INSUFFICIENT.format(
                    available=rules.wire(max(available, ZERO)),
                    token=token.name,
                    place=_place_name(source),
                )
            )
        self._credit(sender, source, token, -amount)
        self._credit(receiver, destination, token, amount)

    def available(self, account: Account, place: str, token: Token) -> Decimal:
        if account.abstraction != STANDARD or place == SPOT:
            return account.spot.get(token.name, ZERO)
        return self._withdrawable(account, place)

    def deposit(self, user: str, token: Token, amount: Decimal, place: str = "") -> Account:
        """Credit collateral arriving from outside (a bridge deposit): USDC lands on the
        validator perp dex, other tokens on spot. Creates the account."""
        account = self._receiver(user)
        self._credit(account, place, token, amount)
        if amount:
            self._on_ledger(account, {"type": "deposit", "usdc": rules.wire(amount)})
        return account

    def _credit(self, account: Account, place: str, token: Token, amount: Decimal) -> None:
        if place == SPOT or account.abstraction != STANDARD:
            account.spot[token.name] = account.spot.get(token.name, ZERO) + amount
        else:
            account.balances[place] = account.balance(place) + amount

    def _receiver(self, user: str) -> Account:
        account = self._accounts.get(user)
        if account is None:
            account = self._accounts[user] = Account(address=user)
        return account


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ActionError(texts.TRANSFER_AMOUNT.format(amount=text)) from None
    if not amount.is_finite() or amount <= 0 or _decimals(amount) > _MAX_DECIMALS:
        raise ActionError(texts.TRANSFER_AMOUNT.format(amount=text))
    return amount


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _place_name(place: str) -> str:
    if place == SPOT:
        return "spot"
    return f"perp dex {place}" if place else "the first perp dex"


def _ignore(account: Account, delta: dict[str, Any]) -> None:
    return None


def _ok() -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "default"}}
