"""What the guard sends, with worked numbers: asset ids, cancel batches, flatten orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.guard.orders import Market, NoPrice, cancel_actions, flatten_order, markets_from

PERP_DEXS = [None, {"name": "abc"}, {"name": "xyz"}]
XYZ_META = {
    "universe": [{"name": "xyz:AAA", "szDecimals": 2}, {"name": "xyz:BBB", "szDecimals": 0}]
}
FIRST_META = {"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "ETH", "szDecimals": 4}]}
AAA = Market("xyz:AAA", 120000, 2)
BTC = Market("BTC", 0, 5)
SLIP = Decimal(200)


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict:
    def side(levels):
        return [{"px": px, "sz": sz, "n": 1} for px, sz in levels]

    return {"coin": "x", "time": 1, "levels": [side(bids), side(asks)]}


def test_asset_ids_follow_the_dex_position_in_perp_dexs():
    markets = markets_from(PERP_DEXS, {"xyz": XYZ_META, "": FIRST_META})
    # xyz is element 2 of perpDexs: 100000 + 2 * 10000 + index in its meta
    assert markets["xyz:AAA"] == AAA
    assert markets["xyz:BBB"] == Market("xyz:BBB", 120001, 0)
    # the first dex: the index in meta
    assert markets["BTC"] == BTC and markets["ETH"].asset == 1


def test_a_dex_missing_from_perp_dexs_is_an_error():
    with pytest.raises(ValueError, match="'qq' is not listed"):
        markets_from(PERP_DEXS, {"qq": XYZ_META})


def test_a_long_sells_through_the_bids_to_the_level_that_covers_it():
    # 3.5 to sell; bids 1 @ 25.10, 2 @ 25.05, 5 @ 25.00: the first two cover 3, the third covers
    # the rest, so the limit is 25.00 less 2 % = 24.5
    order = flatten_order(
        AAA, Decimal("3.5"), book([("25.1", "1"), ("25.05", "2"), ("25", "5")], []), SLIP
    )
    assert (order.is_buy, order.px, order.sz) == (False, "24.5", "3.5")
    assert order.wire == {
        "a": 120000,
        "b": False,
        "p": "24.5",
        "s": "3.5",
        "r": True,
        "t": {"limit": {"tif": "Ioc"}},
    }
    assert order.describe() == "sell 3.5 xyz:AAA IOC reduce-only @ 24.5"


def test_a_short_buys_through_the_asks_rounding_up_to_a_valid_price():
    # 3 to buy; asks 1 @ 25.2, 1.5 @ 25.3, 4 @ 25.4: covered at 25.4; 25.4 * 1.02 = 25.908
    order = flatten_order(
        AAA, Decimal(-3), book([], [("25.2", "1"), ("25.3", "1.5"), ("25.4", "4")]), SLIP
    )
    assert (order.is_buy, order.px, order.sz) == (True, "25.908", "3")
    # BTC at 60010 * 1.02 = 61210.2: six significant figures, so up to the next integer
    order = flatten_order(BTC, Decimal("-0.01234"), book([], [("60010", "1")]), SLIP)
    assert (order.px, order.sz) == ("61211", "0.01234")
    # and a sell rounds down: 60000.5 * 0.98 = 58800.49 -> 58800
    order = flatten_order(BTC, Decimal("0.5"), book([("60000.5", "1")], []), SLIP)
    assert (order.px, order.sz) == ("58800", "0.5")


def test_a_book_thinner_than_the_position_prices_at_its_last_level():
    order = flatten_order(AAA, Decimal(10), book([("25.1", "1"), ("25", "2")], []), SLIP)
    assert (order.px, order.sz) == ("24.5", "10")


def test_an_empty_side_cannot_be_priced():
    with pytest.raises(NoPrice, match="no bids"):
        flatten_order(AAA, Decimal(1), book([], [("25", "1")]), SLIP)
    with pytest.raises(NoPrice, match="no asks"):
        flatten_order(AAA, Decimal(-1), None, SLIP)
    with pytest.raises(ValueError, match="no position"):
        flatten_order(AAA, Decimal(0), book([("25", "1")], [("26", "1")]), SLIP)


def test_cancels_go_by_asset_and_oid_at_most_200_to_an_action():
    markets = {"xyz:AAA": AAA}
    orders = [{"coin": "xyz:AAA", "oid": oid} for oid in range(1, 451)]
    orders.append({"coin": "zz:ZZZ", "oid": 999})
    actions, unknown = cancel_actions(orders, markets)
    assert [len(a["cancels"]) for a in actions] == [200, 200, 50]
    assert actions[0]["type"] == "cancel" and "f" not in actions[0]
    assert actions[0]["cancels"][0] == {"a": 120000, "o": 1}
    assert actions[2]["cancels"][-1] == {"a": 120000, "o": 450}
    assert unknown == [{"coin": "zz:ZZZ", "oid": 999}]
    assert cancel_actions([], markets) == ([], [])
