"""Leverage at start, with fakes around the LeverageSetter: the mode each margin mode allows,
no action when the exchange already has the setting, and a refusal ending the run with one
line naming the market."""

from __future__ import annotations

from collections import Counter

import pytest

from hip3.market.state import MarketSpec
from hip3.runtime.common import FatalError
from hip3.runtime.leverage import LeverageSetter, margin_setting

SPECS = {
    "BTC": MarketSpec("BTC", "", 0, 5, max_leverage=40),
    "xyz:AAA": MarketSpec("xyz:AAA", "xyz", 110000, 2, 10, margin_mode="strictIsolated"),
}


class Conn:
    state = "live"


class FakeWire:
    signer_verified = True

    def __init__(self) -> None:
        self.actions: list[tuple[dict, object]] = []

    def post_action(self, action, *, kind, owner):
        self.actions.append((action, owner))
        return object()


def setter(wanted, *, cross=True):
    asked: dict[str, object] = {}

    def ask(payload, key, *, on_answer, on_failure=None):
        asked[payload["coin"]] = on_answer
        return True

    wire, unsettled = FakeWire(), set()
    s = LeverageSetter(
        wanted=wanted,
        prefer_cross=cross,
        specs=SPECS,
        unsettled=unsettled,
        retired=set(),
        ask=ask,
        wire=wire,
        conn=Conn(),
        user="0x" + "a" * 40,
        counters=Counter(),
    )
    return s, asked, wire, unsettled


def test_cross_only_where_the_margin_mode_allows_it():
    assert margin_setting(SPECS["BTC"], 5, prefer_cross=True) == (True, 5)
    assert margin_setting(SPECS["BTC"], 5, prefer_cross=False) == (False, 5)
    assert margin_setting(SPECS["xyz:AAA"], 5, prefer_cross=True) == (False, 5)


def test_a_setting_already_on_the_exchange_is_not_sent_again():
    s, asked, wire, unsettled = setter({"BTC": 5, "xyz:AAA": 3})
    assert unsettled == {"BTC", "xyz:AAA"}
    s.tick(0)
    asked["BTC"]({"coin": "BTC", "leverage": {"type": "cross", "value": 5}}, 1)
    asked["xyz:AAA"]({"coin": "xyz:AAA", "leverage": {"type": "cross", "value": 3}}, 1)
    assert [a for a, _o in wire.actions] == [
        {"type": "updateLeverage", "asset": 110000, "isCross": False, "leverage": 3}
    ]
    assert unsettled == {"xyz:AAA"}
    wire.actions[0][1].done(None, 2)
    assert unsettled == set() and s.settings == {"BTC": (True, 5), "xyz:AAA": (False, 3)}


def test_a_refusal_names_the_market_and_the_setting():
    s, asked, wire, _u = setter({"xyz:AAA": 3})
    s.tick(0)
    asked["xyz:AAA"]({"coin": "xyz:AAA", "leverage": {"type": "isolated", "value": 1}}, 1)
    owner = wire.actions[0][1]
    with pytest.raises(FatalError, match=r"refused for xyz:AAA \(isolated 3x, asset 110000\): No"):
        owner.failed("No\nway", 2, definite=True)


def test_an_unknown_outcome_is_read_again():
    s, asked, wire, unsettled = setter({"xyz:AAA": 3})
    s.tick(0)
    asked["xyz:AAA"]({"coin": "xyz:AAA", "leverage": {"type": "isolated", "value": 1}}, 1)
    wire.actions[0][1].failed("connection lost", 2, definite=False)
    asked.clear()
    s.tick(3)
    assert "xyz:AAA" in asked and unsettled == {"xyz:AAA"}
