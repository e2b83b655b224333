"""Before the first order of every epoch: may this key trade this account at all?

An order is signed by the key (the signer S) and lands on whichever account the exchange maps S
to: S's own account, or the account S is an approved agent of. If S is neither the configured
trading account M nor an approved, unexpired agent of M, every order lands somewhere the bot
does not watch (it subscribes M's streams) and the run reports nothing while money moves. So
each epoch asks the exchange, before READY-TRADING can hold:

- `userRole` of S: `{"role":"user"}` when S is M itself (or a sub-account or vault), and
  `{"role":"agent","data":{"user":M}}` when S is M's agent;
- `extraAgents` of M (when S is not M): S's entry, whose `validUntil` must be null or later
  than now plus a margin (an expired agent is pruned with its nonce state);
- `userAbstraction` of M: the account mode. Only the standard mode (`"disabled"`) keeps a
  separate balance per perp dex, read from that dex's `clearinghouseState`; in the unified
  and portfolio-margin modes balances live in the spot clearinghouse and per-dex states "are
  not meaningful", which the bot's per-dex margin and position reading relies on, and those
  modes cap an account at 50k actions a day. Any other answer is refused with one line naming
  the mode (docs/exchange/changes-2026.md#account-modes);
- `clearinghouseState` of M on every traded dex: the account must hold margin there (a HIP-3
  dex keeps its own balance).

Public sources: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint
(userRole, clearinghouseState, userAbstraction);
https://hyperliquid.gitbook.io/hyperliquid-docs/trading/account-abstraction-modes (what each
mode keeps where); `extra_agents` in the official Python SDK's info.py; agent
expiry by the ` valid_until <ms>` name suffix of approveAgent (exchange-endpoint docs).
Addresses are compared lowercased.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger(__name__)

ROLE = "account:role"
AGENTS = "account:agents"
MODE = "account:mode"
MARGIN = "account:margin:"  # + dex
# The account mode the bot trades: standard, with a balance and cross margin per perp dex.
STANDARD_MODE = "disabled"
# Own-account roles that may trade: the account itself, a sub-account or a vault it leads.
_OWN_ROLES = frozenset({"user", "subAccount", "vault"})
# An approval must outlast the check by this much: one about to expire would fail mid-run.
AGENT_EXPIRY_MARGIN_MS = 60_000
# An agent expiring within a day is logged as a warning at every check.
_WARN_BEFORE_EXPIRY_MS = 24 * 3600 * 1000


def requests(*, signer: str, user: str, dexes: list[str]) -> dict[str, dict]:
    """The info requests of one check, by key (the keys start with `account:`)."""
    out: dict[str, dict] = {ROLE: {"type": "userRole", "user": signer}}
    if signer != user:
        out[AGENTS] = {"type": "extraAgents", "user": user}
    out[MODE] = {"type": "userAbstraction", "user": user}
    for dex in dexes:
        out[MARGIN + dex] = {"type": "clearinghouseState", "user": user, "dex": dex}
    return out


def judge(
    *,
    signer: str,
    user: str,
    answers: dict[str, Any],
    now_wall_ms: int,
    expiry_margin_ms: int,
) -> str | None:
    """None when the signer may trade the account, else one line naming both addresses and
    what is wrong. `answers` holds the decoded answer of every request of `requests()`."""
    who = f"signer {signer}, account {user}"
    role = answers.get(ROLE)
    role_name = role.get("role") if isinstance(role, dict) else None
    if signer == user:
        if role_name == "missing":
            return f"the account does not exist on the exchange ({who})"
        if role_name == "agent":
            master = _address((role.get("data") or {}).get("user"))
            return (
                f"the signing key is an API wallet of {master}, not a trading account; set "
                f"account.user to the account it trades for ({who})"
            )
        if role_name not in _OWN_ROLES:
            return f"unexpected userRole answer {str(role)[:120]} for the signer ({who})"
    else:
        problem = _agent_problem(
            role, answers.get(AGENTS), signer, user, now_wall_ms, expiry_margin_ms
        )
        if problem:
            return f"{problem} ({who})"
    problem = mode_problem(answers.get(MODE))
    if problem:
        return f"{problem} ({who})"
    for key, state in sorted(answers.items()):
        if key.startswith(MARGIN):
            dex = key[len(MARGIN) :]
            if _account_value(state) <= 0:
                return (
                    f"the account has no margin on dex {dex or '(first perp dex)'!s}: fund it "
                    "there before trading (a HIP-3 dex keeps its own balance; an account in "
                    f"unified or portfolio-margin mode shows none per dex) ({who})"
                )
    return None


def mode_problem(mode: Any) -> str | None:
    """None for the standard account mode, else one line naming the mode the account is in."""
    if mode == STANDARD_MODE:
        return None
    return (
        f"the account is in account mode {str(mode)[:40]!r} (userAbstraction); the bot trades "
        f"only the standard mode {STANDARD_MODE!r}, where each perp dex keeps its own balance "
        "and margin: switch the account back (userSetAbstraction) or trade another account"
    )


def _agent_problem(
    role: Any,
    agents: Any,
    signer: str,
    user: str,
    now_wall_ms: int,
    margin_ms: int,
) -> str | None:
    entry = _agent_entry(agents, signer)
    if entry is not None:
        until = entry.get("validUntil")
        if isinstance(until, int) and not isinstance(until, bool) and until <= now_wall_ms:
            return f"the API wallet's approval expired at {until} (unix ms); approve it again"
    role_name = role.get("role") if isinstance(role, dict) else None
    if role_name != "agent":
        if role_name == "user":
            return (
                "the signing key is a trading account of its own, not an agent of the account: "
                "orders would trade the signer's account"
            )
        return f"the signing key is not an approved agent of the account (userRole: {role_name!r})"
    master = _address((role.get("data") or {}).get("user"))
    if master != user:
        return f"the signing key is an agent of {master}, not of the account"
    if entry is None:
        # The exchange's docs do not say whether the single unnamed agent is listed; the role
        # answer alone proves the approval, but its expiry cannot be checked.
        log.warning(
            "agent %s of %s is not listed by extraAgents: its expiry cannot be checked",
            signer,
            user,
        )
        return None
    until = entry.get("validUntil")
    if until is None:
        return None
    if not isinstance(until, int) or isinstance(until, bool):
        return f"unexpected validUntil {until!r} for the API wallet"
    if until <= now_wall_ms + margin_ms:
        return (
            f"the API wallet's approval expires at {until} (unix ms), within the "
            f"{margin_ms // 1000} s margin; approve it again"
        )
    if until <= now_wall_ms + _WARN_BEFORE_EXPIRY_MS:
        log.warning("API wallet %s expires in %.1f h", signer, (until - now_wall_ms) / 3.6e6)
    return None


def _agent_entry(agents: Any, signer: str) -> dict | None:
    if not isinstance(agents, list):
        return None
    for entry in agents:
        if isinstance(entry, dict) and _address(entry.get("address")) == signer:
            return entry
    return None


def _address(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _account_value(state: Any) -> Decimal:
    summary = state.get("marginSummary") if isinstance(state, dict) else None
    value = summary.get("accountValue") if isinstance(summary, dict) else None
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


@dataclass
class AccountCheck:
    """The check's state across epochs: the answers of the current epoch's check, and whether
    any check has passed yet (until then no action may be sent at all)."""

    signer: str
    user: str
    dexes: list[str]
    expiry_margin_ms: int = AGENT_EXPIRY_MARGIN_MS
    passed_once: bool = False
    epoch: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    expected: frozenset[str] = frozenset()

    def begin(self, epoch: int) -> dict[str, dict]:
        """A new epoch's requests; earlier answers no longer count."""
        reqs = requests(signer=self.signer, user=self.user, dexes=self.dexes)
        self.epoch, self.answers, self.expected = epoch, {}, frozenset(reqs)
        return reqs

    def answer(self, epoch: int, key: str, data: Any) -> bool:
        """Record one answer; True when it was the last one this epoch's check waited for."""
        if epoch != self.epoch or key not in self.expected or key in self.answers:
            return False
        self.answers[key] = data
        return set(self.answers) == self.expected

    def mode_refused(self) -> bool:
        """This epoch's answers refuse the account's mode (the rest may be fine)."""
        return MODE in self.answers and mode_problem(self.answers[MODE]) is not None

    def verdict(self, now_wall_ms: int) -> str | None:
        """None when the signer may trade the account, else the problem (one line)."""
        problem = judge(
            signer=self.signer,
            user=self.user,
            answers=self.answers,
            now_wall_ms=now_wall_ms,
            expiry_margin_ms=self.expiry_margin_ms,
        )
        if problem is None:
            self.passed_once = True
        return problem
