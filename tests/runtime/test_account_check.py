"""The account check's judgement of the exchange's answers (pure), its per-epoch bookkeeping,
and the wire refusing every action until a check has passed."""

from __future__ import annotations

import pytest

from hip3.runtime.account_check import (
    AGENTS,
    MARGIN,
    MODE,
    ROLE,
    AccountCheck,
    judge,
    requests,
)
from hip3.runtime.post_owners import CancelPost, InfoQuery
from hip3.runtime.wire import Wire

M = "0x" + "a" * 40  # the trading account
S = "0x" + "b" * 40  # an API wallet
X = "0x" + "c" * 40  # someone else
NOW = 1_800_000_000_000
FUNDED = {"marginSummary": {"accountValue": "1000.0"}}
EMPTY = {"marginSummary": {"accountValue": "0.0"}}


def answers(role, agents=None, margin=FUNDED, mode="disabled"):
    out = {ROLE: role, MODE: mode, MARGIN + "xyz": margin}
    if agents is not None:
        out[AGENTS] = agents
    return out


def verdict(signer, role, agents=None, margin=FUNDED):
    return judge(
        signer=signer,
        user=M,
        answers=answers(role, agents, margin),
        now_wall_ms=NOW,
        expiry_margin_ms=60_000,
    )


def test_requests_ask_the_signer_role_the_agents_and_margin_per_dex():
    assert requests(signer=M, user=M, dexes=["", "xyz"]) == {
        ROLE: {"type": "userRole", "user": M},
        MODE: {"type": "userAbstraction", "user": M},
        MARGIN: {"type": "clearinghouseState", "user": M, "dex": ""},
        MARGIN + "xyz": {"type": "clearinghouseState", "user": M, "dex": "xyz"},
    }
    assert requests(signer=S, user=M, dexes=["xyz"])[AGENTS] == {"type": "extraAgents", "user": M}


@pytest.mark.parametrize("role", ["user", "subAccount", "vault"])
def test_the_account_itself_may_trade(role):
    assert verdict(M, {"role": role}) is None


def test_approved_agents_may_trade():
    agent = {"role": "agent", "data": {"user": M.upper().replace("0X", "0x")}}
    assert verdict(S, agent, [{"name": "bot", "address": S, "validUntil": None}]) is None
    assert verdict(S, agent, [{"name": "bot", "address": S, "validUntil": NOW + 3_600_000}]) is None
    # not listed (the unnamed agent may not be): the role answer proves the approval
    assert verdict(S, agent, []) is None


@pytest.mark.parametrize(
    ("signer", "role", "agents", "margin", "words"),
    [
        (M, {"role": "missing"}, None, FUNDED, "does not exist"),
        (M, {"role": "agent", "data": {"user": X}}, None, FUNDED, f"API wallet of {X}"),
        (M, {"role": "user"}, None, EMPTY, "no margin on dex xyz"),
        (M, {"role": "user"}, None, {"weird": 1}, "no margin on dex xyz"),
        (S, {"role": "user"}, [], FUNDED, "a trading account of its own"),
        (S, {"role": "missing"}, [], FUNDED, "not an approved agent"),
        (S, {"role": "agent", "data": {"user": X}}, [], FUNDED, f"an agent of {X}"),
        (
            S,
            {"role": "missing"},
            [{"name": "bot", "address": S, "validUntil": NOW - 1}],
            FUNDED,
            f"expired at {NOW - 1}",
        ),
        (
            S,
            {"role": "agent", "data": {"user": M}},
            [{"name": "bot", "address": S, "validUntil": NOW + 30_000}],
            FUNDED,
            f"expires at {NOW + 30_000}",
        ),
        (M, "garbage", None, FUNDED, "unexpected userRole answer"),
    ],
)
def test_refusals_name_both_addresses(signer, role, agents, margin, words):
    problem = verdict(signer, role, agents, margin)
    assert problem is not None and words in problem, problem
    assert f"signer {signer}" in problem and f"account {M}" in problem


@pytest.mark.parametrize("mode", ["unifiedAccount", "portfolioMargin", "dexAbstraction", "default"])
def test_modes_other_than_standard_are_refused_naming_the_mode(mode):
    problem = judge(
        signer=M,
        user=M,
        answers=answers({"role": "user"}, mode=mode),
        now_wall_ms=NOW,
        expiry_margin_ms=60_000,
    )
    assert problem is not None and f"account mode {mode!r}" in problem and "\n" not in problem
    assert f"account {M}" in problem


def test_a_missing_mode_answer_is_refused():
    ans = answers({"role": "user"})
    del ans[MODE]
    problem = judge(signer=M, user=M, answers=ans, now_wall_ms=NOW, expiry_margin_ms=60_000)
    assert problem is not None and "account mode" in problem


def test_each_epoch_starts_over_and_stale_answers_do_not_count():
    check = AccountCheck(signer=S, user=M, dexes=["xyz"])
    keys = check.begin(1)
    agent = {"role": "agent", "data": {"user": M}}
    assert not check.answer(1, ROLE, agent)
    assert not check.answer(1, AGENTS, [])
    assert not check.answer(1, MODE, "disabled")
    assert check.answer(1, MARGIN + "xyz", FUNDED)
    assert check.verdict(NOW) is None and check.passed_once
    assert set(check.begin(2)) == set(keys)
    assert not check.answer(1, ROLE, agent)  # epoch 1 is over
    assert not check.answer(2, ROLE, {"role": "missing"})
    assert not check.answer(2, ROLE, agent)  # a duplicate answer does not overwrite
    assert not check.answer(2, AGENTS, [])
    assert not check.answer(2, MODE, "disabled")
    assert check.answer(2, MARGIN + "xyz", FUNDED)
    assert "not an approved agent" in check.verdict(NOW)


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, data, post_id=None) -> None:
        self.sent.append(data)


class Signer:
    def sign_l1(self, action, nonce, *, mainnet):
        return {"r": "0x1", "s": "0x2", "v": 27}


class Nonces:
    def next(self) -> int:
        return NOW


def test_wire_sends_no_action_until_the_signer_is_verified():
    transport = RecordingTransport()
    wire = Wire(
        transport,
        signer=Signer(),
        nonces=Nonces(),
        mainnet=False,
        messages_per_minute=2000,
        max_inflight_posts=100,
        post_timeout_ms=5000,
        now_ms=lambda: 0,
    )
    wire.signer_verified = False
    cancel = CancelPost(lambda post: None)
    assert wire.post_action({"type": "cancel", "cancels": []}, kind="cancel", owner=cancel) is None
    assert transport.sent == [] and wire.refused == {"cancel:unverified": 1}
    role = InfoQuery(
        "account:role",
        "userRole",
        0,
        on_answer=lambda data, now: None,
        on_failure=None,
        report_bad=lambda query, bad: None,
    )
    asked = wire.post_info({"type": "userRole", "user": S}, kind="info:account:role", owner=role)
    assert asked is not None
    wire.signer_verified = True
    sent = wire.post_action({"type": "cancel", "cancels": []}, kind="cancel", owner=cancel)
    assert sent is not None
    assert wire.actions_sent == 1 and len(transport.sent) == 2
