"""HIP-3 taker fee model: the worked numbers of docs/exchange/hip3.md#fees, input checks, the
per-coin table."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.market.state import MarketSpec
from hip3.sim.rules import hip3_fee_multiplier as sim_multiplier
from hip3.sim.universe import Asset
from hip3.strategy.fees import FeeError, FeeTable, hip3_fee_multiplier, taker_fee_bps

D = Decimal


@pytest.mark.parametrize(
    ("rate", "scale", "growth", "referral", "expected_bps"),
    [
        # scale 1: protocol 1x + deployer 1x = 2x the user's 4.5 bps
        ("0.00045", "1", False, "0", "9"),
        # scale < 1: scale + 1
        ("0.00045", "0.5", False, "0", "6.75"),
        ("0.00045", "0", False, "0", "4.5"),
        # scale > 1: 2 * scale ("3" -> 6x)
        ("0.00045", "3", False, "0", "27"),
        # growth mode cuts the whole thing by 90%
        ("0.00045", "1", True, "0", "0.9"),
        ("0.00045", "9.99", True, "0", "8.991"),
        # referral discount applies last
        ("0.00045", "1", False, "0.04", "8.64"),
        # a VIP rate from userFees ("0.000315")
        ("0.000315", "1", False, "0", "6.3"),
    ],
)
def test_worked_fees(rate, scale, growth, referral, expected_bps):
    fee = taker_fee_bps(
        user_cross_rate=D(rate),
        deployer_fee_scale=D(scale),
        growth_mode=growth,
        referral_discount=D(referral),
    )
    assert fee == D(expected_bps)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"user_cross_rate": D("-0.0001")}, "user_cross_rate"),
        ({"user_cross_rate": D("0.02")}, "user_cross_rate"),  # 200 bps: a units mistake
        ({"user_cross_rate": D("NaN")}, "user_cross_rate"),
        ({"user_cross_rate": 0.00045}, "user_cross_rate"),  # a float never gets in
        ({"deployer_fee_scale": D(10)}, "deployer_fee_scale"),
        ({"deployer_fee_scale": D(-1)}, "deployer_fee_scale"),
        ({"referral_discount": D("1.5")}, "referral_discount"),
    ],
)
def test_bad_inputs_name_the_problem(kwargs, names):
    args = {
        "user_cross_rate": D("0.00045"),
        "deployer_fee_scale": D(1),
        "growth_mode": False,
        "referral_discount": D(0),
    }
    args.update(kwargs)
    with pytest.raises(FeeError, match=names):
        taker_fee_bps(**args)


@given(
    scale=st.decimals(min_value=0, max_value=D("9.99"), places=2),
    growth=st.booleans(),
)
def test_multiplier_agrees_with_the_simulator(scale, growth):
    """The simulator charges fills with its own implementation of the same formula."""
    asset = Asset(
        coin="xyz:AAA",
        dex="xyz",
        dex_index=1,
        index_in_meta=0,
        asset_id=110000,
        sz_decimals=2,
        max_leverage=10,
        start_px=D(100),
        growth_mode=growth,
    )
    assert hip3_fee_multiplier(scale, growth) == sim_multiplier(asset, scale)


@given(
    rate=st.decimals(min_value=0, max_value=D("0.001"), places=6),
    scale=st.decimals(min_value=0, max_value=D(3), places=2),
    referral=st.decimals(min_value=0, max_value=D("0.5"), places=2),
)
def test_fee_is_never_below_the_plain_rate_without_growth_or_referral(rate, scale, referral):
    plain = rate * 10_000
    fee = taker_fee_bps(user_cross_rate=rate, deployer_fee_scale=scale, growth_mode=False)
    assert fee >= plain  # a HIP-3 taker always pays at least the validator-perp rate
    discounted = taker_fee_bps(
        user_cross_rate=rate,
        deployer_fee_scale=scale,
        growth_mode=False,
        referral_discount=referral,
    )
    assert discounted <= fee


def _spec(coin: str, dex: str = "xyz", scale: str = "1", growth: bool = False) -> MarketSpec:
    return MarketSpec(
        coin=coin,
        dex=dex,
        asset=110000,
        sz_decimals=2,
        deployer_fee_scale=D(scale),
        growth_mode=growth,
    )


def test_fee_table_falls_back_until_rates_and_spec_are_known():
    table = FeeTable(D("9"))
    assert table("xyz:AAA") == D(9)  # nothing known
    table.set_spec(_spec("xyz:AAA", scale="3"))
    assert table("xyz:AAA") == D(9)  # spec but no user rate yet
    table.set_user_rates(D("0.0004"))
    assert table("xyz:AAA") == D(24)  # 4 bps x 6
    assert table("xyz:BBB") == D(9)  # a coin without spec keeps the fallback


def test_fee_table_follows_changes_and_handles_validator_perps():
    table = FeeTable(D("9"))
    table.set_user_rates(D("0.0004"), D("0.1"))
    table.set_spec(_spec("xyz:AAA", scale="1"))
    table.set_spec(_spec("BTC", dex=""))
    assert table("xyz:AAA") == D("7.2")  # 4 x 2 x 0.9
    assert table("BTC") == D("3.6")  # no deployer share on the first dex
    table.set_spec(_spec("xyz:AAA", scale="1", growth=True))
    assert table("xyz:AAA") == D("0.72")
    table.set_user_rates(D("0.0002"))
    assert table("xyz:AAA") == D("0.4")


def test_fee_table_rejects_bad_updates_and_keeps_the_old_values():
    table = FeeTable(D("9"))
    table.set_user_rates(D("0.0004"))
    table.set_spec(_spec("xyz:AAA"))
    with pytest.raises(FeeError, match="user_cross_rate"):
        table.set_user_rates(D("4"))  # bps pasted where a fraction belongs
    with pytest.raises(FeeError, match="deployer_fee_scale"):
        table.set_spec(_spec("xyz:AAA", scale="12"))
    assert table("xyz:AAA") == D(8)
    with pytest.raises(FeeError, match="fallback_bps"):
        FeeTable(D(-1))
