"""Entry guards inside the dispatcher: a closed round trip blocks the next entry in that
market for the re-entry delay, and a blackout window blocks every entry."""

from __future__ import annotations

from tests.runtime.fakes import MARKETS, Harness, order_wires

COIN = "xyz:AAA"
DAY_MS = 86_400_000


def entries_sent(h: Harness) -> int:
    return sum(1 for m in h.transport.sent for w in order_wires(m) if not w["r"])


def ready(**overrides) -> Harness:
    h = Harness(exits={"mark_regression_enabled": False}, **overrides)
    h.start()
    h.bring_up()
    return h


def dislocate(h: Harness, coin: str = COIN) -> None:
    for c in MARKETS:  # every market fresh, so READY-TRADING holds
        h.bbo(c)
        h.ctx(c)
    h.market_moves(coin, dislocated="buy")
    h.deliver_lanes("activeAssetCtx:" + coin)
    h.deliver_lanes("bbo:" + coin)


def test_a_market_just_closed_is_not_entered_again_until_the_delay_passes():
    h = ready(entry_guards={"re_entry": {"enabled": True, "delay_s": 30.0}})
    h.entry(COIN)
    h.settle()
    assert h.bot_positions()
    h.tick(31_000)  # the time stop closes it
    h.settle()
    assert h.bot_positions() == h.true_positions() == {}
    before = entries_sent(h)
    h.clock.advance(29_000)
    dislocate(h)
    assert entries_sent(h) == before
    assert h.d.executor.blocked["re_entry_delay"] >= 1
    assert h.d.entry_guards.outcomes == 1
    dislocate(h, "xyz:BBB")  # another market is not held back
    assert entries_sent(h) == before + 1
    h.settle()
    h.tick(1_100)  # 30 s after the closing fill (the tick also settles the flatten machine)
    dislocate(h)
    assert entries_sent(h) == before + 2, h.d.executor.blocked


def test_a_blackout_window_blocks_entries():
    h = Harness(exits={"mark_regression_enabled": False})
    minute = h.clock.wall_ms() % DAY_MS // 60_000
    window = f"{minute // 60:02d}:{minute % 60:02d}-{(minute + 2) // 60 % 24:02d}:{(minute + 2) % 60:02d}"
    h = ready(entry_guards={"blackout_windows": [window]})
    dislocate(h)
    assert entries_sent(h) == 0 and h.d.executor.blocked["blackout"] >= 1


def test_dynamic_sizing_caps_a_market_by_the_dex_account_value():
    # the harness funds 100 000 USD per dex: 0.0001 of it is a 10 USD cap, under any entry
    h = ready(risk={"dynamic_sizing": True, "risk_per_market": 0.0001})
    assert h.d.executor.account_values["xyz"] > 0  # read with the epoch's positions
    dislocate(h)
    assert entries_sent(h) == 0 and h.d.executor.blocked["market_notional"] >= 1
    # the same entry under the static cap alone goes out
    h2 = ready()
    dislocate(h2)
    assert entries_sent(h2) == 1


def test_an_entry_larger_than_its_share_of_open_interest_is_refused():
    h = ready(entry_guards={"max_oi_fraction": 0.000001})
    dislocate(h)
    assert entries_sent(h) == 0 and h.d.executor.blocked["oi_fraction"] >= 1
