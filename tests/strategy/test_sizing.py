"""Session-aware sizing and the dynamic per-market cap, with worked numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.config import load_config
from hip3.strategy.detector import Detector, DetectorParams
from hip3.strategy.sizing import SessionSchedule, account_value_of, market_notional_cap
from tests.strategy import Feed, spec

D = Decimal
DAY = 86_400_000


def at(hh: int, mm: int) -> int:
    return 20_000 * DAY + (hh * 60 + mm) * 60_000


ON = SessionSchedule(enabled=True)


@pytest.mark.parametrize(
    ("hh", "mm", "mults"),
    [
        (14, 29, ("1", "1")),
        (14, 30, ("2", "0.5")),
        (15, 59, ("2", "0.5")),
        (16, 0, ("1.5", "0.75")),
        (20, 59, ("1.5", "0.75")),
        (21, 0, ("1", "1")),
        (3, 0, ("1", "1")),
    ],
)
def test_session_multipliers_by_utc_time(hh, mm, mults):
    assert ON.multipliers(at(hh, mm)) == (D(mults[0]), D(mults[1]))


def test_session_off_is_always_one():
    assert SessionSchedule().multipliers(at(15, 0)) == (D(1), D(1))


@pytest.mark.parametrize(
    "kw", [{"open_threshold_mult": D("0.9")}, {"day_size_mult": D(0)}, {"open_size_mult": D(2)}]
)
def test_bad_session_multipliers_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        SessionSchedule(**kw)


@pytest.mark.parametrize(
    ("value", "pct", "cap"),
    [
        ("2000", "0.1", "100"),  # 200 > the static 100: the static cap
        ("500", "0.1", "50"),  # 10% of 500
        (None, "0.1", "100"),  # unknown account value
        ("0", "0.1", "100"),
        ("500", None, "100"),  # dynamic sizing off
    ],
)
def test_market_notional_cap(value, pct, cap):
    got = market_notional_cap(
        D(100), None if value is None else D(value), None if pct is None else D(pct)
    )
    assert got == D(cap)


@pytest.mark.parametrize(
    ("state", "value"),
    [
        ({"marginSummary": {"accountValue": "1234.5"}}, D("1234.5")),
        ({"marginSummary": {"accountValue": "NaN"}}, None),
        ({"marginSummary": {"accountValue": "x"}}, None),
        ({"marginSummary": {}}, None),
        ({}, None),
        ([], None),
    ],
)
def test_account_value_of(state, value):
    assert account_value_of(state) == value


def detector(session: SessionSchedule) -> tuple[Detector, Feed]:
    params = DetectorParams(
        taker_fee_bps=D(0),
        slippage_bps=D(2),
        min_edge_bps=D(8),  # threshold 10 bps
        direction_filter=False,
        min_oracle_velocity_bps=0,
        min_consecutive_oracle_moves=0,
        baseline_tracking=False,
        max_order_notional=D(1000),
        min_order_notional=D(11),
        boost_to_min_notional=False,
        session=session,
    )
    f = Feed(detector=Detector(params, specs={"xyz:AAA": spec(sz_decimals=2)}))
    return f.detector, f


def signal_at(session: SessionSchedule, wall_ms: int, ask: str):
    det, f = detector(session)
    f.time_ms = wall_ms
    f.ctx("100")
    return f.bbo("99.5", ask, ask_sz="60"), det  # 6 at a tenth of the quote: under the cap


def test_the_open_doubles_the_threshold_and_halves_the_size():
    # a 15 bps edge clears 10 bps outside the session, not 20 bps at the open
    outside, _ = signal_at(ON, at(12, 0), "99.85")
    assert outside is not None
    assert signal_at(ON, at(15, 0), "99.85")[0] is None
    # a 25 bps edge clears the open's 20 bps, at half the size
    inside, _ = signal_at(ON, at(15, 0), "99.75")
    plain, _ = signal_at(ON, at(12, 0), "99.75")
    assert (plain.size, inside.size) == (D(6), D(3))
    # the rest of the session: x1.5 threshold (15 bps) and x0.75 size
    assert signal_at(ON, at(17, 0), "99.85")[0] is None
    day, _ = signal_at(ON, at(17, 0), "99.84")
    assert day.size == D("4.5")


def test_session_config_reaches_the_detector():
    cfg = load_config(
        overrides={"detector": {"session_aware": True, "session_open_size_mult": 0.25}}
    )
    s = DetectorParams.from_config(cfg.detector).session
    assert s.enabled and s.open_size_mult == D("0.25") and s.open_threshold_mult == D(2)
    assert not DetectorParams.from_config(load_config().detector).session.enabled
