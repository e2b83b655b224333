"""The maker fee model (docs/exchange/hip3.md#fees, worked numbers), the fee table's maker
side, and the strategy's fee views: taker and maker fee per coin as the exchange charges them,
and the fees paid so far per coin and in total, read from the fills."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from hip3.market.state import MarketSpec
from hip3.protocol.info_answers import BadAnswer, check_info_answer
from hip3.runtime.reconciliation import INFO_RETRY_MIN_MS
from hip3.strategy.fees import FeeError, FeeTable, maker_fee_bps
from tests.runtime.fakes import MARKETS, Harness

D = Decimal
COIN = "xyz:AAA"


@pytest.mark.parametrize(
    ("rate", "scale", "growth", "referral", "expected_bps"),
    [
        # a positive maker rate is scaled as the taker's: 1.5 bps x (1 + 1) at scale 1
        ("0.00015", "1", False, "0", "3"),
        ("0.00015", "0.5", False, "0", "2.25"),  # scale + 1
        ("0.00015", "3", False, "0", "9"),  # 2 x scale
        ("0.00015", "1", True, "0", "0.3"),  # growth mode: x 0.1
        ("0.00015", "1", False, "0.04", "2.88"),  # the referral discount applies
        ("0", "1", False, "0", "0"),
        # a rebate: only growth mode scales it; neither the deployer's scale nor the discount
        ("-0.00002", "1", False, "0.04", "-0.2"),
        ("-0.00002", "3", True, "0", "-0.02"),
    ],
)
def test_worked_maker_fees(rate, scale, growth, referral, expected_bps):
    fee = maker_fee_bps(
        user_add_rate=D(rate),
        deployer_fee_scale=D(scale),
        growth_mode=growth,
        referral_discount=D(referral),
    )
    assert fee == D(expected_bps)


def test_a_maker_rate_outside_what_the_exchange_can_produce_is_refused():
    with pytest.raises(FeeError, match=r"user_add_rate = 0\.02 is outside"):
        maker_fee_bps(user_add_rate=D("0.02"), deployer_fee_scale=D(1), growth_mode=False)
    table = FeeTable(D(9))
    with pytest.raises(FeeError, match="user_add_rate"):
        table.set_user_rates(D("0.00045"), D(0), D("-0.5"))


def spec(coin: str, dex: str, scale: str = "1", growth: bool = False) -> MarketSpec:
    return MarketSpec(
        coin=coin, dex=dex, asset=110000, sz_decimals=2, deployer_fee_scale=D(scale),
        growth_mode=growth,
    )  # fmt: skip


def test_the_table_costs_a_maker_fill_at_the_fallback_until_the_rates_are_known():
    table = FeeTable(D(9))
    table.set_spec(spec(COIN, "xyz"))
    assert table.maker(COIN) == D(9)  # the taker fallback: never below the real maker fee
    table.set_user_rates(D("0.00045"))  # an answer without userAddRate: costed as a taker
    assert table.maker(COIN) == table(COIN) == D(9)
    table.set_user_rates(D("0.00045"), D(0), D("0.00015"))
    assert table.maker(COIN) == D(3)
    table.set_spec(spec(COIN, "xyz", scale="0.5", growth=True))  # a new scale: recomputed
    assert table.maker(COIN) == D("0.225")
    table.set_spec(spec("BTC", ""))  # a validator-operated perp pays the plain rate
    assert table.maker("BTC") == D("1.5")
    table.set_user_rates(D("0.00045"), D("0.1"), D("-0.00001"))
    assert table.maker("BTC") == D("-0.1")  # a rebate keeps its full value


def test_the_context_shows_the_fees_the_exchange_charges_and_what_was_paid():
    h = Harness(risk={"max_notional_per_market_usd": 1000.0, "max_total_notional_usd": 2000.0})
    h.start()
    h.bring_up()
    ctx = h.d.host
    # the simulated account pays 4.5 bps taker and 1.5 bps maker; the xyz dex's scale is 1
    scale = h.d.specs[COIN].deployer_fee_scale
    assert scale == 1
    assert ctx.taker_fee_bps(COIN) == D(9) and ctx.maker_fee_bps(COIN) == D(3)
    assert ctx.fees_paid() == 0 and ctx.fees_paid(COIN) == 0
    # an IOC through the ask: a taker fill at 9 bps of its notional
    px = D(MARKETS[COIN].oracle) * D("1.02")
    assert ctx.submit(COIN, is_buy=True, size=D(1), px=px, tif="Ioc").ok
    h.settle()
    (fill,) = h.true_fills()
    fee = D(fill["fee"])
    assert fee == (D(fill["px"]) * D(fill["sz"]) * D("0.0009")).quantize(fee)
    assert ctx.fees_paid(COIN) == ctx.fees_paid() == fee
    assert ctx.fees_paid("xyz:BBB") == 0
    other = D(MARKETS["xyz:BBB"].oracle) * D("1.02")
    assert ctx.submit("xyz:BBB", is_buy=True, size=D(1), px=other, tif="Ioc").ok
    h.settle()
    second = D(next(f["fee"] for f in h.true_fills() if f["coin"] == "xyz:BBB"))
    assert ctx.fees_paid("xyz:BBB") == second and ctx.fees_paid() == fee + second


@pytest.mark.parametrize(
    ("add_rate", "bad"),
    [("abc", True), ("1e-4", True), (None, False), ("-0.00002", False), ("0.00015", False)],
)
def test_the_maker_rate_of_a_userfees_answer_is_checked_before_it_is_read(add_rate, bad):
    answer = {"userCrossRate": "0.00045", "activeReferralDiscount": "0"}
    if add_rate is not None:
        answer["userAddRate"] = add_rate
    checked = check_info_answer("userFees", json.dumps(answer).encode())
    assert isinstance(checked, BadAnswer) is bad, checked


@pytest.mark.parametrize(
    "answer",
    [
        {"userCrossRate": "0.5"},  # 5000 bps: bps read as a fraction
        {"userCrossRate": "0.00045", "userAddRate": "0.5"},
        {"userCrossRate": "0.00045", "userAddRate": "-0.02"},
        {"userCrossRate": "0.00045", "activeReferralDiscount": "1.5"},
    ],
)
def test_a_fee_rate_no_schedule_has_is_a_bad_answer_not_a_hardstop(answer):
    """Well-formed numbers outside what the exchange charges: counted as a bad answer and asked
    again, the fee table keeps its fallback, the HardStop stays armed."""
    h = Harness()
    h.start()
    h.open_socket()
    while h.acks():
        h.ack(0)
    (post,) = [p for p in h.d.wire.posts.pending() if p.kind == "info:fees"]
    reply = {"type": "info", "payload": {"type": "userFees", "data": answer}}
    h.frame(json.dumps({"channel": "post", "data": {"id": post.post_id, "response": reply}}))
    assert h.d.decode_errors["bad_answer"] == 1
    assert h.d.counters["internal_errors"] == 0 and h.d.hardstop.is_armed
    assert h.d.host.maker_fee_bps(COIN) == h.d.fees.fallback_bps
    h.tick(INFO_RETRY_MIN_MS)  # asked again after the backoff
    h.bring_up()  # the real answer is read
    assert h.d.ready.trading() and h.d.host.maker_fee_bps(COIN) == D(3)
