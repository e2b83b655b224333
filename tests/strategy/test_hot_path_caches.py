"""What the hot path caches must never hold on to: a new fee, new parameters, a new spec.

The detector keeps per-coin thresholds keyed by the fee object, constants derived from its
parameters, and builds `SignalInfo` only when read; the executor keeps its slippage factors
keyed by the limit objects. Each test changes one input and checks the next decision sees it.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from hip3.strategy.detector import Detector, DetectorParams
from hip3.strategy.fees import FeeTable
from tests.strategy import Feed, spec

D = Decimal

OFF = {
    "direction_filter": False,
    "min_oracle_velocity_bps": 0.0,
    "min_consecutive_oracle_moves": 0,
    "baseline_tracking": False,
    "signal_dedup": False,
}


def test_a_fee_change_moves_the_threshold_at_once():
    fees = FeeTable(D("4.5"))
    specs = {"xyz:AAA": spec()}
    det = Detector(DetectorParams(**OFF), fee_bps=fees, specs=specs)
    f = Feed("xyz:AAA", detector=det)
    f.ctx("100")
    assert f.bbo("99.7", "99.87") is not None  # 13 bps > 4.5 + 2 + 5
    fees.set_spec(specs["xyz:AAA"])
    fees.set_user_rates(D("0.00045"))  # HIP-3 at fee scale 1: 9 bps, cost 16
    assert f.bbo("99.7", "99.87") is None
    assert f.bbo("99.7", "99.83") is not None  # 17 > 16
    assert det.last_info is not None and det.last_info.fee_bps == D(9)
    assert det.last_info.threshold_bps == D(16)


def test_an_invalid_fee_after_a_valid_one_still_fails_closed():
    fee = {"v": D("4.5")}
    det = Detector(DetectorParams(**OFF), fee_bps=lambda c: fee["v"], specs={"xyz:AAA": spec()})
    f = Feed("xyz:AAA", detector=det)
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is not None
    fee["v"] = D("NaN")
    assert f.bbo("99.7", "99.8") is None
    assert det.skips["no_fee"] == 1


def test_new_parameters_replace_every_derived_constant():
    specs = {"xyz:AAA": spec()}
    det = Detector(DetectorParams(**OFF), specs=specs)
    f = Feed("xyz:AAA", detector=det)
    f.ctx("100")
    first = f.bbo("99.7", "99.8", ask_sz="1000")
    assert first is not None
    # a bigger dollar cap and no notional buffer: the size must grow with them
    det.p = replace(det.p, max_order_notional=D(500), notional_buffer=D(0), min_edge_bps=D(15))
    assert f.bbo("99.7", "99.8", ask_sz="1000") is None  # 20 bps < 4.5 + 2 + 15
    bigger = f.bbo("99.6", "99.7", ask_sz="1000")
    assert bigger is not None and bigger.size > first.size
    fresh = Detector(det.p, specs=specs)
    g = Feed("xyz:AAA", detector=fresh)
    g.ctx("100")
    assert g.bbo("99.6", "99.7", ask_sz="1000") == bigger


def test_signal_info_is_the_one_of_the_signal_even_when_read_late():
    det = Detector(
        DetectorParams(**{**OFF, "min_oracle_velocity_bps": 3.0}), specs={"xyz:AAA": spec()}
    )
    f = Feed("xyz:AAA", detector=det)
    f.oracle_path("99.9", "100")
    assert f.bbo("99.7", "99.8") is not None
    expected = 0.30 * (8.5 / 23) + 0.20 * (7 / 9) + 0.20 / 3 + 0.15 + 0.075
    # later updates (no signal) and a parameter change must not alter the info of that signal
    assert f.bbo("99.95", "100.05") is None
    assert f.ctx("100.01") is None  # a wiggle: the track's velocity drops to 0
    assert det.track("xyz:AAA").velocity == 0.0
    det.p = replace(det.p, min_oracle_velocity_bps=50.0)
    info = det.last_info
    assert info is not None and info.confidence == pytest.approx(expected, rel=1e-3)
    assert info.quote_px == D("99.8") and info.oracle_px == D("100") and info.is_buy
    assert det.last_info is info


def test_a_spec_change_changes_the_lot():
    specs = {"xyz:AAA": spec(sz_decimals=2)}
    det = Detector(DetectorParams(**OFF), specs=specs)
    f = Feed("xyz:AAA", detector=det)
    f.ctx("100")
    det.p = replace(det.p, max_order_notional=D(500))
    a = f.bbo("99.7", "99.8", ask_sz="1000")
    specs["xyz:AAA"] = spec(sz_decimals=0)
    b = f.bbo("99.7", "99.8", ask_sz="1000")
    assert a is not None and a.size == D("4.94")
    assert b is not None and b.size == D(4)


def test_executor_slippage_factors_follow_the_limits():
    from types import SimpleNamespace

    from hip3.execution.executor import Executor, RiskLimits

    limits = RiskLimits(
        max_notional_per_market=D(100),
        max_total_notional=D(100),
        max_concurrent_positions=1,
        min_order_notional=D(10),
        slippage_bps=D(2),
        max_slippage_bps=D(50),
    )
    ns = SimpleNamespace()
    ex = Executor(
        limits=limits,
        action_budget=ns,
        ready=ns,
        hardstop=ns,
        flatten={},
        positions=ns,
        orders=ns,
        markets={},
        specs={},
        wire=ns,
        cloids=ns,
        trading=True,
    )
    assert ex._slippage_factors() == (D("1.0002"), D("0.9998"))
    limits.slippage_bps = D(10)
    assert ex._slippage_factors() == (D("1.001"), D("0.999"))
    limits.max_slippage_bps = D(5)  # the cap wins
    assert ex._slippage_factors() == (D("1.0005"), D("0.9995"))
    ex.limits = replace(limits, slippage_bps=D(1))
    assert ex._slippage_factors() == (D("1.0001"), D("0.9999"))
