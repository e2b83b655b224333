"""Priority fees: what rate an IOC pays for earlier execution, and when it is worth paying.

The exchange's rules (docs/exchange/changes-2026.md#priority-fees): an order action may carry
`grouping: {"p": n}` instead of "na", a rate of n / 10^8 of notional (1 bp is n = 10000),
on an all-IOC batch (or an all non-reduce-only ALO one); an IOC pays the rate on its *filled*
notional, in HYPE from the account's undelegated staking balance, and the fee is burned. Each
bp up to 8 bps executes an IOC about 45 ms earlier; beyond 8 bps there is no more time to buy,
only the order among IOCs of at least 8 bps in the same 70 ms block.

The rate is paid on the same notional as the taker fee, so in the edge model it is one more
cost in bps: an entry pays `rate` only when its edge beats the detector's cost (fee +
slippage + min edge) plus the rate. An entry whose edge beats the cost but not cost + rate is
sent **without** priority, not dropped: priority buys time, it never decides whether a trade
is worth taking, so the bot sends the same entries with priority on as with it off (some of
them earlier). Modes:

- `off`: no entry pays.
- `fixed`: an entry pays `fixed_bps` (capped), if its edge covers cost + that.
- `edge_share`: an entry pays `share` x (edge - cost), capped. With share <= 1 the edge
  always covers it; what is left, (1 - share) x (edge - cost), stays on top of the min edge.

Rates go on the wire as whole units of 10^-8, rounded down, so an entry never pays more than
the edge was found to cover. Exits (reduce-only IOCs, which are eligible too: only ALOs must
be non-reduce-only) pay `exit_bps`, 0 by default: an exit that has to get out pays for speed
whatever the edge was, so it is its own setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hip3.config import MarketConfig, PriorityConfig

__all__ = [
    "MAX_RATE",
    "RATE_PER_BPS",
    "PriorityPolicy",
    "bps_of_rate",
    "fee_usd",
    "grouping",
    "rate_of_bps",
]

RATE_PER_BPS = 10_000  # wire units (10^-8 of notional) in one basis point
MAX_RATE = 100_000_000  # 100 % of notional
MODES = ("off", "fixed", "edge_share")
_RATE_SCALE = Decimal(100_000_000)
_UNITS_PER_BPS = Decimal(RATE_PER_BPS)
_ZERO = Decimal(0)
_ONE = Decimal(1)


def rate_of_bps(bps: Decimal) -> int:
    """Wire units of a rate in bps, rounded down: 8 bps -> 80000, 0.123456 bps -> 1234."""
    if not bps.is_finite() or bps <= 0:
        return 0
    units = int((bps * _UNITS_PER_BPS).to_integral_value(rounding=ROUND_DOWN))
    return units if units < MAX_RATE else MAX_RATE


def bps_of_rate(rate: int) -> Decimal:
    """The rate in bps: 80000 -> 8."""
    return Decimal(rate) / _UNITS_PER_BPS


def fee_usd(rate: int, px: Decimal, sz: Decimal) -> Decimal:
    """What a fill pays at `rate`: px x sz x rate / 10^8 (the exchange charges its HYPE
    equivalent; fills do not report it)."""
    return px * sz * rate / _RATE_SCALE


def grouping(rate: int) -> str | dict[str, int]:
    """The order action's `grouping`: "na" without priority, else {"p": rate}."""
    return {"p": rate} if rate > 0 else "na"


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """Rates in bps as Decimal; `caps` overrides `cap_bps` per market."""

    mode: str = "off"
    fixed_bps: Decimal = Decimal(8)
    share: Decimal = Decimal("0.5")
    cap_bps: Decimal = Decimal(8)
    exit_bps: Decimal = _ZERO
    caps: Mapping[str, Decimal] = field(default_factory=dict)
    # the exit rate in wire units, computed once
    exit_rate: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid PriorityPolicy: " + "; ".join(problems))
        object.__setattr__(self, "exit_rate", rate_of_bps(self.exit_bps))

    def _problems(self) -> list[str]:
        out = []
        if self.mode not in MODES:
            out.append(f"mode = {self.mode!r}: expected one of {MODES}")
        limit = Decimal(MAX_RATE) / _UNITS_PER_BPS
        for name, value in (
            ("fixed_bps", self.fixed_bps),
            ("cap_bps", self.cap_bps),
            ("exit_bps", self.exit_bps),
            *((f"caps[{coin!r}]", cap) for coin, cap in self.caps.items()),
        ):
            if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= limit:
                out.append(f"{name} = {value!r}: expected a Decimal in [0, {limit}]")
        if not (isinstance(self.share, Decimal) and _ZERO < self.share <= _ONE):
            out.append(f"share = {self.share!r}: expected 0 < share <= 1")
        return out

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @classmethod
    def from_config(
        cls, cfg: PriorityConfig, markets: tuple[MarketConfig, ...] = ()
    ) -> PriorityPolicy:
        from hip3.config import as_decimal

        return cls(
            mode=cfg.mode,
            fixed_bps=as_decimal(cfg.fixed_bps),
            share=as_decimal(cfg.share),
            cap_bps=as_decimal(cfg.cap_bps),
            exit_bps=as_decimal(cfg.exit_bps),
            caps={
                m.coin: as_decimal(m.priority_cap_bps)
                for m in markets
                if m.priority_cap_bps is not None
            },
        )

    def cap_for(self, coin: str) -> Decimal:
        """The highest rate in bps an order in `coin` may pay: the market's own cap, else
        `cap_bps` (the same for the built-in entries and a strategy's IOCs)."""
        return self.caps.get(coin, self.cap_bps)

    def entry_bps(self, coin: str, edge_bps: Decimal, cost_bps: Decimal) -> Decimal:
        """The rate an entry with this edge over this cost pays, in bps (0: none)."""
        if self.mode == "off":
            return _ZERO
        above = edge_bps - cost_bps  # what the edge leaves after every other cost
        if above <= 0:
            return _ZERO
        cap = self.cap_for(coin)
        if self.mode == "fixed":
            want = self.fixed_bps if self.fixed_bps < cap else cap
        else:
            want = above * self.share
            if want > cap:
                want = cap
        # the rate is a cost: an edge that cannot cover it goes without priority
        return want if want <= above else _ZERO

    def entry_rate(self, coin: str, edge_bps: Decimal, cost_bps: Decimal) -> int:
        """`entry_bps` in wire units (rounded down)."""
        if self.mode == "off":
            return 0
        return rate_of_bps(self.entry_bps(coin, edge_bps, cost_bps))
