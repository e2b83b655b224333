"""Detector properties over generated markets: costs, caps, tick rules, per-market isolation."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import event, given
from hypothesis import strategies as st

from hip3.protocol.numbers import (
    Rounding,
    check_min_notional,
    format_price,
    format_size,
    max_price_decimals,
)
from hip3.strategy.detector import Detector, DetectorParams
from tests.strategy import Feed, spec

D = Decimal
BPS = D(10_000)


@st.composite
def prices(draw, sz_decimals: int) -> Decimal:
    """A valid book price for a market with `sz_decimals`, between ~0.01 and ~99999."""
    mantissa = draw(st.integers(min_value=10_000, max_value=99_999))
    # at least three significant digits must fit in the decimals a price may carry
    lowest = -2 - max_price_decimals(sz_decimals=sz_decimals)
    exponent = draw(st.integers(min_value=max(-6, lowest), max_value=0))
    raw = D(mantissa).scaleb(exponent)
    return D(format_price(raw, sz_decimals=sz_decimals, is_buy=False, rounding=Rounding.PASSIVE))


bps_values = st.decimals(min_value=0, max_value=30, places=1)


@st.composite
def scenarios(draw):
    szd = draw(st.integers(min_value=0, max_value=5))
    oracle = draw(prices(szd))
    # the oracle's recent path, as multiples of a 1..20 bps step
    steps = draw(st.lists(st.integers(min_value=-3, max_value=3), max_size=5))
    step_bps = D(draw(st.integers(min_value=1, max_value=20)))
    offset_bps = D(draw(st.integers(min_value=-20, max_value=300)))
    is_buy_side = draw(st.booleans())
    quote_raw = oracle * (1 - offset_bps / BPS) if is_buy_side else oracle * (1 + offset_bps / BPS)
    if quote_raw <= 0:
        quote_raw = oracle
    quote = D(format_price(quote_raw, sz_decimals=szd, is_buy=False, rounding=Rounding.PASSIVE))
    quote_notional = D(draw(st.integers(min_value=200, max_value=50_000)))
    qsz = (quote_notional / quote).quantize(D(1).scaleb(-szd))
    if qsz <= 0:
        qsz = D(1).scaleb(-szd)
    params = DetectorParams(
        taker_fee_bps=draw(bps_values),
        slippage_bps=draw(bps_values),
        min_edge_bps=draw(bps_values),
        thresholds=draw(st.sampled_from([{}, {"xyz:AAA": draw(bps_values)}])),
        size_fraction=draw(st.sampled_from([D("0.05"), D("0.1"), D("0.5"), D(1)])),
        max_order_notional=D(draw(st.integers(min_value=15, max_value=2000))),
        min_order_notional=D(11),
        boost_to_min_notional=draw(st.booleans()),
        confidence_sizing=draw(st.booleans()),
        direction_filter=draw(st.sampled_from([False, False, True])),
        min_oracle_velocity_bps=draw(st.sampled_from([0.0, 0.0, 3.0])),
        min_consecutive_oracle_moves=draw(st.sampled_from([0, 0, 1, 2])),
        signal_dedup=draw(st.booleans()),
        baseline_tracking=False,
    )
    return szd, oracle, steps, step_bps, is_buy_side, quote, qsz, params


def run(scenario):
    szd, oracle, steps, step_bps, is_buy_side, quote, qsz, params = scenario
    det = Detector(params, specs={"xyz:AAA": spec(sz_decimals=szd)})
    f = Feed(detector=det)
    px = oracle
    path = []
    for k in steps:
        px = px * (1 + k * step_bps / BPS)
        path.append(px)
    for p in [*path, oracle]:
        f.ctx(str(p))
    if is_buy_side:
        f.bbo(None, str(quote), ask_sz=str(qsz))
    else:
        f.bbo(str(quote), None, bid_sz=str(qsz))
    event("signalled" if f.signals else "no signal: " + ",".join(sorted(det.skips)))
    return f, det


def _order_price(sig, szd: int, slippage_bps: Decimal) -> str:
    """What the executor sends for this signal: quote moved by the allowance, passively."""
    slip = slippage_bps / BPS
    limit = sig.ref_px * (1 + slip) if sig.is_buy else sig.ref_px * (1 - slip)
    return format_price(limit, sz_decimals=szd, is_buy=sig.is_buy, rounding=Rounding.PASSIVE)


@given(scenarios())
def test_no_signal_unless_edge_beats_the_cost(scenario):
    f, det = run(scenario)
    _, oracle, *_, params = scenario
    for sig in f.signals:
        edge = (
            (oracle - sig.ref_px) / oracle * BPS
            if sig.is_buy
            else (sig.ref_px - oracle) / oracle * BPS
        )
        assert edge > params.taker_fee_bps + params.slippage_bps  # never below break-even
        assert edge > det.threshold_bps("xyz:AAA", params.taker_fee_bps)
        override = params.thresholds.get("xyz:AAA")
        if override is None:
            assert edge > params.taker_fee_bps + params.slippage_bps + params.min_edge_bps
        else:
            assert edge > override


@given(scenarios())
def test_size_never_above_the_caps_and_never_below_the_minimum(scenario):
    f, _ = run(scenario)
    szd, oracle, *_, qsz, params = scenario
    for sig in f.signals:
        assert sig.size > 0
        assert sig.size <= qsz  # never more than the quote shows
        assert sig.size == sig.size.quantize(D(1).scaleb(-szd))  # whole lots
        top = max(sig.ref_px, oracle) * (1 + params.slippage_bps / BPS)
        assert sig.size * top <= params.max_order_notional
        low = sig.ref_px if sig.is_buy else sig.ref_px * (1 - params.slippage_bps / BPS)
        assert sig.size * low >= params.min_order_notional


@given(scenarios())
def test_every_order_from_a_signal_passes_the_tick_and_lot_rules(scenario):
    f, _ = run(scenario)
    szd, *_, params = scenario
    for sig in f.signals:
        px = _order_price(sig, szd, params.slippage_bps)
        digits = px.replace(".", "").lstrip("0")
        decimals = len(px.partition(".")[2])
        assert "." not in px or len(digits) <= 5, px  # 5 significant figures unless integer
        assert decimals <= max_price_decimals(sz_decimals=szd), px
        assert not px.endswith(".") and not ("." in px and px.endswith("0")), px
        sz = format_size(sig.size, sz_decimals=szd)
        assert D(sz) == sig.size  # the lot rounding happened in the detector, nothing is lost
        check_min_notional(D(px), D(sz), params.min_order_notional)
        assert D(px) * D(sz) <= params.max_order_notional


_ops = st.lists(
    st.tuples(
        st.sampled_from(["ctx", "bbo", "eval"]),
        st.integers(min_value=-60, max_value=60),  # bps away from 100
        st.integers(min_value=1, max_value=400),  # quote size
    ),
    max_size=40,
)


@given(a_ops=_ops, b_ops=_ops, params_filters=st.booleans())
def test_updates_to_one_market_never_change_anothers_decisions(a_ops, b_ops, params_filters):
    params = DetectorParams(
        direction_filter=params_filters,
        baseline_tracking=True,
        baseline_min_samples=2,
        baseline_alpha=0.2,
        min_edge_above_baseline_bps=2.0 if params_filters else 0.0,
        adaptive_threshold=params_filters,
    )
    specs = {"xyz:AAA": spec("xyz:AAA"), "xyz:BBB": spec("xyz:BBB")}
    shared = Detector(params, specs=specs)
    alone = Detector(params, specs=specs)
    a = Feed("xyz:AAA", detector=shared)
    b, b_solo = Feed("xyz:BBB", detector=shared), Feed("xyz:BBB", detector=alone)

    def apply(feed: Feed, op) -> object:
        kind, bps, size = op
        px = D(100) + D(bps) / 100
        if kind == "ctx":
            return feed.ctx(str(px))
        if kind == "bbo":
            return feed.bbo(str(px - D("0.05")), str(px), bid_sz=str(size), ask_sz=str(size))
        return feed.evaluate()

    for i in range(max(len(a_ops), len(b_ops))):
        if i < len(a_ops):
            apply(a, a_ops[i])
        if i < len(b_ops):
            assert apply(b, b_ops[i]) == apply(b_solo, b_ops[i])
    t, t_solo = shared.track("xyz:BBB"), alone.track("xyz:BBB")
    if t_solo is None:
        assert t is None
    else:
        assert {s: getattr(t, s) for s in t.__slots__} == {
            s: getattr(t_solo, s) for s in t_solo.__slots__
        }


@given(ops=_ops, repeats=st.integers(min_value=1, max_value=4))
def test_evaluating_again_without_new_data_learns_nothing(ops, repeats):
    det = Detector(DetectorParams(), specs={"xyz:AAA": spec()})
    f = Feed(detector=det)
    for kind, bps, size in ops:
        px = D(100) + D(bps) / 100
        if kind == "ctx":
            f.ctx(str(px))
        else:
            f.bbo(str(px - D("0.05")), str(px), bid_sz=str(size), ask_sz=str(size))
        t = det.track("xyz:AAA")
        before = {s: getattr(t, s) for s in t.__slots__}
        for _ in range(repeats):
            f.evaluate()
        assert {s: getattr(t, s) for s in t.__slots__} == before
