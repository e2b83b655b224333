"""Number rules of the exchange: price ticks, lot sizes, minimum notional, fee rates, wire format.

Everything is Decimal; wire strings are produced by `wire()` (no exponent, no trailing zeros).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from hip3.sim.universe import Asset

PERP_MAX_DECIMALS = 6
MAX_SIG_FIGS = 5
MIN_NOTIONAL = Decimal(10)

# userFees of the base tier (rates are fractions, as on the wire).
BASE_TAKER_RATE = Decimal("0.00045")
BASE_MAKER_RATE = Decimal("0.00015")
GROWTH_MODE_SCALE = Decimal("0.1")
USDC_QUANTUM = Decimal("0.000001")


def parse_decimal(text: object) -> Decimal | None:
    """A positive finite decimal from a wire string, or None if the text is not one."""
    if not isinstance(text, str) or not text or len(text) > 40:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0:
        return None
    return value


# The same few prices and sizes are formatted over and over (every book level, fill and
# context); remembering their strings is several times cheaper than formatting again.
# Equal Decimals ("1.50", "1.5") share one entry, which is right: the wire form is canonical.
_WIRE_CACHE: dict[Decimal, str] = {}
_WIRE_CACHE_MAX = 1 << 16


def wire(value: Decimal) -> str:
    """Canonical wire string: "1670.1", "0.0147", "100", "0"."""
    text = _WIRE_CACHE.get(value)
    if text is None:
        text = format(value.normalize(), "f") if value else "0"
        if len(_WIRE_CACHE) >= _WIRE_CACHE_MAX:
            _WIRE_CACHE.clear()
        _WIRE_CACHE[value] = text
    return text


def decimals_of(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent if exponent < 0 else 0


def price_is_valid(asset: Asset, px: Decimal) -> bool:
    """5 significant figures and at most 6 - szDecimals decimals; integers always pass."""
    if px == px.to_integral_value():
        return True
    normalized = px.normalize()
    digits, exponent = normalized.as_tuple()[1:]
    assert isinstance(exponent, int)
    if -exponent > PERP_MAX_DECIMALS - asset.sz_decimals:
        return False
    return len(digits) <= MAX_SIG_FIGS


def size_is_valid(asset: Asset, sz: Decimal) -> bool:
    return sz > 0 and decimals_of(sz) <= asset.sz_decimals


# Makers quote, and marks and mids land on, the same prices again and again.
_ROUNDED_CACHE: dict[tuple[Decimal, int], Decimal] = {}
_ROUNDED_CACHE_MAX = 1 << 16


def round_price(asset: Asset, px: Decimal) -> Decimal:
    """Nearest valid price (used for oracle and mark values the exchange publishes)."""
    key = (px, asset.sz_decimals)
    rounded = _ROUNDED_CACHE.get(key)
    if rounded is None:
        rounded = _round_price(asset.sz_decimals, px)
        if rounded == px and rounded.as_tuple() == px.as_tuple():
            # Already a valid price, written the same way: keep the caller's object, whose
            # hash may already be known (books are keyed by price; a Decimal's hash is dear).
            rounded = px
        if len(_ROUNDED_CACHE) >= _ROUNDED_CACHE_MAX:
            _ROUNDED_CACHE.clear()
        _ROUNDED_CACHE[key] = rounded
    return rounded


def _round_price(sz_decimals: int, px: Decimal) -> Decimal:
    if px <= 0:
        raise ValueError("price must be positive")
    integral = px.to_integral_value(rounding=ROUND_HALF_EVEN)
    if px.adjusted() >= MAX_SIG_FIGS - 1:
        return integral
    sig_quantum = _power_of_ten(px.adjusted() - MAX_SIG_FIGS + 1)
    dec_quantum = _power_of_ten(-(PERP_MAX_DECIMALS - sz_decimals))
    quantum = max(sig_quantum, dec_quantum)
    rounded = px.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if rounded <= 0:
        rounded = quantum
    return rounded.normalize()


def rounded_apart(asset: Asset, low: Decimal, high: Decimal) -> bool:
    """Whether `round_price` keeps `low` < `high` apart, told without rounding either.

    Rounding never reverses two prices and moves each by at most its quantum, which is at most
    the larger of 10^(1 - MAX_SIG_FIGS) of the price and the decimals' limit; so two prices
    more than two such quanta apart cannot round to one. (Closer ones may: round them.)"""
    widest = max(
        high.scaleb(1 - MAX_SIG_FIGS), _power_of_ten(asset.sz_decimals - PERP_MAX_DECIMALS)
    )
    return high - low > 2 * widest


_POWERS_OF_TEN: dict[int, Decimal] = {}


def _power_of_ten(exponent: int) -> Decimal:
    """10**exponent, made once per exponent (a price's quantum is one of a handful)."""
    power = _POWERS_OF_TEN.get(exponent)
    if power is None:
        power = _POWERS_OF_TEN[exponent] = Decimal(1).scaleb(exponent)
    return power


def hip3_fee_multiplier(asset: Asset, deployer_fee_scale: Decimal) -> Decimal:
    """Fee multiplier relative to the user's base rate (trading/fees developer formula)."""
    if not asset.is_hip3:
        return Decimal(1)
    scale = deployer_fee_scale
    multiplier = scale + 1 if scale < 1 else 2 * scale
    if asset.growth_mode:
        multiplier *= GROWTH_MODE_SCALE
    return multiplier


def usdc(value: Decimal) -> Decimal:
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN)
