"""Signers: users and their API wallets (agents), and the nonce set each signer uses.

The one home of the agent registry `{agent -> (master, name, valid_until)}`: approveAgent
writes it, every L1 action resolves its recovered signer through it, and info answers about
agents (userRole, extraAgents) read it through `agents`.
"""

from __future__ import annotations

from typing import Any

from hip3.sim import texts
from hip3.sim.accounts import Account
from hip3.sim.nonces import NonceSet
from hip3.sim.signatures import SignatureError, recover_approve_agent
from hip3.sim.wire import ActionError, address, malformed, require, require_int

MAX_NAMED_AGENTS = 3
DAY_MS = 24 * 3600 * 1000
MAX_AGENT_VALIDITY_MS = 180 * DAY_MS


def unknown_signer(signer: str) -> ActionError:
    return ActionError(f"L1 error: User or API Wallet {signer} does not exist.")


class AgentRegistry:
    def __init__(self, accounts: dict[str, Account], *, network: str) -> None:
        self._accounts = accounts
        self._network = network  # "Mainnet" or "Testnet": what hyperliquidChain must say
        self.agents: dict[str, tuple[str, str, int | None]] = {}  # agent -> (user, name, until)
        self._nonces: dict[str, NonceSet] = {}

    def is_agent(self, address: str) -> bool:
        return address in self.agents

    def resolve(self, signer: str, now: int) -> tuple[Account, NonceSet]:
        """The account an L1 signer acts for and the nonce set it draws from."""
        account = self._accounts.get(signer)
        if account is not None and not account.internal:
            return account, account.nonces
        agent = self.agents.get(signer)
        if agent is not None and (agent[2] is None or agent[2] > now):
            return self._accounts[agent[0]], self._nonces[signer]
        raise unknown_signer(signer)

    def role(self, address: str, now: int) -> dict[str, Any]:
        """The info `userRole` answer. An expired agent is treated as pruned: `missing`, the
        same as the unknown signer its actions now recover to."""
        account = self._accounts.get(address)
        if account is not None and not account.internal:
            return {"role": "user"}
        agent = self.agents.get(address)
        if agent is not None and (agent[2] is None or agent[2] > now):
            return {"role": "agent", "data": {"user": agent[0]}}
        return {"role": "missing"}

    def extra_agents(self, master: str, now: int) -> list[dict[str, Any]]:
        """The info `extraAgents` answer: the master's unexpired agents, named or not."""
        return [
            {"name": name, "address": agent, "validUntil": until}
            for agent, (user, name, until) in self.agents.items()
            if user == master and (until is None or until > now)
        ]

    def approve(
        self,
        action: dict[str, Any],
        nonce: int,
        signature: dict[str, Any],
        expires_after: int | None,
        vault: str | None,
        now: int,
    ) -> dict[str, Any]:
        """The user-signed approveAgent action."""
        chain_id = require(action, "signatureChainId", str, "action")
        try:
            int(chain_id, 16)
        except ValueError:
            raise malformed("action.signatureChainId", "must be a hex chain id") from None
        chain = require(action, "hyperliquidChain", str, "action")
        agent = address(require(action, "agentAddress", str, "action"), "action.agentAddress")
        name = action.get("agentName", "")
        if not isinstance(name, str):
            raise malformed("action.agentName", "must be a string")
        action_nonce = require_int(action, "nonce", "action")
        if expires_after is not None:
            raise ActionError(texts.EXPIRES_AFTER_USER_SIGNED)
        if vault is not None:
            raise ActionError(texts.VAULT_ON_APPROVE_AGENT)
        try:
            signer = recover_approve_agent(action, signature)
        except SignatureError as error:
            raise ActionError(str(error)) from None
        account = self._accounts.get(signer)
        if account is None or account.internal:
            raise unknown_signer(signer)
        if chain != self._network:
            raise ActionError(
                f"Invalid hyperliquidChain {chain!r}: this network is {self._network!r}."
            )
        if action_nonce != nonce:
            raise ActionError(f"Action nonce {action_nonce} does not match request nonce {nonce}.")
        problem = account.nonces.check(nonce, now)
        if problem:
            raise ActionError(problem)
        if agent in self._accounts:
            raise ActionError(f"Agent address {agent} is already used by a user.")
        existing = self.agents.get(agent)
        if existing is not None and existing[0] != signer:
            raise ActionError(f"Agent address {agent} is already approved by another user.")
        base_name, valid_until = _split_agent_name(name, now)
        same_slot = [a for a, (u, n, _) in self.agents.items() if u == signer and n == base_name]
        named = {n for a, (u, n, _) in self.agents.items() if u == signer and n}
        if base_name and base_name not in named and len(named) >= MAX_NAMED_AGENTS:
            raise ActionError(f"Too many named agents: at most {MAX_NAMED_AGENTS} per account.")
        account.nonces.use(nonce)
        for old in same_slot:  # re-registering a slot deregisters the previous agent
            del self.agents[old]
            self._nonces.pop(old, None)
        self.agents[agent] = (signer, base_name, valid_until)
        self._nonces[agent] = NonceSet()
        return {"status": "ok", "response": {"type": "default"}}


def _split_agent_name(name: str, now: int) -> tuple[str, int | None]:
    base, marker, until = name.partition(" valid_until ")
    if not marker:
        return name, None
    try:
        valid_until = int(until)
    except ValueError:
        raise malformed("action.agentName", "has a valid_until that is not an integer") from None
    if valid_until <= now or valid_until > now + MAX_AGENT_VALIDITY_MS:
        raise ActionError("Agent valid_until must be in the future and at most 180 days ahead.")
    return base, valid_until
