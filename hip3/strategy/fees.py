"""The taker and maker fees a HIP-3 order really pays, in basis points (docs/exchange/hip3.md,
"Fees").

A HIP-3 taker pays the user's normal rate scaled by the dex's deployer fee scale: the
protocol share plus the deployer share. The exchange's developer formula is

    scaleIfHip3     = scale + 1 if scale < 1 else 2 * scale
    growthModeScale = 0.1 if the asset is in growth mode else 1
    taker           = userCrossRate * scaleIfHip3 * growthModeScale * (1 - activeReferralDiscount)

with rates as decimal fractions ("0.00045" is 4.5 bps). A resting order's fill pays the maker
rate `userAddRate` the same way when it is positive; a negative maker rate is a rebate, which
only growth mode scales (x 0.1): the deployer's scale and the referral discount leave it alone.
The detector's edge must beat the taker number and a maker's spread the maker one, so both are
computed exactly with Decimal and every input is range-checked: a fee that is silently too low
turns every signal into a loss.
"""

from __future__ import annotations

from decimal import Decimal

from hip3.market.state import MarketSpec

__all__ = ["FeeError", "FeeTable", "hip3_fee_multiplier", "maker_fee_bps", "taker_fee_bps"]

_BPS = Decimal(10_000)
_ONE = Decimal(1)
_GROWTH_MODE_SCALE = Decimal("0.1")
# The exchange allows a scale in [0, 3], or [0, 10) with growth mode on; anything outside is a
# parsing mistake, not a fee schedule.
_MAX_FEE_SCALE = Decimal(10)
# No fee tier charges 1% per taker fill; a rate that large is a units mistake (bps vs fraction).
_MAX_USER_RATE = Decimal("0.01")


class FeeError(ValueError):
    """A fee input outside what the exchange can produce."""


def _check(value: Decimal, name: str, low: Decimal, high: Decimal, *, high_open: bool) -> None:
    if not isinstance(value, Decimal):
        raise FeeError(f"{name} must be a Decimal, got {type(value).__name__}: {value!r}")
    if not value.is_finite():
        raise FeeError(f"{name} must be finite, got {value}")
    above = value >= high if high_open else value > high
    if value < low or above:
        bracket = ")" if high_open else "]"
        raise FeeError(f"{name} = {value} is outside [{low}, {high}{bracket}")


def hip3_fee_multiplier(deployer_fee_scale: Decimal, growth_mode: bool) -> Decimal:
    """How many times the user's normal rate a HIP-3 taker pays."""
    _check(deployer_fee_scale, "deployer_fee_scale", Decimal(0), _MAX_FEE_SCALE, high_open=True)
    scale = deployer_fee_scale + 1 if deployer_fee_scale < 1 else 2 * deployer_fee_scale
    return scale * _GROWTH_MODE_SCALE if growth_mode else scale


def taker_fee_bps(
    *,
    user_cross_rate: Decimal,
    deployer_fee_scale: Decimal,
    growth_mode: bool,
    referral_discount: Decimal = Decimal(0),
) -> Decimal:
    """The all-in HIP-3 taker fee in bps for a user rate from `userFees` (`userCrossRate`)."""
    _check(user_cross_rate, "user_cross_rate", Decimal(0), _MAX_USER_RATE, high_open=False)
    _check(referral_discount, "referral_discount", Decimal(0), _ONE, high_open=False)
    multiplier = hip3_fee_multiplier(deployer_fee_scale, growth_mode)
    return user_cross_rate * _BPS * multiplier * (_ONE - referral_discount)


def maker_fee_bps(
    *,
    user_add_rate: Decimal,
    deployer_fee_scale: Decimal,
    growth_mode: bool,
    referral_discount: Decimal = Decimal(0),
) -> Decimal:
    """The all-in HIP-3 maker fee in bps for a user rate from `userFees` (`userAddRate`);
    negative is a rebate (only growth mode scales it)."""
    _check(user_add_rate, "user_add_rate", -_MAX_USER_RATE, _MAX_USER_RATE, high_open=False)
    _check(referral_discount, "referral_discount", Decimal(0), _ONE, high_open=False)
    multiplier = hip3_fee_multiplier(deployer_fee_scale, growth_mode)
    if user_add_rate < 0:
        return user_add_rate * _BPS * (_GROWTH_MODE_SCALE if growth_mode else _ONE)
    return user_add_rate * _BPS * multiplier * (_ONE - referral_discount)


class FeeTable:
    """Per-coin taker fee in bps (calling the table: the `fee_bps` callable the detector takes)
    and maker fee in bps (`maker`).

    Until the user's rates (`userFees`) and the coin's spec (discovery) are both known, a coin
    costs `fallback_bps`, the configured taker assumption, on both sides, so a missing fetch
    never makes fees zero (a maker fee is the account's lower rate by the same formula, so the
    taker assumption errs on the wide side for a maker). Values are computed when an input
    changes, not per call: the detector asks on every update.
    """

    __slots__ = (
        "_add_rate",
        "_cache",
        "_maker_cache",
        "_referral",
        "_specs",
        "_user_rate",
        "fallback_bps",
    )

    def __init__(self, fallback_bps: Decimal) -> None:
        _check(fallback_bps, "fallback_bps", Decimal(0), _BPS, high_open=False)
        self.fallback_bps = fallback_bps
        self._user_rate: Decimal | None = None
        self._add_rate: Decimal | None = None
        self._referral = Decimal(0)
        self._specs: dict[str, MarketSpec] = {}
        self._cache: dict[str, Decimal] = {}
        self._maker_cache: dict[str, Decimal] = {}

    def set_user_rates(
        self,
        user_cross_rate: Decimal,
        referral_discount: Decimal = Decimal(0),
        user_add_rate: Decimal | None = None,
    ) -> None:
        """The account's rates; without `user_add_rate` a maker fill is costed as a taker's."""
        # validate before storing, so a bad answer leaves the previous rates in force
        _check(user_cross_rate, "user_cross_rate", Decimal(0), _MAX_USER_RATE, high_open=False)
        _check(referral_discount, "referral_discount", Decimal(0), _ONE, high_open=False)
        if user_add_rate is not None:
            _check(user_add_rate, "user_add_rate", -_MAX_USER_RATE, _MAX_USER_RATE, high_open=False)
        self._user_rate, self._referral = user_cross_rate, referral_discount
        self._add_rate = user_add_rate
        self._cache.clear()
        self._maker_cache.clear()

    def set_spec(self, spec: MarketSpec) -> None:
        hip3_fee_multiplier(spec.deployer_fee_scale, spec.growth_mode)  # validates
        self._specs[spec.coin] = spec
        self._cache.pop(spec.coin, None)
        self._maker_cache.pop(spec.coin, None)

    def maker(self, coin: str) -> Decimal:
        """The maker fee of `coin` in bps (negative: a rebate)."""
        fee = self._maker_cache.get(coin)
        if fee is not None:
            return fee
        spec = self._specs.get(coin)
        if self._user_rate is None or spec is None:
            return self.fallback_bps
        if self._add_rate is None:
            fee = self(coin)  # the maker rate was not in the answer: cost it as a taker's
        elif spec.dex:
            fee = maker_fee_bps(
                user_add_rate=self._add_rate,
                deployer_fee_scale=spec.deployer_fee_scale,
                growth_mode=spec.growth_mode,
                referral_discount=self._referral,
            )
        elif self._add_rate < 0:  # a validator-operated perp: the plain user rate
            fee = self._add_rate * _BPS
        else:
            fee = self._add_rate * _BPS * (_ONE - self._referral)
        self._maker_cache[coin] = fee
        return fee

    def __call__(self, coin: str) -> Decimal:
        fee = self._cache.get(coin)
        if fee is not None:
            return fee
        spec = self._specs.get(coin)
        if self._user_rate is None or spec is None:
            return self.fallback_bps
        if spec.dex:
            fee = taker_fee_bps(
                user_cross_rate=self._user_rate,
                deployer_fee_scale=spec.deployer_fee_scale,
                growth_mode=spec.growth_mode,
                referral_discount=self._referral,
            )
        else:  # a validator-operated perp pays the plain user rate
            fee = self._user_rate * _BPS * (_ONE - self._referral)
        self._cache[coin] = fee
        return fee
