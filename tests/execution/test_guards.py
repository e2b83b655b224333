"""Entry guards with worked numbers, each at its threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.execution.guards import (
    BLACKOUT,
    BURST,
    CORRELATION_COOLDOWN,
    CORRELATION_LIMIT,
    HOURLY_DRAWDOWN,
    MARKET_HEALTH,
    RE_ENTRY_DELAY,
    TILT,
    Blackout,
    BurstLimiter,
    CorrelationCooldown,
    CorrelationGroup,
    CorrelationLimit,
    HourlyDrawdown,
    MarketHealth,
    ReEntryDelay,
    TiltGuard,
    parse_window,
)

D = Decimal
H = 3_600_000
T0 = 1_760_000_400_000  # a wall time 6 min 40 s into a clock hour (23:00 UTC + 6:40)


def test_hourly_drawdown_blocks_at_the_limit_and_clears_with_the_next_hour():
    g = HourlyDrawdown(D(10))
    g.report(D(-4), T0)
    g.report(D("-5.99"), T0 + 1_000)
    assert g.refusal(T0 + 2_000) is None  # -9.99
    g.report(D("-0.01"), T0 + 3_000)
    assert g.refusal(T0 + 3_000) == HOURLY_DRAWDOWN  # -10.00 <= -10
    g.report(D(3), T0 + 4_000)
    assert g.refusal(T0 + 4_000) is None  # -7: a win counts too
    g.report(D(-3), T0 + 5_000)
    hour_end = T0 - T0 % H + H
    assert g.refusal(hour_end - 1) == HOURLY_DRAWDOWN
    assert g.refusal(hour_end) is None  # a new clock hour
    g.report(D(-20), hour_end - 10)  # a close from the hour before is not counted again
    assert g.refusal(hour_end + 1) is None


def test_tilt_guard_three_losses_in_a_row_then_a_cooldown():
    g = TiltGuard(3, 300_000)
    for pnl in ("-1", "-1", "2", "-1", "-1"):  # the win ends the first streak
        g.on_outcome(D(pnl), T0)
    assert g.refusal(T0) is None
    g.on_outcome(D("-0.01"), T0 + 10)
    assert g.refusal(T0 + 10) == TILT
    assert g.refusal(T0 + 300_009) == TILT
    assert g.refusal(T0 + 300_010) is None
    # a fourth loss right after is the start of a new streak, not a new cooldown
    g.on_outcome(D(-1), T0 + 300_020)
    assert g.refusal(T0 + 300_020) is None and g.losses == 1


def test_a_breakeven_round_trip_ends_a_losing_streak():
    g = TiltGuard(2, 1_000)
    g.on_outcome(D(-1), T0)
    g.on_outcome(D(0), T0)
    g.on_outcome(D(-1), T0)
    assert g.refusal(T0) is None


def test_re_entry_delay_is_per_market():
    g = ReEntryDelay(30_000)
    g.on_close("xyz:AAA", T0)
    assert g.refusal("xyz:AAA", T0 + 29_999) == RE_ENTRY_DELAY
    assert g.refusal("xyz:AAA", T0 + 30_000) is None
    assert g.refusal("xyz:BBB", T0 + 1) is None


def test_burst_limiter_counts_entries_sent_and_cools_down_per_market():
    g = BurstLimiter(window_ms=1_800_000, max_entries=3, cooldown_ms=300_000, bypass_edge_bps=100)
    for t in (0, 10_000):
        assert g.refusal("xyz:AAA", 20.0, T0 + t) is None
        g.record("xyz:AAA", T0 + t)
    for _ in range(5):  # asking is read-only: refusals never count
        assert g.refusal("xyz:AAA", 20.0, T0 + 20_000) is None
    g.record("xyz:AAA", T0 + 20_000)  # the third entry: cooldown until +320 s
    assert g.refusal("xyz:AAA", 20.0, T0 + 319_999) == BURST
    assert g.refusal("xyz:AAA", 100.0, T0 + 319_999) is None  # a 100 bps edge passes
    assert g.refusal("xyz:BBB", 20.0, T0 + 30_000) is None
    assert g.refusal("xyz:AAA", 20.0, T0 + 320_000) is None  # the record was cleared


def test_burst_entries_leave_the_window():
    g = BurstLimiter(window_ms=1_000, max_entries=2, cooldown_ms=5_000)
    g.record("xyz:AAA", T0)
    g.record("xyz:AAA", T0 + 1_000)  # the first left the window: one in it
    assert g.refusal("xyz:AAA", 1.0, T0 + 1_000) is None


def health(**kw) -> MarketHealth:
    return MarketHealth(window=20, disable_below=0.3, re_enable_at=0.5, min_samples=10, **kw)


def test_market_health_score_worked_numbers():
    g = health()
    for pnl in ["0.5"] * 2 + ["-0.5"] * 8:  # win rate 0.2, average -0.3 USD: quality 0.7
        g.on_outcome("xyz:AAA", D(pnl), T0)
    assert g.score("xyz:AAA") == pytest.approx(0.6 * 0.2 + 0.4 * 0.7)  # 0.40
    assert g.refusal("xyz:AAA", T0) is None
    g2 = health()
    for pnl in ["0.2"] + ["-1"] * 8:
        g2.on_outcome("xyz:AAA", D(pnl), T0)
    assert g2.score("xyz:AAA") is None  # nine samples: not judged yet
    g2.on_outcome("xyz:AAA", D(-1), T0)
    # win rate 0.1, average (0.2 - 9) / 10 = -0.88: quality 0.12 -> 0.06 + 0.048
    assert g2.score("xyz:AAA") == pytest.approx(0.108)
    assert g2.refusal("xyz:AAA", T0) == MARKET_HEALTH
    assert g2.refusal("xyz:BBB", T0) is None


def test_market_health_re_enables_on_good_outcomes_with_hysteresis():
    g = health()
    for _ in range(10):
        g.on_outcome("xyz:AAA", D(-2), T0)  # score 0: disabled
    assert g.refusal("xyz:AAA", T0) == MARKET_HEALTH
    for _ in range(6):  # 6 wins of 16: rate 0.375, average -0.5 -> 0.225 + 0.2 = 0.425
        g.on_outcome("xyz:AAA", D(2), T0)
    assert g.score("xyz:AAA") == pytest.approx(0.425)
    assert g.refusal("xyz:AAA", T0) == MARKET_HEALTH  # above 0.3 but below 0.5
    for _ in range(2):  # 8 of 18: rate 0.444, average -0.222 -> 0.267 + 0.311 = 0.578
        g.on_outcome("xyz:AAA", D(2), T0)
    assert g.refusal("xyz:AAA", T0) is None


def test_market_health_probation_gives_a_disabled_market_a_fresh_record():
    g = health(probation_ms=1_800_000)
    for _ in range(10):
        g.on_outcome("xyz:AAA", D(-2), T0)
    assert g.refusal("xyz:AAA", T0 + 1_799_999) == MARKET_HEALTH
    assert g.refusal("xyz:AAA", T0 + 1_800_000) is None
    assert g.score("xyz:AAA") is None  # judged anew


def test_correlation_cooldown_after_closes_bunch_up():
    g = CorrelationCooldown(close_threshold=3, window_ms=30_000, cooldown_ms=60_000)
    g.on_close(T0)
    g.on_close(T0 + 10_000)
    g.on_close(T0 + 30_000)  # the first is 30 s old: out of the window
    assert g.refusal(T0 + 30_000) is None
    g.on_close(T0 + 35_000)  # three within 30 s
    assert g.refusal(T0 + 94_999) == CORRELATION_COOLDOWN
    assert g.refusal(T0 + 95_000) is None


METALS = CorrelationGroup("metals", ("xyz:GOLD", "xyz:SILVER"), 1.5)


def test_correlation_limit_weights_same_way_positions_of_a_group():
    g = CorrelationLimit([METALS], max_weighted=3)
    held = {"xyz:GOLD": True, "xyz:AAA": True}
    assert g.weighted(held) == 2.0
    # a long SILVER makes two same-way metals: 1.5 + 1.5 + 1 = 4 > 3
    assert g.refusal(held, "xyz:SILVER", True) == CORRELATION_LIMIT
    # a short SILVER hedges: 1 + 1 + 1 = 3, not above 3
    assert g.refusal(held, "xyz:SILVER", False) is None
    assert g.refusal(held, "xyz:BBB", True) is None  # ungrouped: 3


def test_correlation_limit_refuses_a_market_in_two_groups():
    with pytest.raises(ValueError, match="xyz:GOLD"):
        CorrelationLimit([METALS, CorrelationGroup("gold", ("xyz:GOLD",))], 5)


def minute(hh: int, mm: int) -> int:
    return (T0 - T0 % 86_400_000) + (hh * 60 + mm) * 60_000


@pytest.mark.parametrize(
    ("hh", "mm", "blocked"),
    [
        (8, 59, False),
        (9, 0, True),
        (9, 14, True),
        (9, 15, False),
        (23, 55, True),
        (0, 4, True),
        (0, 5, False),
    ],
)
def test_blackout_windows_are_half_open_and_wrap_past_midnight(hh, mm, blocked):
    g = Blackout([parse_window("09:00-09:15"), parse_window("23:50-00:05")])
    assert (g.refusal(minute(hh, mm)) == BLACKOUT) is blocked


@pytest.mark.parametrize("text", ["9:00-09:15", "09:00-24:00", "09:00", "10:00-10:00", "x"])
def test_bad_blackout_windows_are_refused(text):
    with pytest.raises(ValueError, match="blackout window"):
        parse_window(text)


def test_open_interest_share():
    from hip3.execution.guards import OI_FRACTION, OpenInterestShare

    g = OpenInterestShare(D("0.01"))
    # open interest 500 coins at 100 = 50 000 USD: 1% is 500 USD
    assert g.refusal(D(500), D(500) * 100) is None
    assert g.refusal(D("500.01"), D(500) * 100) == OI_FRACTION
    assert g.refusal(D(1), None) == OI_FRACTION  # unknown: refused
    assert g.refusal(D(1), D(0)) == OI_FRACTION
    assert g.refusal(None, D(1)) is None
    with pytest.raises(ValueError, match="max_fraction"):
        OpenInterestShare(D(0))
