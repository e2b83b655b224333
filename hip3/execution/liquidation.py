"""The liquidation-buffer gate: refuse an entry after which the market's position would sit
too close to its liquidation price.

Facts (docs/exchange/margin.md, from https://hyperliquid.gitbook.io/hyperliquid-docs/trading/
liquidations and .../trading/margining): liquidation follows the mark price; the maintenance
margin of a position is half the initial margin at the asset's maxLeverage, so its rate is
`l = 1 / (2 * maxLeverage)` of the position's value at mark; a cross position is liquidated when
the dex's cross account value falls below the maintenance margin of all its cross positions,
an isolated one when its own isolated margin (with its unrealized PnL) falls below its
maintenance margin. With `margin_available` the margin above maintenance at the mark `p`, a
position of size `|s|` on side `side` (+1 long, -1 short) is liquidated at

    p - side * margin_available / |s| / (1 - side * l)

(every other price held where it is).

`DexMargin.from_state` reads one dex's clearinghouseState: `marginSummary.accountValue` and,
per position, its size, `positionValue`, `maxLeverage`, leverage type and `marginUsed` (for an
isolated position `rawUsd + szi * mark`: its margin with its unrealized PnL). The cross account
value is the account value less the isolated positions' margins.

`project` takes an entry to the position after it fills fully at its limit price `q`:
- cross: the cross account value gains the fill's PnL at the mark, `d * (p - q)` (`d` the
  signed order size), and the market's existing cross position is marked from the read's mark
  to `p`; the other cross positions keep their maintenance margin from the read;
- isolated: the position's margin gains the initial margin of the order at its price,
  `|d| * q / leverage`, plus the fill's PnL at the mark; a flip starts a fresh position of the
  remaining size. An order that only shrinks a position does not move it closer to its
  liquidation price, and passes.
Fees and funding are left out: a taker fee of a few bps of the order's notional moves the
estimate by far less than any buffer worth setting.

The gate refuses, with a one-line reason naming the numbers, when the projected liquidation
price is within `ratio` of the mark (a long's liquidation price at or below zero is no
liquidation at all). It never guesses: a missing fact (no state read of the dex, no mark, no
leverage confirmed on the market, a read behind the tracked position, an unreadable position)
refuses too, saying which, and a missing or outdated read of the dex is asked for again
(`refresh`): the bot's own fills do not make the runtime read the account, so the first entry
judged after one waits for that read. Between reads the account value stands as read; only
the market's own position is marked to the current mark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.protocol.numbers import finite_decimal

log = logging.getLogger(__name__)

__all__ = [
    "LIQ_BUFFER",
    "DexMargin",
    "LiquidationBuffer",
    "PositionMargin",
    "Projection",
    "liquidation_px",
    "project",
]

LIQ_BUFFER = "liq_buffer"

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)


def maintenance_rate(max_leverage: int) -> Decimal:
    """The maintenance margin per unit of position value: half the initial margin at max."""
    return _ONE / (_TWO * max_leverage)


def liquidation_px(
    *, mark: Decimal, size: Decimal, margin_available: Decimal, rate: Decimal
) -> Decimal:
    """The mark at which a position of signed `size` is liquidated, with `margin_available`
    above its maintenance margin at `mark` and maintenance rate `rate`."""
    side = _ONE if size > 0 else -_ONE
    return mark - side * margin_available / abs(size) / (_ONE - side * rate)


@dataclass(slots=True, frozen=True)
class PositionMargin:
    """One position of a clearinghouseState answer."""

    szi: Decimal
    is_cross: bool
    position_value: Decimal  # |szi| x the mark of the read
    max_leverage: int
    margin_used: Decimal  # isolated: its margin with its unrealized PnL

    @property
    def read_mark(self) -> Decimal:
        return self.position_value / abs(self.szi)

    @property
    def maintenance(self) -> Decimal:
        return self.position_value * maintenance_rate(self.max_leverage)


@dataclass(slots=True, frozen=True)
class DexMargin:
    """What one dex's last clearinghouseState says about margin."""

    account_value: Decimal
    positions: Mapping[str, PositionMargin]
    # coins whose position could not be read (a field missing or not a number)
    unreadable: frozenset[str] = frozenset()
    # summed once per read, not per entry: the account value less the isolated positions'
    # margins, and the maintenance margin of every cross position at the read's marks
    cross_account_value: Decimal = field(init=False)
    cross_maintenance: Decimal = field(init=False)

    def __post_init__(self) -> None:
        isolated = maintenance = _ZERO
        for p in self.positions.values():
            if p.is_cross:
                maintenance += p.maintenance
            else:
                isolated += p.margin_used
        object.__setattr__(self, "cross_account_value", self.account_value - isolated)
        object.__setattr__(self, "cross_maintenance", maintenance)

    @classmethod
    def from_state(cls, state: Any) -> DexMargin | None:
        """The margin facts of a clearinghouseState answer; None without an account value."""
        if not isinstance(state, dict):
            return None
        summary = state.get("marginSummary")
        value = finite_decimal(summary.get("accountValue")) if isinstance(summary, dict) else None
        if value is None:
            return None
        positions: dict[str, PositionMargin] = {}
        unreadable: set[str] = set()
        for entry in state.get("assetPositions") or ():
            raw = entry.get("position") if isinstance(entry, dict) else None
            coin = raw.get("coin") if isinstance(raw, dict) else None
            if not isinstance(coin, str):
                continue
            parsed = _position(raw)
            if parsed is None:
                unreadable.add(coin)
            elif parsed.szi:
                positions[coin] = parsed
        return cls(value, positions, frozenset(unreadable))


def _position(raw: dict) -> PositionMargin | None:
    szi = finite_decimal(raw.get("szi"))
    value = finite_decimal(raw.get("positionValue"))
    used = finite_decimal(raw.get("marginUsed"))
    max_lev = raw.get("maxLeverage")
    lev = raw.get("leverage")
    kind = lev.get("type") if isinstance(lev, dict) else None
    if szi is None or value is None or used is None or kind not in ("cross", "isolated"):
        return None
    if not isinstance(max_lev, int) or isinstance(max_lev, bool) or max_lev < 1:
        return None
    if szi and value <= 0:
        return None
    return PositionMargin(szi, kind == "cross", value, max_lev, used)


@dataclass(slots=True, frozen=True)
class Projection:
    size: Decimal  # the signed position after the order
    liquidation_px: Decimal
    buffer: Decimal  # distance from the mark to the liquidation price, as a fraction of the mark


def project(
    *,
    coin: str,
    is_buy: bool,
    size: Decimal,
    px: Decimal,
    mark: Decimal,
    is_cross: bool,
    leverage: int,
    max_leverage: int,
    dex: DexMargin,
) -> Projection | None:
    """The position of `coin` after an order of `size` at `px` fills fully, and its
    liquidation price; None when the order only shrinks or closes the position."""
    held = dex.positions.get(coin)
    s0 = held.szi if held is not None else _ZERO
    d = size if is_buy else -size
    s1 = s0 + d
    if not s1 or (s0 and (s0 > 0) == (s1 > 0) and abs(s1) <= abs(s0)):
        return None
    rate = maintenance_rate(max_leverage)
    if is_cross:
        # the other cross positions keep their maintenance margin; this market's is below
        equity = dex.cross_account_value - dex.cross_maintenance + d * (mark - px)
        if held is not None:
            equity += s0 * (mark - held.read_mark) + held.maintenance
    else:
        if s0 and (s0 > 0) != (s1 > 0):
            # a flip closes the old position; the rest opens afresh at the order's price
            equity = abs(s1) * px / leverage + s1 * (mark - px)
        else:
            equity = abs(d) * px / leverage + d * (mark - px)
            if held is not None:
                equity += held.margin_used + s0 * (mark - held.read_mark)
    available = equity - abs(s1) * mark * rate
    liq = liquidation_px(mark=mark, size=s1, margin_available=available, rate=rate)
    buffer = (mark - liq) / mark if s1 > 0 else (liq - mark) / mark
    return Projection(s1, liq, buffer)


class LiquidationBuffer:
    """The gate: `ratio_for(coin)` is the market's minimum buffer (0: not checked there)."""

    def __init__(
        self,
        *,
        ratios: Mapping[str, Decimal],
        specs: Mapping[str, Any],
        markets: Mapping[str, Any],
        settings: Callable[[str], tuple[bool, int] | None],
        tracked_size: Callable[[str], Decimal],
        refresh: Callable[[str], None] | None = None,
    ) -> None:
        self.ratios = {c: r for c, r in ratios.items() if r > 0}
        self.specs = specs  # coin -> MarketSpec (dex, max_leverage)
        self.markets = markets  # coin -> MarketState (mark_px)
        self.settings = settings  # coin -> confirmed (is_cross, leverage), None before
        self.tracked_size = tracked_size  # coin -> the position tracker's signed size
        # asks for a fresh clearinghouseState of a dex whose last one is missing or behind
        self.refresh = refresh
        self.dexes: dict[str, DexMargin | None] = {}
        self.last_refusal = ""  # the last refusal's reason with its numbers (status, logs)
        # coin -> the projection of the last entry judged there (what the estimate said)
        self.projections: dict[str, Projection] = {}

    @property
    def active(self) -> bool:
        return bool(self.ratios)

    def note_state(self, dex: str, state: Any) -> None:
        """A clearinghouseState answer of `dex` ("" the first dex)."""
        self.dexes[dex] = DexMargin.from_state(state)

    def refusal(self, coin: str, *, is_buy: bool, size: Decimal, px: Decimal) -> str | None:
        """LIQ_BUFFER when an entry of `size` at `px` may not go out, else None."""
        ratio = self.ratios.get(coin)
        if ratio is None:
            return None
        why = self.explain(coin, is_buy=is_buy, size=size, px=px, ratio=ratio)
        if why is None:
            return None
        if why != self.last_refusal:
            log.info("entry refused: %s", why)
        self.last_refusal = why
        return LIQ_BUFFER

    def explain(
        self, coin: str, *, is_buy: bool, size: Decimal, px: Decimal, ratio: Decimal
    ) -> str | None:
        """Why the entry may not go out (one line), or None."""
        spec = self.specs.get(coin)
        if spec is None:
            return f"{coin}: liquidation buffer unknown: the market is not discovered yet"
        setting = self.settings(coin)
        if setting is None:
            return f"{coin}: liquidation buffer unknown: no leverage confirmed on the market yet"
        m = self.markets.get(coin)
        mark = m.mark_px if m is not None else None
        if mark is None or mark <= 0:
            return f"{coin}: liquidation buffer unknown: no mark price yet"
        dex = self.dexes.get(spec.dex)
        if dex is None:
            self._ask_again(spec.dex)
            return (
                f"{coin}: liquidation buffer unknown: no account value of dex "
                f"{spec.dex or '(first)'} read yet"
            )
        if coin in dex.unreadable:
            return f"{coin}: liquidation buffer unknown: the state read's position is unreadable"
        held = dex.positions.get(coin)
        read = held.szi if held is not None else _ZERO
        if read != self.tracked_size(coin):
            self._ask_again(spec.dex)
            return (
                f"{coin}: liquidation buffer unknown: the state read ({read}) is behind the "
                f"tracked position ({self.tracked_size(coin)})"
            )
        is_cross, leverage = setting
        if is_cross and dex.unreadable:
            # another position's margin is part of the cross account: unknown, so is this one
            return (
                f"{coin}: liquidation buffer unknown: the state read's position in "
                f"{min(dex.unreadable)} is unreadable"
            )
        if held is not None and held.is_cross != is_cross:
            return (
                f"{coin}: liquidation buffer unknown: the position is "
                f"{'cross' if held.is_cross else 'isolated'}, the setting "
                f"{'cross' if is_cross else 'isolated'}"
            )
        proj = project(
            coin=coin,
            is_buy=is_buy,
            size=size,
            px=px,
            mark=mark,
            is_cross=is_cross,
            leverage=leverage,
            max_leverage=spec.max_leverage,
            dex=dex,
        )
        if proj is None:
            return None
        self.projections[coin] = proj
        if proj.buffer >= ratio:
            return None
        return (
            f"{coin}: {'buy' if is_buy else 'sell'} {size} at {px} "
            f"({'cross' if is_cross else 'isolated'} {leverage}x, maxLeverage {spec.max_leverage}) "
            f"makes position {proj.size} with liquidation price ~{_short(proj.liquidation_px)}, "
            f"{_pct(proj.buffer)} from mark {mark}, below the buffer {_pct(ratio)}"
        )

    def _ask_again(self, dex: str) -> None:
        if self.refresh is not None:
            self.refresh(dex)


def _short(value: Decimal) -> str:
    return f"{value:.6g}"


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f}%"
