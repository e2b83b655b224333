"""The Context a strategy holds keeps its documented members, and the runtime's host implements
every one of them with the same parameters (a view or an action the API promises and the host
lacks would only show when a strategy called it, as a HardStop)."""

from __future__ import annotations

import inspect

from hip3.api import Action, Context
from hip3.runtime.strategy_host import StrategyHost

PROMISED = {
    # views
    "coins", "market", "is_stale", "position", "positions", "open_orders", "taker_fee_bps",
    "maker_fee_bps", "fees_paid", "sz_decimals", "is_trading", "now_ms", "now_ns", "wall_ms",
    # timers
    "set_timer", "cancel_timer",
    # actions
    "submit", "cancel", "modify", "can_flatten", "flatten", "enter",
}  # fmt: skip


def members(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")}


def test_the_context_keeps_its_members_and_the_host_implements_them():
    assert members(Context) == PROMISED
    for name in PROMISED:
        promised, host = getattr(Context, name), getattr(StrategyHost, name)
        if isinstance(promised, property):
            assert isinstance(host, property), name
            continue
        want = list(inspect.signature(promised).parameters)
        got = list(inspect.signature(host).parameters)
        assert got == want, (name, got, want)


def test_submit_takes_a_priority_rate_and_an_action_says_why_it_was_refused():
    submit = inspect.signature(Context.submit).parameters
    assert submit["priority_bps"].default is None
    assert submit["priority_bps"].kind is inspect.Parameter.KEYWORD_ONLY
    refused = Action(None, "priority_above_cap", "9 bps is above the cap of 8 bps")
    assert not refused.ok and refused.detail.endswith("8 bps")
    assert Action("0x01").ok and Action("0x01").detail is None
