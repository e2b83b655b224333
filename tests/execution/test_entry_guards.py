"""EntryGuards: outcomes read from the position tracker, the guards asked in order, config."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.config import ConfigError, load_config
from hip3.execution.entry_guards import EntryGuards
from hip3.execution.guards import (
    HourlyDrawdown,
    MarketHealth,
    ReEntryDelay,
    TiltGuard,
)
from hip3.execution.positions import FillRecord, PositionTracker

D = Decimal
T0 = 1_760_000_000_000
COIN = "xyz:AAA"


class Book:
    """A position tracker fed fills the way the runtime feeds it."""

    def __init__(self) -> None:
        self.t = PositionTracker(session_start_ms=0)
        self.tid = 0

    def fill(self, is_buy: bool, px: str, sz: str, at: int, pnl: str = "0", fee: str = "0.01"):
        self.tid += 1
        self.t.apply(
            FillRecord(
                tid=self.tid,
                coin=COIN,
                is_buy=is_buy,
                px=D(px),
                sz=D(sz),
                fee=D(fee),
                closed_pnl=D(pnl),
                oid=None,
                cloid=None,
                time_ms=at,
            ),
            snapshot=False,
            known_order=True,
        )

    def round_trip(self, pnl: str, at: int) -> None:
        self.fill(True, "100", "1", at)
        self.fill(False, "100", "1", at + 5_000, pnl=pnl)


def test_a_round_trip_is_reported_with_both_fees_at_the_closing_fill_time():
    b = Book()
    drawdown = HourlyDrawdown(D(10))
    g = EntryGuards(positions=b.t, drawdown=drawdown, re_entry=ReEntryDelay(30_000))
    g.observe(T0)  # nothing held yet
    b.fill(True, "100", "1", T0)
    g.observe(T0 + 1)  # seen open
    b.fill(False, "99", "1", T0 + 5_000, pnl="-1")
    assert g.refusal(COIN, is_buy=True, edge_bps=20.0, now_ms=T0 + 6_000) == "re_entry_delay"
    assert g.outcomes == 1 and drawdown.pnl == D("-1.02")  # closed P&L less both fees
    assert g.refusal(COIN, is_buy=True, edge_bps=20.0, now_ms=T0 + 35_000) is None


def test_a_round_trip_made_between_two_looks_still_counts_once():
    b = Book()
    tilt = TiltGuard(3, 60_000)
    g = EntryGuards(positions=b.t, tilt=tilt)
    b.round_trip("-1", T0)  # opened and closed before the first look
    g.observe(T0 + 10_000)
    assert g.outcomes == 1 and tilt.losses == 1
    g.observe(T0 + 11_000)  # nothing new
    assert g.outcomes == 1
    b.round_trip("-1", T0 + 20_000)
    g.observe(T0 + 30_000)
    assert g.outcomes == 2 and tilt.losses == 2


def test_two_losses_seen_one_by_one_trip_the_tilt_guard():
    b = Book()
    g = EntryGuards(positions=b.t, tilt=TiltGuard(2, 60_000))
    for start in (T0, T0 + 10_000):
        b.fill(True, "100", "1", start)
        g.observe(start)
        b.fill(False, "99.5", "1", start + 5_000, pnl="-0.5")
        g.observe(start + 6_000)
    assert g.refusal(COIN, is_buy=True, edge_bps=1.0, now_ms=T0 + 20_000) == "tilt_guard"
    assert g.refusal(COIN, is_buy=True, edge_bps=1.0, now_ms=T0 + 75_000) is None


def test_a_flip_is_a_close_and_a_new_open():
    b = Book()
    health = MarketHealth(window=5, min_samples=1, disable_below=0.3, re_enable_at=0.5)
    g = EntryGuards(positions=b.t, health=health)
    b.fill(True, "100", "1", T0)
    g.observe(T0)
    b.fill(False, "98", "2", T0 + 1_000, pnl="-2")  # long 1 -> short 1
    g.observe(T0 + 2_000)
    assert g.outcomes == 1 and list(health.markets[COIN].outcomes) == [D("-2.02")]
    assert g.refusal(COIN, is_buy=True, edge_bps=1.0, now_ms=T0 + 2_000) == "market_health"


def test_the_entry_edge_is_kept_per_market():
    g = EntryGuards(positions=PositionTracker(session_start_ms=0))
    assert g.entry_edge(COIN) is None
    g.on_sent(COIN, edge_bps=42.5, now_ms=T0)
    assert g.entry_edge(COIN) == 42.5


def test_defaults_turn_every_guard_off():
    g = EntryGuards.from_config(load_config().entry_guards, positions=PositionTracker(0))
    assert all(
        x is None
        for x in (g.blackout, g.drawdown, g.cooldown, g.burst, g.tilt, g.re_entry, g.health)
    )
    assert g.correlation is None


def test_config_builds_each_guard():
    cfg = load_config(
        overrides={
            "entry_guards": {
                "blackout_windows": ["09:00-09:15", "14:25-14:40"],
                "hourly_drawdown": {"max_loss_usd": 10.0},
                "tilt": {"enabled": True},
                "re_entry": {"enabled": True, "delay_s": 30.0},
                "burst": {
                    "enabled": True,
                    "window_s": 900.0,
                    "max_entries": 5,
                    "cooldown_s": 180.0,
                    "bypass_edge_bps": 100.0,
                },
                "market_health": {"enabled": True},
                "correlation_cooldown": {"close_threshold": 3, "cooldown_s": 120.0},
                "correlation_limit": {
                    "enabled": True,
                    "groups": [{"name": "metals", "markets": ["xyz:GOLD", "xyz:SILVER"]}],
                },
            }
        }
    )
    g = EntryGuards.from_config(cfg.entry_guards, positions=PositionTracker(0))
    assert g.blackout.windows == ((540, 555), (865, 880))
    assert g.drawdown.max_loss == D(10) and g.re_entry.delay_ms == 30_000
    assert (g.burst.window_ms, g.burst.max_entries, g.burst.cooldown_ms) == (900_000, 5, 180_000)
    assert g.cooldown.close_threshold == 3 and g.cooldown.cooldown_ms == 120_000
    assert g.health.probation_ms == 1_800_000 and g.tilt.max_losses == 3
    assert g.correlation.group_of["xyz:SILVER"].weight == 1.5


@pytest.mark.parametrize(
    ("guards", "message"),
    [
        (
            {"blackout_windows": ["9-10"]},
            "entry_guards.blackout_windows[0] = '9-10': expected 'HH:MM",
        ),
        (
            {"market_health": {"re_enable_at": 0.2}},
            "entry_guards.market_health.re_enable_at = 0.2: expected a value >= ",
        ),
        (
            {"market_health": {"min_samples": 30}},
            "entry_guards.market_health.min_samples = 30: expected a value <= ",
        ),
        (
            {
                "correlation_limit": {
                    "groups": [
                        {"name": "a", "markets": ["xyz:GOLD"]},
                        {"name": "b", "markets": ["xyz:GOLD"]},
                    ]
                }
            },
            "entry_guards.correlation_limit.groups[1].markets: 'xyz:GOLD' is already in group 'a'",
        ),
    ],
)
def test_bad_guard_config_is_one_line_naming_the_key(guards, message):
    with pytest.raises(ConfigError) as exc:
        load_config(overrides={"entry_guards": guards})
    assert message in str(exc.value) and "\n" not in exc.value.problems[0]
