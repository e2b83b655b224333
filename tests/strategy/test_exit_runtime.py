"""The exit family inside the dispatcher: an oracle exit fires on context updates alone and
sends the market's one reduce-only order."""

from __future__ import annotations

from decimal import Decimal

from tests.runtime.fakes import Harness, order_wires

COIN = "xyz:AAA"


def reduce_only_orders(h: Harness) -> list[dict]:
    return [w for m in h.transport.sent for w in order_wires(m) if w["r"]]


def held_long(exits: dict | None = None, **overrides) -> Harness:
    h = Harness(exits=exits or {"mark_regression_enabled": False}, **overrides)
    h.start()
    h.bring_up()
    h.entry(COIN)
    h.settle()
    assert h.bot_positions()[COIN] > 0
    h.bbo(COIN)  # the first check of the position: its oracle run starts here
    return h


def oracle_down(h: Harness, bps: int) -> None:
    h.oracle[COIN] = h.oracle[COIN] * (1 - Decimal(bps) / 10_000)
    h.ctx(COIN)


def test_two_oracle_moves_against_a_long_flatten_it_through_the_dispatcher():
    h = held_long()
    h.clock.advance(1_500)  # past the oracle exit's minimum hold
    oracle_down(h, 3)
    assert reduce_only_orders(h) == []
    oracle_down(h, 3)
    assert h.d.counters["exit:oracle_reversal"] == 1
    (order,) = reduce_only_orders(h)
    assert order["b"] is False  # selling the long
    h.settle()
    assert h.bot_positions() == h.true_positions() == {}


def test_the_oracle_exit_switched_off_leaves_the_position_to_the_time_stop():
    h = held_long(oracle_exit={"enabled": False})
    h.clock.advance(1_500)
    for _ in range(4):
        oracle_down(h, 3)
    assert reduce_only_orders(h) == [] and h.d.counters["exit:oracle_reversal"] == 0


def test_a_quick_profit_is_taken_when_the_book_moves_up_through_the_dispatcher():
    h = held_long(exits={"quick_profit_bps": 3.0, "quick_profit_min_hold_s": 0.5})
    assert h.d.counters["exit:quick_profit"] == 0
    h.clock.advance(600)
    h.bbo(COIN)  # the makers requote around the oracle: the bid is ~25 bps over the entry
    assert h.d.counters["exit:quick_profit"] == 1
    assert len(reduce_only_orders(h)) == 1
