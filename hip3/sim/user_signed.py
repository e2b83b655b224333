"""The envelope of user-signed actions (transfers, userSetAbstraction): who signed, on which
network, with which nonce.

User-signed actions are EIP-712 messages in the HyperliquidSignTransaction domain whose
`nonce` must equal the request's (https://hyperliquid.gitbook.io/hyperliquid-docs/
for-developers/api/signing). A signature over other bytes recovers a stranger, who is told to
deposit first, as live.
"""

from __future__ import annotations

from typing import Any

from hip3.sim import texts
from hip3.sim.accounts import Account
from hip3.sim.signatures import SignatureError, recover_user_signed
from hip3.sim.wire import ActionError, malformed, require, require_int


class UserSignedEnvelope:
    def __init__(self, accounts: dict[str, Account], *, network: str) -> None:
        self._accounts = accounts
        self._network = network  # "Mainnet" or "Testnet": what hyperliquidChain must say

    def signer(
        self,
        action: dict[str, Any],
        nonce: int,
        signature: Any,
        types: dict[str, Any],
        now: int,
    ) -> Account:
        """The account that signed `action`, its nonce checked and then used."""
        chain_id = require(action, "signatureChainId", str, "action")
        try:
            int(chain_id, 16)
        except ValueError:
            raise malformed("action.signatureChainId", "must be a hex chain id") from None
        chain = require(action, "hyperliquidChain", str, "action")
        action_nonce = require_int(action, "nonce", "action")
        try:
            signer = recover_user_signed(action, types, signature)
        except SignatureError as error:
            raise ActionError(str(error)) from None
        account = self._accounts.get(signer)
        if account is None or account.internal:
            raise ActionError(texts.MUST_DEPOSIT.format(user=signer))
        if chain != self._network:
            raise ActionError(texts.WRONG_CHAIN)
        if action_nonce != nonce:
            raise ActionError(texts.NONCE_MISMATCH)
        problem = account.nonces.check(nonce, now)
        if problem:
            raise ActionError(problem)
        account.nonces.use(nonce)
        return account
