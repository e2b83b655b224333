"""The full detector: threshold, each filter and the sizing, with worked numbers.

Costs in these tables: taker fee 4.5 + slippage 2 + min edge 5 = 11.5 bps unless stated.
Oracle 100 means one bp is 0.01 in price.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.market.gates import GateParams, MarketGates
from hip3.strategy.detector import Detector, DetectorParams
from tests.strategy import NS, Feed, spec

D = Decimal

# every filter off: each test below turns on the one it is about
OFF = {
    "direction_filter": False,
    "min_oracle_velocity_bps": 0.0,
    "min_consecutive_oracle_moves": 0,
    "baseline_tracking": False,
    "signal_dedup": False,
}


def make(coin: str = "xyz:AAA", sz_decimals: int = 2, fee_bps=None, gates=None, **kw) -> Feed:
    params = DetectorParams(**{**OFF, **kw})
    det = Detector(
        params, fee_bps=fee_bps, gates=gates, specs={coin: spec(coin, sz_decimals=sz_decimals)}
    )
    return Feed(coin, detector=det)


def skips(f: Feed) -> dict[str, int]:
    return dict(f.detector.skips)


# --- edge against cost ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "ask", "side", "edge"),
    [
        ("99.7", "99.8", "buy", 20),  # ask 20 bps under the oracle
        ("99.8", "99.88", "buy", 12),  # 12 > 11.5
        ("99.8", "99.885", None, None),  # 11.5 is not more than 11.5
        ("99.8", "99.9", None, None),  # 10 bps
        ("100.2", "100.3", "sell", 20),  # bid 20 bps over the oracle
        ("100.11", "100.2", None, None),  # 11 bps
        ("99.99", "100.01", None, None),  # a normal book
    ],
)
def test_edge_must_beat_fee_slippage_and_min_edge(bid, ask, side, edge):
    f = make()
    f.ctx("100")
    sig = f.bbo(bid, ask)
    if side is None:
        assert sig is None
    else:
        assert sig is not None and sig.is_buy == (side == "buy")
        assert sig.edge_bps == pytest.approx(edge)
        assert sig.ref_px == D(ask if side == "buy" else bid)
        assert sig.coin == "xyz:AAA" and sig.reason == "dislocation"


@pytest.mark.parametrize(
    ("fee", "ask", "fires"),
    [
        ("9", "99.85", False),  # 9 + 2 + 5 = 16 > 15
        ("9", "99.83", True),  # 17 > 16
        ("0.9", "99.91", True),  # growth mode: 7.9 < 9
    ],
)
def test_fee_model_sets_the_cost_per_coin(fee, ask, fires):
    f = make(fee_bps=lambda coin: D(fee))
    f.ctx("100")
    assert (f.bbo("99.7", ask) is not None) == fires


def test_unknown_fee_fails_closed():
    def no_fee(coin: str) -> Decimal:
        raise KeyError(coin)

    f = make(fee_bps=no_fee)
    f.ctx("100")
    assert f.bbo("99.5", "99.6") is None
    assert skips(f)["no_fee"] == 1


@pytest.mark.parametrize(
    ("override", "ask", "fires"),
    [
        ("25", "99.8", False),  # 20 bps under a 25 bps market threshold
        ("25", "99.74", True),  # 26 bps
        ("8", "99.91", True),  # 9 bps beats a lower override (it replaces the 11.5)
        ("1", "99.94", False),  # 6 bps: an override is floored at fee + slippage (6.5)
        ("1", "99.93", True),  # 7 bps
    ],
)
def test_per_market_threshold_override(override, ask, fires):
    f = make(thresholds={"xyz:AAA": D(override)})
    f.ctx("100")
    assert (f.bbo("99.5", ask) is not None) == fires


def test_override_applies_to_its_market_only():
    params = DetectorParams(**OFF, thresholds={"xyz:AAA": D(50)})
    det = Detector(params, specs={c: spec(c) for c in ("xyz:AAA", "xyz:BBB")})
    a, b = Feed("xyz:AAA", detector=det), Feed("xyz:BBB", detector=det)
    a.ctx("100")
    b.ctx("100")
    assert a.bbo("99.7", "99.8") is None
    assert b.bbo("99.7", "99.8") is not None


def test_stale_data_and_missing_oracle_never_signal():
    f = make()
    assert f.bbo("99.7", "99.8") is None  # no oracle yet
    f.ctx("100")
    f.m.ctx_recv_ns -= 9 * NS  # the context is 9 s old (> freshness.max_ctx_age_s 8)
    assert f.evaluate() is None
    assert skips(f) == {"no_oracle": 1, "stale": 1}


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fires", "reason"),
    [
        (["100.1", "100"], False, "direction"),  # last move down, book says buy
        (["99.9", "100"], True, None),  # last move up (10 bps)
        (["100"], False, "direction"),  # no move yet
    ],
)
def test_direction_filter(path, fires, reason):
    f = make(direction_filter=True)
    f.oracle_path(*path)
    assert (f.bbo("99.7", "99.8") is not None) == fires
    if reason:
        assert skips(f)[reason] == 1


def test_direction_filter_mirrors_for_sells():
    f = make(direction_filter=True)
    f.oracle_path("99.9", "100")  # up
    assert f.bbo("100.2", "100.3") is None  # sell wants a down move
    f.ctx("99.9")
    sig = f.bbo("100.1", "100.2")  # 20.02 bps over 99.9
    assert sig is not None and not sig.is_buy


@pytest.mark.parametrize(
    ("path", "fires"),
    [
        (["100", "100.025"], False),  # 2.5 bps move < 3
        (["100", "100.05"], True),  # 5 bps
        (["100", "100.05", "100.06"], False),  # then a 1 bps wiggle: the oracle stalled
    ],
)
def test_velocity_filter(path, fires):
    f = make(min_oracle_velocity_bps=3.0)
    f.oracle_path(*path)
    sig = f.bbo("99.7", "99.8")
    assert (sig is not None) == fires
    if not fires:
        assert skips(f)["velocity"] == 1


@pytest.mark.parametrize(
    ("path", "fires"),
    [
        (["100", "100.05"], False),  # one up move
        (["100", "100.05", "100.1"], True),  # two in a row
        (["100", "100.05", "100", "100.05"], False),  # a down move resets the run
        (["100", "100.05", "100.06", "100.1"], True),  # a wiggle neither adds nor resets
    ],
)
def test_consecutive_move_filter(path, fires):
    f = make(min_consecutive_oracle_moves=2)
    f.oracle_path(*path)
    sig = f.bbo("99.5", "99.6")
    assert (sig is not None) == fires


def test_small_changes_accumulate_into_a_move():
    f = make()
    f.oracle_path("100", "100.01", "100.02")  # 1 bp, then 2 bp from the last counted price
    t = f.detector.track("xyz:AAA")
    assert (t.ups, t.downs, t.velocity) == (1, 0, pytest.approx(2.0))


@pytest.mark.parametrize(
    ("lag_s", "fires"),
    [
        (0.01, False),  # the oracle moved 10 ms ago: the book may still react
        (0.05, True),
        (0.3, True),
        (0.7, True),
        (1.0, False),  # 1 s: the book had time to react; this is not lag
    ],
)
def test_quote_lag_bounds(lag_s, fires):
    f = make(min_quote_lag_s=0.05, max_quote_lag_s=0.7)
    f.oracle_path("99.9", "100")
    sig = f.bbo("99.7", "99.8", dt_s=lag_s)
    assert (sig is not None) == fires
    if not fires:
        assert skips(f)["quote_lag"] == 1


def test_quote_lag_needs_an_oracle_change():
    f = make(max_quote_lag_s=0.7)
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is None
    assert skips(f)["quote_lag"] == 1


def _baseline_feed(min_edge_above: float) -> Feed:
    f = make(
        baseline_tracking=True,
        baseline_alpha=0.5,
        baseline_min_samples=3,
        min_edge_above_baseline_bps=min_edge_above,
    )
    f.ctx("100")
    for _ in range(5):
        assert f.bbo("99.8", "99.9") is None  # mid 99.85: the book sits 15 bps under
    assert f.detector.track("xyz:AAA").baseline == pytest.approx(15)
    return f


@pytest.mark.parametrize(("min_above", "fires"), [(12.0, False), (8.0, True), (0.0, True)])
def test_baseline_gap_is_not_edge(min_above, fires):
    f = _baseline_feed(min_above)
    sig = f.bbo("99.7", "99.75")  # 25 bps raw, 25 - 15 = 10 above the usual gap
    assert (sig is not None) == fires
    if not fires:
        assert skips(f)["baseline"] == 1


def test_baseline_learns_after_the_decision_and_only_from_new_data():
    f = _baseline_feed(12.0)
    t = f.detector.track("xyz:AAA")
    n = t.baseline_n
    f.bbo("99.6", "99.65")  # 35 bps raw, 20 above: fires, judged against the old 15
    assert f.signals
    assert t.baseline_n == n + 1 and t.baseline > 15  # learned afterwards
    for _ in range(5):
        f.evaluate()  # no new update: nothing learned
    assert t.baseline_n == n + 1


def test_dedup_one_signal_per_oracle_price_and_side():
    f = make(signal_dedup=True)
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is not None
    assert f.bbo("99.7", "99.79") is None  # same oracle
    assert skips(f)["dedup"] == 1
    assert f.bbo("100.2", "100.3") is not None  # the other side is separate
    f.ctx("100.01")
    assert f.bbo("99.7", "99.8") is not None


def test_entry_spread_limit():
    f = make(max_entry_spread_bps=30.0)
    f.ctx("100")
    assert f.bbo("99.4", "99.8") is None  # 40 bps wide
    assert skips(f)["entry_spread"] == 1
    assert f.bbo("99.55", "99.8") is not None  # 25 bps wide


def test_adaptive_threshold_uses_this_markets_spread():
    f = make(adaptive_threshold=True, spread_threshold_multiplier=1.5)
    f.ctx("100")
    for _ in range(3):
        f.bbo("99.9", "100.1")  # 20 bps spreads: EWMA 20, adaptive threshold 30
    assert f.bbo("99.55", "99.75") is None  # 25 bps edge > 11.5 but < 30
    assert skips(f)["adaptive_threshold"] == 1
    assert f.bbo("99.45", "99.65") is not None  # 35 bps


def test_confidence_worked_example():
    """raw 20, cost 11.5, last move 10 bps (1 in a row), deep book, no spread history yet:
    0.30*(8.5/23) + 0.20*((10-3)/9) + 0.20*(1/3) + 0.15*1 + 0.15*0.5."""
    f = make(min_oracle_velocity_bps=3.0)
    f.oracle_path("99.9", "100")
    assert f.bbo("99.7", "99.8", ask_sz="100") is not None
    expected = 0.30 * (8.5 / 23) + 0.20 * (7 / 9) + 0.20 / 3 + 0.15 + 0.075
    assert f.detector.last_info.confidence == pytest.approx(expected, rel=1e-3)


def test_min_confidence_filter():
    f = make(min_confidence=0.6, min_oracle_velocity_bps=3.0)
    f.oracle_path("99.9", "100")
    assert f.bbo("99.7", "99.8") is None  # 0.558 < 0.6
    assert skips(f)["confidence"] == 1
    f.ctx("100.1")  # a second up move of 10 bps lifts the run factor
    assert f.bbo("99.8", "99.9") is not None


# --- sizing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ask_sz", "sz_decimals", "boost", "size"),
    [
        # $2994 book: liquidity (2994-500)/4500 = 0.554; 30 x 0.1 x 0.554 = 1.66, capped at
        # $50 x 0.99 / (100 x 1.0002) = 0.4949 -> 0.49
        ("30", 2, True, "0.49"),
        # $598.8 book: 6 x 0.1 x 0.022 = 0.013 -> 0.01 ($1): boosted to ceil(11/99.8) = 0.12
        ("6", 2, True, "0.12"),
        ("6", 2, False, None),  # without the boost it is dropped
        ("5", 2, True, None),  # $499 book: too thin to take at all
        ("30", 0, True, None),  # whole units: 1 unit is $100 > the $50 cap
        ("30", 3, True, "0.494"),
    ],
)
def test_sizing_by_book_notional(ask_sz, sz_decimals, boost, size):
    f = make(sz_decimals=sz_decimals, boost_to_min_notional=boost)
    f.ctx("100")
    sig = f.bbo("99.7", "99.8", ask_sz=ask_sz)
    if size is None:
        assert sig is None
    else:
        assert sig is not None and sig.size == D(size)


def test_normal_book_sizes_at_the_full_fraction():
    f = make(max_order_notional=D(1000))
    f.ctx("100")
    sig = f.bbo("99.7", "99.8", ask_sz="60")  # $5988 book >= $5000: 60 x 0.1 = 6
    assert sig is not None and sig.size == D(6)


def test_sell_minimum_is_checked_at_the_lowest_order_price():
    # bid 100.2; the order may go out 2 bps lower (100.18): 0.11 x 100.18 = 11.02 >= 11,
    # while 0.10 x 100.2 = 10.02 is under the minimum
    f = make(sz_decimals=2)
    f.ctx("100")
    sig = f.bbo("100.2", "100.3", bid_sz="6")
    assert sig is not None and not sig.is_buy
    assert sig.size == D("0.11")
    assert sig.size * D("100.18") >= D(11)


def test_missing_spec_fails_closed():
    det = Detector(DetectorParams(**OFF), specs={})
    f = Feed(detector=det)
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is None
    assert det.skips["no_spec"] == 1


def test_spec_source_may_be_a_callable():
    det = Detector(DetectorParams(**OFF), specs=lambda coin: spec(coin, sz_decimals=1))
    f = Feed(detector=det)
    f.ctx("100")
    sig = f.bbo("99.7", "99.8", ask_sz="30")
    assert sig is not None and sig.size == D("0.4")
    with pytest.raises(TypeError, match="specs"):
        Detector(DetectorParams(), specs=42)  # type: ignore[arg-type]


# --- gates ----------------------------------------------------------------------------------


def test_gates_block_and_reduce():
    gp = GateParams(max_mark_mid_divergence_bps=0, spread_min_samples=3)
    gates = {"xyz:AAA": MarketGates("xyz:AAA", gp)}
    f = make(gates=gates, max_order_notional=D(1000))
    f.ctx("100")
    for _ in range(3):
        f.bbo("99.95", "100.05")  # 10 bps spreads
    sig = f.bbo("99.4", "99.8", ask_sz="60")  # 40 bps wide: reduce tier (> 30, <= 60)
    assert sig is not None and sig.size == D("1.2")  # 6 x 0.2
    gated = f.detector.skips["gated"]  # the first ctx, before any book, was gated too
    assert f.bbo(None, None) is None  # the exchange empties the book: halted
    assert f.detector.skips["gated"] == gated + 1
    assert gates["xyz:AAA"].counts["halted"] == 1


def test_a_market_without_gates_is_blocked_when_gates_are_in_use():
    f = make(gates={})
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is None
    assert skips(f) == {"no_gate": 2}  # the ctx and the bbo update


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "names"),
    [
        ({"size_fraction": D(2)}, "size_fraction"),
        ({"max_order_notional": D(10)}, "min_order_notional"),
        ({"normal_book_notional": D(100)}, "normal_book_notional"),
        ({"min_quote_lag_s": 1.0, "max_quote_lag_s": 0.5}, "min_quote_lag_s"),
        ({"thresholds": {"xyz:AAA": D(-1)}}, "thresholds"),
        ({"baseline_alpha": 0.0}, "baseline_alpha"),
        ({"min_confidence": 2.0}, "min_confidence"),
    ],
)
def test_bad_params_are_named(kw, names):
    with pytest.raises(ValueError, match=names):
        DetectorParams(**kw)


def test_params_from_the_default_config():
    from hip3.config import load_config

    cfg = load_config(overrides={"markets": [{"coin": "xyz:AAA", "threshold_bps": 20.0}]})
    p = DetectorParams.from_config(cfg.detector, cfg.markets)
    assert p.thresholds == {"xyz:AAA": D(20)}
    assert p.taker_fee_bps == D("4.5") and p.min_book_notional == D(500)
    assert p.direction_filter and p.min_consecutive_oracle_moves == 2


# --- the fee and threshold kept per coin ----------------------------------------------------


def test_a_new_fee_from_the_table_moves_the_threshold_at_once():
    from hip3.strategy.fees import FeeTable

    fees = FeeTable(D("4.5"))
    fees.set_spec(spec())
    fees.set_user_rates(D("0.00045"))  # dex scale 1: 9 bps, cost 9 + 2 + 5 = 16
    f = make(fee_bps=fees)
    f.ctx("100")
    assert f.bbo("99.7", "99.83") is not None  # 17 bps
    fees.set_user_rates(D("0.0005"))  # 10 bps: cost 17
    assert f.bbo("99.7", "99.83", dt_s=0.02) is None
    assert f.bbo("99.7", "99.82", dt_s=0.02) is not None  # 18 bps
    assert f.detector.last_info.fee_bps == 10 and f.detector.last_info.threshold_bps == 17
    fees.set_spec(spec(growth_mode=True))  # a tenth of the fee: cost 1 + 2 + 5 = 8
    assert f.bbo("99.7", "99.91", dt_s=0.02) is not None  # 9 bps
    assert f.detector.last_info.threshold_bps == 8


def test_a_fee_equal_in_value_is_still_the_one_reported():
    # "4.5" and "4.50" are equal Decimals, but the journal writes what the fee source said
    answers = iter([D("4.5"), D("4.50")])
    f = make(fee_bps=lambda coin: next(answers))
    f.ctx("100")
    f.bbo("99.7", "99.8")
    first = f.detector.last_info
    f.bbo("99.7", "99.79")
    second = f.detector.last_info
    assert (str(first.fee_bps), str(first.threshold_bps)) == ("4.5", "11.5")
    assert (str(second.fee_bps), str(second.threshold_bps)) == ("4.50", "11.50")


def test_a_fee_that_becomes_known_opens_the_market():
    known: dict[str, Decimal] = {}
    f = make(fee_bps=lambda coin: known[coin])
    f.ctx("100")
    assert f.bbo("99.7", "99.8") is None and skips(f)["no_fee"] == 1
    assert f.bbo("99.7", "99.79") is None and skips(f)["no_fee"] == 2  # asked again, every time
    known["xyz:AAA"] = D("-1")  # impossible: still closed
    assert f.bbo("99.7", "99.78") is None and skips(f)["no_fee"] == 3
    known["xyz:AAA"] = D("4.5")
    assert f.bbo("99.7", "99.77") is not None
