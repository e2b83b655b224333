"""Exact price and size strings for the wire.

Rules: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/tick-and-lot-size

Everything here works on `Decimal` and returns the exact string that gets signed and sent:
a price or size that differs by one character from what was hashed gives a different
signer on the exchange, so the formatting rules live in this one module.
"""

from __future__ import annotations

import enum
import re
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal, InvalidOperation

__all__ = [
    "MAX_PRICE_SIG_FIGS",
    "MIN_NOTIONAL_USD",
    "DecimalFormatError",
    "NotionalError",
    "PriceError",
    "Rounding",
    "SizeError",
    "check_min_notional",
    "finite_decimal",
    "format_price",
    "format_size",
    "max_price_decimals",
    "parse_decimal",
    "quantize_price",
    "quantize_size",
    "wire_decimal",
]

MAX_PRICE_SIG_FIGS = 5
MIN_NOTIONAL_USD = Decimal(10)
_PERP_MAX_DECIMALS = 6
_SPOT_MAX_DECIMALS = 8
# Quantize must never round because of context precision; wire numbers are far shorter.
_PRECISION = 80
# One shared context for that precision (the other settings are Python's defaults) instead of
# a `localcontext()` per call: quantize and multiply take it explicitly, and their results do
# not depend on anything else in it. It never traps on Inexact/Rounded, so flags it collects
# are harmless.
_CTX = Context(prec=_PRECISION)
# 10**e for the grid steps prices and sizes are quantized to (built once, not per order).
_STEPS = {e: Decimal(1).scaleb(e) for e in range(-_SPOT_MAX_DECIMALS - 8, 1)}
# (sz_decimals, spot) -> max_price_decimals, for the valid pairs seen so far
_PRICE_DECIMALS: dict[tuple[int, bool], int] = {}
_WIRE_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class DecimalFormatError(ValueError):
    """A string or value that is not an exact wire decimal."""


class PriceError(ValueError):
    """A price that cannot be turned into a valid wire price."""


class SizeError(ValueError):
    """A size that cannot be turned into a valid wire size."""


class NotionalError(ValueError):
    """An order below the exchange's minimum notional."""


class Rounding(enum.Enum):
    """Rounding direction relative to the order's side.

    AGGRESSIVE moves the price towards matching (buy up, sell down); PASSIVE moves it away
    (buy down, sell up), so a passive order never pays more than the caller asked.
    """

    PASSIVE = "passive"
    AGGRESSIVE = "aggressive"


def wire_decimal(d: Decimal) -> str:
    """Plain positional form: no exponent, no trailing zeros, no trailing point, never "-0"."""
    if not isinstance(d, Decimal):
        raise DecimalFormatError(f"expected Decimal, got {type(d).__name__}: {d!r}")
    if not d.is_finite():
        raise DecimalFormatError(f"not a finite decimal: {d}")
    if d.is_zero():
        return "0"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def finite_decimal(value: object) -> Decimal | None:
    """A number read from an answer (string or JSON number) as a finite Decimal, or None when
    it is anything else: for reads that treat a missing or odd figure as unknown, not as an
    error."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def parse_decimal(s: str) -> Decimal:
    """Strictly parse a wire decimal string ("123.45", "-0.5"): no exponent, sign or spaces."""
    if not isinstance(s, str):
        raise DecimalFormatError(f"expected a decimal string, got {type(s).__name__}: {s!r}")
    if _WIRE_DECIMAL.fullmatch(s) is None:
        raise DecimalFormatError(f"not a plain decimal string: {s[:40]!r}")
    return Decimal(s)


def max_price_decimals(*, sz_decimals: int, spot: bool = False) -> int:
    """Decimal places a price may carry: (6 for perps, 8 for spot) minus szDecimals."""
    cap = _SPOT_MAX_DECIMALS if spot else _PERP_MAX_DECIMALS
    if isinstance(sz_decimals, bool) or not isinstance(sz_decimals, int):
        raise PriceError(f"sz_decimals must be an int, got {sz_decimals!r}")
    if not 0 <= sz_decimals <= cap:
        raise PriceError(f"sz_decimals must be in [0, {cap}], got {sz_decimals}")
    return cap - sz_decimals


def _check_finite_positive(value: Decimal, what: str, error: type[ValueError]) -> None:
    if not isinstance(value, Decimal):
        raise error(f"{what} must be a Decimal, got {type(value).__name__}: {value!r}")
    if not value.is_finite():
        raise error(f"{what} must be finite, got {value}")
    if value <= 0:
        raise error(f"{what} must be > 0, got {wire_decimal(value)}")


def quantize_price(
    px: Decimal, *, sz_decimals: int, is_buy: bool, rounding: Rounding, spot: bool = False
) -> Decimal:
    """`format_price` as a Decimal: the same value, before its wire string is made."""
    if type(px) is not Decimal or not px.is_finite() or px <= 0:
        _check_finite_positive(px, "price", PriceError)  # raises for what it refuses
    if type(rounding) is not Rounding:
        raise PriceError(f"rounding must be a Rounding, got {rounding!r}")
    key = (sz_decimals, bool(spot))
    decimals = _PRICE_DECIMALS.get(key) if type(sz_decimals) is int else None
    if decimals is None:
        decimals = max_price_decimals(sz_decimals=sz_decimals, spot=spot)
        if type(sz_decimals) is int:
            _PRICE_DECIMALS[key] = decimals
    round_up = bool(is_buy) == (rounding is Rounding.AGGRESSIVE)

    exponent = px.adjusted()  # floor(log10(px)) for a positive finite Decimal
    sig_fig_exp = exponent - (MAX_PRICE_SIG_FIGS - 1)
    step_exp = min(0, max(sig_fig_exp, -decimals))
    step = _STEPS.get(step_exp)
    if step is None:
        step = Decimal(1).scaleb(step_exp)
    result = px.quantize(step, rounding=ROUND_CEILING if round_up else ROUND_FLOOR, context=_CTX)
    if result <= 0:
        raise PriceError(
            f"price {wire_decimal(px)} rounds down to 0 with {decimals} decimals "
            f"(sz_decimals={sz_decimals}, spot={spot})"
        )
    return result


def format_price(
    px: Decimal, *, sz_decimals: int, is_buy: bool, rounding: Rounding, spot: bool = False
) -> str:
    """The nearest valid wire price to `px` in the requested direction.

    Valid prices have at most 5 significant figures and at most `max_price_decimals`
    decimals, except that any integer is valid. Within one decade [10^e, 10^(e+1)) those
    prices form a grid with step min(1, max(10^(e-4), 10^-max_decimals)); rounding up past
    the top of the decade lands exactly on 10^(e+1), which is itself valid, so one
    directed quantisation gives the nearest valid price.
    """
    return wire_decimal(
        quantize_price(px, sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding, spot=spot)
    )


def quantize_size(sz: Decimal, *, sz_decimals: int) -> Decimal:
    """`format_size` as a Decimal: the same value, before its wire string is made."""
    if isinstance(sz_decimals, bool) or not isinstance(sz_decimals, int) or sz_decimals < 0:
        raise SizeError(f"sz_decimals must be an int >= 0, got {sz_decimals!r}")
    if type(sz) is not Decimal or not sz.is_finite() or sz <= 0:
        _check_finite_positive(sz, "size", SizeError)  # raises for what it refuses
    step = _STEPS.get(-sz_decimals)
    if step is None:
        step = Decimal(1).scaleb(-sz_decimals)
    truncated = sz.quantize(step, rounding=ROUND_DOWN, context=_CTX)
    if truncated <= 0:
        raise SizeError(
            f"size {wire_decimal(sz)} truncates to 0 with sz_decimals={sz_decimals}; not an order"
        )
    return truncated


def format_size(sz: Decimal, *, sz_decimals: int) -> str:
    """Truncate `sz` toward zero to `sz_decimals` places; an over-precise size is rejected
    by the exchange, and rounding up would trade more than asked."""
    return wire_decimal(quantize_size(sz, sz_decimals=sz_decimals))


def check_min_notional(px: Decimal, sz: Decimal, minimum: Decimal = MIN_NOTIONAL_USD) -> None:
    """Raise NotionalError when px * sz is below the exchange's minimum order value."""
    _check_finite_positive(px, "price", NotionalError)
    _check_finite_positive(sz, "size", NotionalError)
    notional = _CTX.multiply(px, sz)
    if notional < minimum:
        raise NotionalError(
            f"order notional {wire_decimal(notional)} (px={wire_decimal(px)}, "
            f"sz={wire_decimal(sz)}) is below the minimum {wire_decimal(minimum)}"
        )
