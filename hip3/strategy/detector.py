"""The full oracle/book dislocation detector.

A buy signal needs the ask to sit below the oracle by more than the cost threshold:

    raw edge (bps) = (oracle - ask) / oracle * 10000       (sell: (bid - oracle) / oracle)
    threshold      = max(market override or fee + slippage + min_edge,   # the cost
                         fee + slippage,                                 # never below break-even
                         spread EWMA * multiplier)                       # if adaptive

`fee` is the HIP-3 taker fee of `hip3.strategy.fees` for that coin. With session-aware sizing
the threshold and the size are multiplied by the session's factors (`hip3.strategy.sizing`), by
the exchange time of the book being judged. With priority fees on (`hip3.strategy.priority`),
the rate an entry pays is one more cost on top of the threshold: the signal carries the rate
its edge covers, and an edge that covers the threshold but not the rate is signalled without
priority.

A signal must then pass, in this order: the oracle direction filter (the last counted oracle
move points the way of the trade), the velocity filter (that move was at least N bps), the
consecutive-move filter, the quote-lag bounds (time since the oracle last changed), the
baseline filter (edge beyond the market's usual oracle-mid gap), and a minimum confidence.
Size comes from the quote's notional: nothing below `min_book_notional`, a fraction of the quote
scaling up to `normal_book_notional`, capped in dollars, rounded down to the lot, and dropped
when under the minimum order notional.

Each market's statistics (oracle moves, baseline EWMA, last signalled oracle) live in its own
`_Track` and learn only from that market's own new updates, counted by the `MarketState` update
counters: evaluating one market never moves another's numbers, and evaluating the same data
twice learns nothing twice. The current sample is learned *after* the decision, so a snapshot
never shifts the baseline it is judged against. The spread EWMA is not the detector's own: it
is the market's one `SpreadEwma` (on `MarketState`), the same one the spread-shock gate judges
with, read as it was before the latest book. Without gates, stale data (the market state's one
freshness definition) is skipped here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from hip3.events import Signal
from hip3.market.gates import MarketGates
from hip3.market.state import MarketSpec, MarketState
from hip3.strategy.priority import PriorityPolicy, bps_of_rate
from hip3.strategy.sizing import SessionSchedule

if TYPE_CHECKING:
    from hip3.config import DetectorConfig, MarketConfig

__all__ = ["Detector", "DetectorParams", "SignalInfo"]

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HALF = Decimal("0.5")

SpecSource = Mapping[str, MarketSpec] | Callable[[str], MarketSpec | None]


def _unit(x: float) -> float:
    """x clamped to [0, 1]."""
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


@dataclass(slots=True, frozen=True)
class DetectorParams:
    """Every knob of the detector; money and bps that shape orders are Decimal."""

    taker_fee_bps: Decimal = Decimal("4.5")  # used when no fee model is given
    slippage_bps: Decimal = Decimal(2)
    min_edge_bps: Decimal = Decimal(5)
    thresholds: Mapping[str, Decimal] = field(default_factory=dict)  # per-market cost override
    size_fraction: Decimal = Decimal("0.1")
    max_order_notional: Decimal = Decimal(50)
    min_order_notional: Decimal = Decimal(11)
    notional_buffer: Decimal = Decimal("0.01")
    boost_to_min_notional: bool = True
    min_book_notional: Decimal = Decimal(500)
    normal_book_notional: Decimal = Decimal(5000)
    max_entry_spread_bps: float = 0.0
    signal_dedup: bool = True
    oracle_min_move_bps: float = 2.0
    direction_filter: bool = True
    min_oracle_velocity_bps: float = 3.0
    min_consecutive_oracle_moves: int = 2
    min_quote_lag_s: float = 0.0
    max_quote_lag_s: float = 0.0
    adaptive_threshold: bool = False
    spread_threshold_multiplier: float = 1.5
    baseline_tracking: bool = True
    baseline_alpha: float = 0.001
    baseline_min_samples: int = 100
    min_edge_above_baseline_bps: float = 0.0
    min_confidence: float = 0.0
    confidence_sizing: bool = False
    # more edge and less size around the US session (hip3.strategy.sizing), off by default
    session: SessionSchedule = field(default_factory=SessionSchedule)
    # derived from the above when the parameters are made: 1 ± the executor's slippage
    # allowance, and the dollar cap less its buffer
    slip_up: Decimal = field(init=False, repr=False, compare=False)
    slip_down: Decimal = field(init=False, repr=False, compare=False)
    order_budget: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid DetectorParams: " + "; ".join(problems))
        slip = self.slippage_bps / _BPS
        object.__setattr__(self, "slip_up", _ONE + slip)
        object.__setattr__(self, "slip_down", _ONE - slip)
        object.__setattr__(
            self, "order_budget", self.max_order_notional * (_ONE - self.notional_buffer)
        )

    def _problems(self) -> Iterable[str]:
        for name in ("taker_fee_bps", "slippage_bps", "min_edge_bps", "min_book_notional"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not v.is_finite() or v < 0:
                yield f"{name} = {v!r}: expected a finite Decimal >= 0"
        for name in ("max_order_notional", "min_order_notional", "size_fraction"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not v.is_finite() or v <= 0:
                yield f"{name} = {v!r}: expected a finite Decimal > 0"
        if isinstance(self.size_fraction, Decimal) and self.size_fraction > 1:
            yield f"size_fraction = {self.size_fraction}: expected <= 1"
        if not (isinstance(self.notional_buffer, Decimal) and 0 <= self.notional_buffer < 1):
            yield f"notional_buffer = {self.notional_buffer!r}: expected 0 <= x < 1"
        if self.min_order_notional > self.max_order_notional * (1 - self.notional_buffer):
            yield (
                f"min_order_notional = {self.min_order_notional}: expected below "
                f"max_order_notional after the buffer ({self.max_order_notional})"
            )
        if not self.normal_book_notional > self.min_book_notional:
            yield (
                f"normal_book_notional = {self.normal_book_notional}: expected > "
                f"min_book_notional ({self.min_book_notional})"
            )
        for coin, t in self.thresholds.items():
            if not isinstance(t, Decimal) or not t.is_finite() or t < 0:
                yield f"thresholds[{coin!r}] = {t!r}: expected a finite Decimal >= 0"
        if not 0 < self.baseline_alpha <= 1:
            yield f"baseline_alpha = {self.baseline_alpha!r}: expected 0 < x <= 1"
        if self.max_quote_lag_s and self.min_quote_lag_s > self.max_quote_lag_s:
            yield (
                f"min_quote_lag_s = {self.min_quote_lag_s}: expected <= max_quote_lag_s "
                f"({self.max_quote_lag_s})"
            )
        if not 0 <= self.min_confidence <= 1:
            yield f"min_confidence = {self.min_confidence!r}: expected 0 <= x <= 1"
        if self.min_consecutive_oracle_moves < 0 or self.baseline_min_samples < 0:
            yield "min_consecutive_oracle_moves and baseline_min_samples must be >= 0"

    @classmethod
    def from_config(cls, d: DetectorConfig, markets: Iterable[MarketConfig] = ()) -> DetectorParams:
        from hip3.config import as_decimal

        return cls(
            taker_fee_bps=as_decimal(d.taker_fee_bps),
            slippage_bps=as_decimal(d.slippage_bps),
            min_edge_bps=as_decimal(d.min_edge_bps),
            thresholds={
                m.coin: as_decimal(m.threshold_bps) for m in markets if m.threshold_bps is not None
            },
            size_fraction=as_decimal(d.size_fraction),
            max_order_notional=as_decimal(d.max_order_notional_usd),
            min_order_notional=as_decimal(d.min_order_notional_usd),
            notional_buffer=as_decimal(d.notional_buffer),
            boost_to_min_notional=d.boost_to_min_notional,
            min_book_notional=as_decimal(d.min_book_notional_usd),
            normal_book_notional=as_decimal(d.normal_book_notional_usd),
            max_entry_spread_bps=d.max_entry_spread_bps,
            signal_dedup=d.signal_dedup,
            oracle_min_move_bps=d.oracle_min_move_bps,
            direction_filter=d.direction_filter,
            min_oracle_velocity_bps=d.min_oracle_velocity_bps,
            min_consecutive_oracle_moves=d.min_consecutive_oracle_moves,
            min_quote_lag_s=d.min_quote_lag_s,
            max_quote_lag_s=d.max_quote_lag_s,
            adaptive_threshold=d.adaptive_threshold,
            spread_threshold_multiplier=d.spread_threshold_multiplier,
            baseline_tracking=d.baseline_tracking,
            baseline_alpha=d.baseline_alpha,
            baseline_min_samples=d.baseline_min_samples,
            min_edge_above_baseline_bps=d.min_edge_above_baseline_bps,
            min_confidence=d.min_confidence,
            confidence_sizing=d.confidence_sizing,
            session=SessionSchedule.from_config(d),
        )


@dataclass(slots=True)
class SignalInfo:
    """Why the last signal fired (for the journal and logs)."""

    coin: str
    is_buy: bool
    raw_edge_bps: Decimal
    threshold_bps: Decimal
    fee_bps: Decimal
    oracle_px: Decimal
    quote_px: Decimal
    quote_sz: Decimal
    velocity_bps: float
    consecutive_moves: int
    quote_lag_s: float | None
    baseline_gap_bps: float | None
    confidence: float
    liquidity_factor: Decimal
    size_factor: Decimal
    priority_bps: Decimal = _ZERO  # the priority fee rate the entry pays (cost beyond threshold)


class _Track:
    """One market's detector memory."""

    __slots__ = (
        "baseline",
        "baseline_n",
        "bbo_seen",
        "ctx_seen",
        "downs",
        "last_buy_oracle",
        "last_oracle",
        "last_sell_oracle",
        "learned_bbo",
        "learned_ctx",
        "oracle_changed_ns",
        "ref_oracle",
        "ups",
        "velocity",
    )

    def __init__(self) -> None:
        self.ctx_seen = 0
        self.bbo_seen = 0
        self.learned_ctx = 0
        self.learned_bbo = 0
        self.last_oracle: Decimal | None = None
        self.ref_oracle: Decimal | None = None
        self.oracle_changed_ns: int | None = None
        self.ups = 0
        self.downs = 0
        self.velocity = 0.0
        self.baseline: float | None = None
        self.baseline_n = 0
        self.last_buy_oracle: Decimal | None = None
        self.last_sell_oracle: Decimal | None = None


class Detector:
    """evaluate(m, now_ns) -> Signal | None, called on every update of market `m`."""

    def __init__(
        self,
        params: DetectorParams,
        *,
        fee_bps: Callable[[str], Decimal] | None = None,
        gates: dict[str, MarketGates] | None = None,
        specs: SpecSource | None = None,
        priority: PriorityPolicy | None = None,
    ) -> None:
        self.p = params
        # None or mode "off": entries carry no priority fee
        self.priority = priority if priority is not None and priority.enabled else None
        self.fee_bps = fee_bps
        self.gates = gates
        self._spec_of: Callable[[str], MarketSpec | None] | None
        if specs is None:
            self._spec_of = None
        elif isinstance(specs, Mapping):
            self._spec_of = specs.get
        elif callable(specs):
            self._spec_of = specs
        else:
            raise TypeError(f"specs must be a mapping or a callable, got {type(specs).__name__}")
        self._tracks: dict[str, _Track] = {}
        self._costs: dict[str, tuple[Decimal, Decimal]] = {}  # coin -> (fee, threshold): _cost
        self.signals = 0
        self.skips: Counter[str] = Counter()
        self.last_info: SignalInfo | None = None

    # -- public --------------------------------------------------------------------------------

    def evaluate(self, m: MarketState, now_ns: int) -> Signal | None:
        t = self._tracks.get(m.coin)
        if t is None:
            t = self._tracks[m.coin] = _Track()
        if m.ctx_updates != t.ctx_seen:
            t.ctx_seen = m.ctx_updates
            self._observe_oracle(t, m)
        sig = self._decide(t, m, now_ns)
        if m.bbo_updates != t.learned_bbo or m.ctx_updates != t.learned_ctx:
            t.learned_bbo, t.learned_ctx = m.bbo_updates, m.ctx_updates
            self._learn(t, m)
        return sig

    def track(self, coin: str) -> _Track | None:
        """A market's memory, for tests and diagnostics."""
        return self._tracks.get(coin)

    def threshold_bps(self, coin: str, fee: Decimal) -> Decimal:
        """The cost an edge must beat on `coin` before the adaptive spread term."""
        p = self.p
        break_even = fee + p.slippage_bps
        override = p.thresholds.get(coin)
        cost = break_even + p.min_edge_bps if override is None else override
        # an override below fee + slippage could only ever lose money: it is floored there
        return cost if cost > break_even else break_even

    # -- state ---------------------------------------------------------------------------------

    def _observe_oracle(self, t: _Track, m: MarketState) -> None:
        oracle = m.oracle_px
        if oracle is None or oracle <= 0:
            return
        if t.last_oracle is None:
            t.last_oracle = t.ref_oracle = oracle
            return
        if oracle == t.last_oracle:
            return
        t.last_oracle = oracle
        t.oracle_changed_ns = m.ctx_recv_ns
        ref = t.ref_oracle
        change = float((oracle - ref) / ref) * 10_000  # type: ignore[operator]
        if abs(change) < self.p.oracle_min_move_bps:
            # a wiggle: not a move, and the reference stays put so slow drift still adds up
            t.velocity = 0.0
            return
        t.ref_oracle = oracle
        t.velocity = abs(change)
        if change > 0:
            t.ups += 1
            t.downs = 0
        else:
            t.downs += 1
            t.ups = 0

    def _learn(self, t: _Track, m: MarketState) -> None:
        oracle_px = m.oracle_px
        if not self.p.baseline_tracking or oracle_px is None or oracle_px <= 0:
            return
        # statistics only: floats are exact enough and several times cheaper than Decimal
        bid, ask = m.bid_f, m.ask_f
        if bid <= 0 or ask <= bid:
            return
        oracle = m.oracle_f
        gap = (oracle - (bid + ask) / 2) / oracle * 10_000
        base = t.baseline
        t.baseline = gap if base is None else base + self.p.baseline_alpha * (gap - base)
        t.baseline_n += 1

    # -- decision ------------------------------------------------------------------------------

    def _skip(self, reason: str) -> None:
        self.skips[reason] += 1

    def _decide(self, t: _Track, m: MarketState, now_ns: int) -> Signal | None:
        p = self.p
        oracle = m.oracle_px
        # prices are compared with the Decimal _ZERO: an int 0 is converted on every comparison
        if oracle is None or oracle <= _ZERO:
            self._skip("no_oracle")
            return None
        size_factor = _ONE
        if self.gates is not None:
            gate = self.gates.get(m.coin)
            if gate is None:
                self._skip("no_gate")
                return None
            verdict = gate.check(m, now_ns)
            if not verdict.ok:
                self._skip("gated")
                return None
            size_factor = verdict.size_factor
        elif m.stale_reason(now_ns) is not None:
            self._skip("stale")
            return None

        # The raw edge has the sign of (oracle - ask) for a buy, (bid - oracle) for a sell (the
        # oracle is positive), so the side is chosen by comparing prices and only a quote beyond
        # the oracle pays for the Decimal division.
        ask, bid = m.ask_px, m.bid_px
        if ask is not None and m.ask_sz and ask > _ZERO and m.ask_sz > _ZERO and ask < oracle:
            is_buy, px, qsz = True, ask, m.ask_sz
            raw = (oracle - ask) / oracle * _BPS
        elif bid is not None and m.bid_sz and bid > _ZERO and m.bid_sz > _ZERO and bid > oracle:
            is_buy, px, qsz = False, bid, m.bid_sz
            raw = (bid - oracle) / oracle * _BPS
        else:
            return None  # the book is on the right side of the oracle: the usual case

        coin = m.coin
        cost = self._cost(coin)
        if cost is None:
            return None
        fee, threshold = cost
        if p.session.enabled:
            # the session by the exchange's own time of this book
            threshold_mult, session_size = p.session.multipliers(m.bbo_time_ms or 0)
            threshold = threshold * threshold_mult
            size_factor = size_factor * session_size
        if raw <= threshold:
            return None
        spread_ewma = m.spread.before  # the market's one spread EWMA, as the gates judge it
        if (
            p.adaptive_threshold
            and spread_ewma is not None
            and raw <= spread_ewma * p.spread_threshold_multiplier
        ):
            self._skip("adaptive_threshold")
            return None

        if p.signal_dedup and oracle == (t.last_buy_oracle if is_buy else t.last_sell_oracle):
            self._skip("dedup")
            return None
        if p.max_entry_spread_bps and bid is not None and ask is not None and ask > bid:
            spread = float((ask - bid) / ((ask + bid) / 2)) * 10_000
            if spread > p.max_entry_spread_bps:
                self._skip("entry_spread")
                return None

        moves = t.ups if is_buy else t.downs
        if p.direction_filter and moves == 0:
            self._skip("direction")
            return None
        if p.min_oracle_velocity_bps and t.velocity < p.min_oracle_velocity_bps:
            self._skip("velocity")
            return None
        if p.min_consecutive_oracle_moves and moves < p.min_consecutive_oracle_moves:
            self._skip("consecutive")
            return None

        lag_s: float | None = None
        if t.oracle_changed_ns is not None:
            lag_s = (now_ns - t.oracle_changed_ns) / 1e9
        if p.min_quote_lag_s or p.max_quote_lag_s:
            if lag_s is None:
                self._skip("quote_lag")
                return None
            if (p.min_quote_lag_s and lag_s < p.min_quote_lag_s) or (
                p.max_quote_lag_s and lag_s > p.max_quote_lag_s
            ):
                self._skip("quote_lag")
                return None

        raw_f = float(raw)
        gap: float | None = None
        if (
            p.baseline_tracking
            and t.baseline is not None
            and t.baseline_n >= p.baseline_min_samples
        ):
            gap = t.baseline
            # a book that always sits below the oracle offers that gap as no edge for a buy
            usual = max(0.0, gap) if is_buy else max(0.0, -gap)
            if p.min_edge_above_baseline_bps and raw_f - usual < p.min_edge_above_baseline_bps:
                self._skip("baseline")
                return None

        liq = self._liquidity(qsz * px)
        if liq <= 0:
            self._skip("thin_book")
            return None
        confidence = self._confidence(
            raw_f, float(threshold), t.velocity, moves, float(liq), spread_ewma
        )
        if p.min_confidence and confidence < p.min_confidence:
            self._skip("confidence")
            return None

        size = self._size(m, is_buy, px, qsz, oracle, liq, confidence, size_factor)
        if size is None:
            return None
        if is_buy:
            t.last_buy_oracle = oracle
        else:
            t.last_sell_oracle = oracle
        rate = 0 if self.priority is None else self.priority.entry_rate(coin, raw, threshold)
        self.signals += 1
        self.last_info = SignalInfo(
            coin=coin,
            is_buy=is_buy,
            raw_edge_bps=raw,
            threshold_bps=threshold,
            fee_bps=fee,
            oracle_px=oracle,
            quote_px=px,
            quote_sz=qsz,
            velocity_bps=t.velocity,
            consecutive_moves=moves,
            quote_lag_s=lag_s,
            baseline_gap_bps=gap,
            confidence=confidence,
            liquidity_factor=liq,
            size_factor=size_factor,
            priority_bps=bps_of_rate(rate) if rate else _ZERO,
        )
        return Signal(coin=coin, is_buy=is_buy, size=size, ref_px=px, edge_bps=raw_f, priority=rate)

    def _cost(self, coin: str) -> tuple[Decimal, Decimal] | None:
        """The coin's taker fee and the threshold before the adaptive term; None (and a
        "no_fee" skip) while its fee is unknown or impossible.

        Both are kept per coin beside the fee they were made from: the fee table hands out
        the same Decimal until an input of the fee changes (the user's rates, the market's
        spec), so a fee that is that very object needs neither its checks nor its threshold
        again; any other fee, even an equal one ("4.50" for "4.5"), is checked and costed
        afresh, so what is journaled is always what the fee source said."""
        fee = self._fee(coin)
        kept = self._costs.get(coin)
        if kept is not None and kept[0] is fee:
            return kept
        fee = self._checked_fee(fee)
        if fee is None:
            return None
        kept = self._costs[coin] = (fee, self.threshold_bps(coin, fee))
        return kept

    def _fee(self, coin: str) -> object:
        """The fee source's answer, unchecked (`_checked_fee` judges it)."""
        if self.fee_bps is None:
            return self.p.taker_fee_bps
        try:
            return self.fee_bps(coin)
        except (LookupError, ValueError, ArithmeticError):
            return None

    def _checked_fee(self, fee: object) -> Decimal | None:
        if not isinstance(fee, Decimal) or not fee.is_finite() or fee < 0:
            self._skip("no_fee")  # unknown cost: fail closed
            return None
        return fee

    def _liquidity(self, book: Decimal) -> Decimal:
        lo, hi = self.p.min_book_notional, self.p.normal_book_notional
        if book <= lo:
            return _ZERO
        if book >= hi:
            return _ONE
        return (book - lo) / (hi - lo)

    def _confidence(
        self,
        raw: float,
        cost: float,
        velocity: float,
        moves: int,
        liquidity: float,
        spread_ewma: float | None,
    ) -> float:
        """0..1: how much this dislocation looks like the ones worth taking.

        Weighted sum of the edge beyond cost (full at 3x cost), the oracle's speed (full at
        4x the velocity floor), the run of same-way moves (full at 3), the book's depth and
        how tight the market usually is relative to the cost.
        """
        edge = 1.0 if cost <= 0 else _unit((raw - cost) / (2 * cost))
        p = self.p
        floor = p.min_oracle_velocity_bps  # the largest of the velocity floor, a move, 1 bps
        if p.oracle_min_move_bps > floor:
            floor = p.oracle_min_move_bps
        if floor < 1.0:
            floor = 1.0
        speed = _unit((velocity - floor) / (3 * floor))
        run = 1.0 if moves >= 3 else moves / 3
        if spread_ewma is None or cost <= 0:
            tight = 0.5
        elif spread_ewma <= cost:
            tight = 1.0
        elif spread_ewma >= 3 * cost:
            tight = 0.0
        else:
            tight = 1.0 - (spread_ewma - cost) / (2 * cost)
        return 0.30 * edge + 0.20 * speed + 0.20 * run + 0.15 * liquidity + 0.15 * tight

    def _size(
        self,
        m: MarketState,
        is_buy: bool,
        px: Decimal,
        qsz: Decimal,
        oracle: Decimal,
        liq: Decimal,
        confidence: float,
        size_factor: Decimal,
    ) -> Decimal | None:
        p = self.p
        spec = self._spec_of(m.coin) if self._spec_of is not None else None
        if spec is None:
            self._skip("no_spec")
            return None
        lot = _ONE.scaleb(-spec.sz_decimals)
        # value the order at the highest price it could be booked at (quote plus the
        # executor's allowance, or the mark/oracle if higher) so the dollar cap holds there too
        top = max(px, oracle)
        mark = m.mark_px
        if mark is not None and mark > top:
            top = mark
        top = top * p.slip_up
        # and the minimum at the lowest price a sell could be sent at
        low = px if is_buy else px * p.slip_down
        budget = p.order_budget

        want = qsz * p.size_fraction * liq * size_factor
        if p.confidence_sizing:
            want = want * (_HALF + _HALF * Decimal(repr(round(confidence, 6))))
        cap = budget / top
        size = (want if want < cap else cap).quantize(lot, rounding=ROUND_DOWN)
        if size > 0 and size * low >= p.min_order_notional:
            return size
        if p.boost_to_min_notional:
            boosted = (p.min_order_notional / low).quantize(lot, rounding=ROUND_CEILING)
            if boosted * top <= budget and boosted <= qsz:
                return boosted
        self._skip("below_min_notional")
        return None
