"""Per-coin market state: books, oracle, marks, daily volumes, open interest, halts.

Everything a price or context answer needs, and nothing about accounts. The matcher writes
trades into it; info, funding and margin read marks and mids from it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hip3.sim import rules
from hip3.sim.accounts import ZERO
from hip3.sim.book import Book
from hip3.sim.candles import Candles
from hip3.sim.events import CtxChanged
from hip3.sim.universe import Universe

FUNDING_INTEREST = Decimal("0.0000125")
FUNDING_CAP = Decimal("0.04")


def level_wire(level: tuple[Decimal, Decimal, int]) -> dict[str, Any]:
    px, sz, n = level
    return {"px": rules.wire(px), "sz": rules.wire(sz), "n": n}


class Markets:
    def __init__(
        self, universe: Universe, *, clock_ms: Callable[[], int], emit: Callable[[object], None]
    ) -> None:
        self.universe = universe
        self._clock = clock_ms
        self._emit = emit
        assets = universe.assets
        self.books: dict[str, Book] = {a.coin: Book(a.coin) for a in assets}
        self.oracle: dict[str, Decimal] = {a.coin: a.start_px for a in assets}
        self.prev_day_px: dict[str, Decimal] = dict(self.oracle)
        self.last_trade_px: dict[str, Decimal] = {}
        self.open_interest: dict[str, Decimal] = {a.coin: ZERO for a in assets}
        self.day_ntl_vlm: dict[str, Decimal] = {a.coin: ZERO for a in assets}
        self.day_base_vlm: dict[str, Decimal] = {a.coin: ZERO for a in assets}
        self.halted: set[str] = set()
        self.candles = Candles()  # from the trades executed here
        # One lot of each coin (10^-szDecimals), to quantize maker sizes without recomputing.
        self.lots = {a.coin: Decimal(1).scaleb(-a.sz_decimals) for a in assets}
        self.fee_multipliers = {
            a.coin: rules.hip3_fee_multiplier(a, universe.dexes[a.dex_index].fee_scale)
            for a in assets
        }

    def set_oracle(self, coin: str, px: Decimal) -> None:
        asset = self.universe.asset(coin)
        value = Decimal(px)
        if not value.is_finite() or value <= ZERO:
            raise ValueError(f"oracle price for {coin} must be positive, got {px}")
        self.oracle[coin] = rules.round_price(asset, value)
        self._emit(CtxChanged(coin))

    def record_trade(
        self, coin: str, px: Decimal, sz: Decimal, oi_change: Decimal, now_ms: int
    ) -> None:
        self.open_interest[coin] += oi_change
        self.last_trade_px[coin] = px
        self.day_ntl_vlm[coin] += px * sz
        self.day_base_vlm[coin] += sz
        self.candles.record(coin, now_ms, px, sz)

    def mark_px(self, coin: str) -> Decimal:
        """Median of oracle, best bid and best ask: the oracle clamped into the spread."""
        oracle = self.oracle[coin]
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return oracle
        return sorted((oracle, bid, ask))[1]

    def mid_px(self, coin: str) -> Decimal | None:
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        return rules.round_price(self.universe.by_coin[coin], (bid + ask) / 2)

    def funding_rate(self, coin: str) -> tuple[Decimal, Decimal]:
        """(hourly funding rate, premium) from the book's mid against the oracle."""
        mid = self.mid_px(coin)
        oracle = self.oracle[coin]
        premium = ZERO if mid is None else (mid - oracle) / oracle
        rate = premium / 8 + FUNDING_INTEREST
        rate = max(-FUNDING_CAP, min(FUNDING_CAP, rate))
        return rate.quantize(Decimal("0.00000001")), premium.quantize(Decimal("0.000001"))

    def bbo(self, coin: str) -> dict[str, Any]:
        self.universe.asset(coin)
        book = self.books[coin]
        bids, asks = book.depth(True, 1), book.depth(False, 1)
        return {
            "coin": coin,
            "time": self._clock(),
            "bbo": [
                level_wire(bids[0]) if bids else None,
                level_wire(asks[0]) if asks else None,
            ],
        }

    def l2_book(self, coin: str, depth: int = 20) -> dict[str, Any]:
        self.universe.asset(coin)
        book = self.books[coin]
        depth = max(0, min(depth, 20))
        return {
            "coin": coin,
            "time": self._clock(),
            "levels": [
                [level_wire(level) for level in book.depth(True, depth)],
                [level_wire(level) for level in book.depth(False, depth)],
            ],
        }

    def perp_ctx(self, coin: str) -> dict[str, Any]:
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        funding, premium = self.funding_rate(coin)
        mid = self.mid_px(coin)
        return {
            "funding": rules.wire(funding),
            "openInterest": rules.wire(self.open_interest[coin]),
            "prevDayPx": rules.wire(self.prev_day_px[coin]),
            "dayNtlVlm": rules.wire(rules.usdc(self.day_ntl_vlm[coin])),
            "premium": rules.wire(premium) if mid is not None else None,
            "oraclePx": rules.wire(self.oracle[coin]),
            "markPx": rules.wire(self.mark_px(coin)),
            "midPx": rules.wire(mid) if mid is not None else None,
            "impactPxs": [rules.wire(bid), rules.wire(ask)]
            if bid is not None and ask is not None
            else None,
            "dayBaseVlm": rules.wire(self.day_base_vlm[coin]),
        }

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        self.universe.asset(coin)
        return {"coin": coin, "ctx": self.perp_ctx(coin)}


def aggregate_book(book: dict[str, Any], n_sig_figs: int, mantissa: int | None) -> dict[str, Any]:
    """Bucket a WsBook to `n_sig_figs` significant figures (bids down, asks up).

    With mantissa m (only for 5 figures) the last figure is a multiple of m.
    """
    bids, asks = book["levels"]
    return {
        **book,
        "levels": [
            _bucket(bids, n_sig_figs, mantissa, ROUND_FLOOR),
            _bucket(asks, n_sig_figs, mantissa, ROUND_CEILING),
        ],
    }


def _bucket(
    levels: list[dict[str, Any]], n_sig_figs: int, mantissa: int | None, rounding: str
) -> list[dict[str, Any]]:
    merged: dict[Decimal, list[Any]] = {}
    for level in levels:
        px = Decimal(level["px"])
        step = Decimal(1).scaleb(px.adjusted() - n_sig_figs + 1) * (mantissa or 1)
        # Integer prices are never bucketed finer than 1, like the exchange's tick rules.
        bucket = (px / step).to_integral_value(rounding) * step
        entry = merged.setdefault(bucket, [Decimal(0), 0])
        entry[0] += Decimal(level["sz"])
        entry[1] += int(level["n"])
    return [{"px": _plain(px), "sz": _plain(sz), "n": n} for px, (sz, n) in merged.items()]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
