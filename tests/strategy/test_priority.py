"""Priority fees in the edge model: the rate rule with worked numbers, the detector's signals,
and the `[priority]` configuration.

Costs here: taker fee 4.5 + slippage 2 + min edge 5 = 11.5 bps. Oracle 100: one bp is 0.01.
Rates on the wire are in 10^-8 of notional: 1 bp = 10000, 8 bps = 80000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.config import ConfigError, load_config
from hip3.strategy.detector import Detector, DetectorParams
from hip3.strategy.priority import (
    PriorityPolicy,
    bps_of_rate,
    fee_usd,
    grouping,
    rate_of_bps,
)
from tests.strategy import Feed, spec
from tests.strategy.test_detector import OFF

D = Decimal
COST = D("11.5")


@pytest.mark.parametrize(
    ("bps", "rate"),
    [
        ("8", 80_000),
        ("1", 10_000),
        ("0.0001", 1),
        ("0.00009", 0),  # below one wire unit: no priority at all
        ("4.25", 42_500),
        ("0.123456", 1_234),  # rounded down: never more than the edge covers
        ("10000", 100_000_000),  # 100 %, the exchange's cap
        ("0", 0),
        ("-1", 0),
    ],
)
def test_rate_of_bps_rounds_down_to_wire_units(bps, rate):
    assert rate_of_bps(D(bps)) == rate


def test_wire_units_back_to_bps_and_the_fee_of_a_fill():
    assert bps_of_rate(80_000) == D(8)
    assert bps_of_rate(1_234) == D("0.1234")
    # 2.5 at 101.3 with 8 bps: 253.25 x 0.0008 = 0.2026 USD
    assert fee_usd(80_000, D("101.3"), D("2.5")) == D("0.2026")
    assert grouping(0) == "na" and grouping(80_000) == {"p": 80_000}


def test_off_never_pays():
    assert PriorityPolicy().entry_rate("xyz:AAA", D(100), COST) == 0


@pytest.mark.parametrize(
    ("edge", "rate"),
    [
        ("30", 80_000),  # 18.5 above cost covers 8 bps
        ("19.5", 80_000),  # exactly cost + 8 bps: covered
        ("19.4", 0),  # 7.9 above cost cannot pay 8 bps: sent without priority
        ("11.5", 0),  # nothing above cost
    ],
)
def test_fixed_pays_its_rate_only_when_the_edge_covers_cost_plus_rate(edge, rate):
    policy = PriorityPolicy(mode="fixed", fixed_bps=D(8))
    assert policy.entry_rate("xyz:AAA", D(edge), COST) == rate


@pytest.mark.parametrize(
    ("share", "edge", "rate"),
    [
        ("0.5", "20", 42_500),  # (20 - 11.5) x 0.5 = 4.25 bps
        ("0.5", "12", 2_500),  # 0.5 x 0.5 = 0.25 bps
        ("0.5", "40", 80_000),  # 14.25 capped at 8
        ("1", "13", 15_000),  # the whole 1.5 bps above cost
        ("0.3", "12.3333333", 2_499),  # 0.2499999990 bps, rounded down
        ("0.5", "11", 0),  # below cost
    ],
)
def test_edge_share_pays_a_share_of_the_edge_above_cost_up_to_the_cap(share, edge, rate):
    policy = PriorityPolicy(mode="edge_share", share=D(share))
    assert policy.entry_rate("xyz:AAA", D(edge), COST) == rate


def test_a_market_cap_overrides_the_cap_and_zero_turns_priority_off_there():
    caps = {"xyz:BBB": D(3), "xyz:CCC": D(0)}
    fixed = PriorityPolicy(mode="fixed", fixed_bps=D(8), caps=caps)
    share = PriorityPolicy(mode="edge_share", share=D(1), caps=caps)
    assert fixed.entry_rate("xyz:AAA", D(40), COST) == 80_000
    assert fixed.entry_rate("xyz:BBB", D(40), COST) == 30_000
    assert fixed.entry_rate("xyz:CCC", D(40), COST) == 0
    assert share.entry_rate("xyz:BBB", D(13), COST) == 15_000  # 1.5 bps, under the 3 bps cap
    assert share.entry_rate("xyz:BBB", D(40), COST) == 30_000


def test_exit_rate_is_its_own_setting():
    assert PriorityPolicy().exit_rate == 0
    assert PriorityPolicy(mode="off", exit_bps=D("2.5")).exit_rate == 25_000


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"mode": "turbo"}, "mode = 'turbo'"),
        ({"share": D(0)}, "share = Decimal('0')"),
        ({"share": D("1.5")}, "share = Decimal('1.5')"),
        ({"cap_bps": D(10_001)}, "cap_bps = Decimal('10001')"),
        ({"caps": {"xyz:AAA": D(-1)}}, "caps['xyz:AAA']"),
    ],
)
def test_policy_refuses_impossible_settings(kw, text):
    with pytest.raises(ValueError, match="invalid PriorityPolicy") as err:
        PriorityPolicy(**kw)
    assert text in str(err.value)


# --- the detector ---------------------------------------------------------------------------


def feed(policy: PriorityPolicy | None) -> Feed:
    det = Detector(
        DetectorParams(**OFF), specs={"xyz:AAA": spec("xyz:AAA", sz_decimals=2)}, priority=policy
    )
    return Feed("xyz:AAA", detector=det)


@pytest.mark.parametrize(
    ("policy", "ask", "rate"),
    [
        (None, "99.7", 0),
        (PriorityPolicy(mode="off"), "99.7", 0),
        (PriorityPolicy(mode="fixed", fixed_bps=D(8)), "99.7", 80_000),  # edge 30
        (PriorityPolicy(mode="fixed", fixed_bps=D(8)), "99.85", 0),  # edge 15: only 3.5 above
        (PriorityPolicy(mode="edge_share", share=D("0.5")), "99.8", 42_500),  # edge 20
        (PriorityPolicy(mode="edge_share", share=D("0.5")), "99.6", 80_000),  # edge 40: capped
    ],
)
def test_the_signal_carries_the_rate_its_edge_covers(policy, ask, rate):
    f = feed(policy)
    f.ctx("100")
    sig = f.bbo("99.5", ask)
    assert sig is not None  # priority never decides whether an entry is signalled
    assert sig.priority == rate
    assert f.detector.last_info.priority_bps == bps_of_rate(rate)


def test_an_edge_under_cost_is_not_signalled_with_or_without_priority():
    for policy in (None, PriorityPolicy(mode="edge_share", share=D(1))):
        f = feed(policy)
        f.ctx("100")
        assert f.bbo("99.5", "99.9") is None  # 10 bps < 11.5


# --- configuration --------------------------------------------------------------------------


def test_default_config_is_off_with_an_8_bps_cap():
    cfg = load_config()
    assert cfg.priority.mode == "off" and cfg.priority.cap_bps == 8.0
    assert cfg.priority.exit_bps == 0.0
    policy = PriorityPolicy.from_config(cfg.priority, cfg.markets)
    assert not policy.enabled and policy.exit_rate == 0 and policy.caps == {}


def test_config_builds_the_policy_with_market_caps():
    cfg = load_config(
        overrides={
            "priority": {"mode": "edge_share", "share": 0.25, "cap_bps": 6.0, "exit_bps": 1.5},
            "markets": [{"coin": "xyz:AAA"}, {"coin": "xyz:BBB", "priority_cap_bps": 2.0}],
        }
    )
    policy = PriorityPolicy.from_config(cfg.priority, cfg.markets)
    assert policy == PriorityPolicy(
        mode="edge_share",
        share=D("0.25"),
        cap_bps=D(6),
        exit_bps=D("1.5"),
        caps={"xyz:BBB": D(2)},
    )
    assert policy.exit_rate == 15_000


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"priority.mode": "fast"},
            "priority.mode = 'fast': expected one of 'edge_share', 'fixed', 'off'",
        ),
        ({"priority.cap_bps": 0.0}, "priority.cap_bps = 0.0: expected a number > 0 and <= 10000"),
        (
            {"priority.cap_bps": 20000.0},
            "priority.cap_bps = 20000.0: expected a number > 0 and <= 10000",
        ),
        ({"priority.share": 0.0}, "priority.share = 0.0: expected a number > 0 and <= 1"),
        ({"priority.share": 2.0}, "priority.share = 2.0: expected a number > 0 and <= 1"),
        (
            {"priority.exit_bps": -1.0},
            "priority.exit_bps = -1.0: expected a number >= 0 and <= 10000",
        ),
        (
            {"priority.mode": "fixed", "priority.fixed_bps": 12.0},
            "priority.fixed_bps = 12: expected a value <= priority.cap_bps (8)",
        ),
        (
            {"markets": [{"coin": "xyz:AAA", "priority_cap_bps": -2.0}]},
            "markets[0].priority_cap_bps = -2.0: expected a number >= 0 and <= 10000",
        ),
    ],
)
def test_bad_priority_settings_are_one_line_errors(overrides, expected):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides)
    assert len(err.value.problems) == 1
    assert "\n" not in err.value.problems[0]
    assert err.value.problems[0].startswith(expected), err.value.problems[0]


def test_a_fixed_rate_above_the_cap_is_fine_when_the_mode_does_not_use_it():
    cfg = load_config(overrides={"priority": {"mode": "edge_share", "cap_bps": 4.0}})
    assert cfg.priority.fixed_bps == 8.0
