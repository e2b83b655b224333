"""What the guard sends, built from what the exchange says: pure functions, no I/O.

- Markets: asset ids and szDecimals from `perpDexs` and each dex's `meta`
  (docs/exchange/hip3.md#asset-ids): `100000 + dex_index * 10000 + index_in_meta` on a
  builder dex, the index in `meta` on the first dex.
- Cancels: every open order by (asset, oid), at most 200 to an action, the exchange's limit
  for one signed action (docs/exchange/rules.md#ip-rate-limits).
- Flatten orders: reduce-only IOC on the opposite side for the whole position. The limit is
  the price of the book level at which the levels from the top cover the size, moved
  `slippage_bps` further through the book, then rounded to a valid tick in the aggressive
  direction (docs/exchange/rules.md#prices). The size is the position's own, cut to the lot
  (docs/exchange/rules.md#sizes). A reduce-only order that closes the whole position is exempt
  from the $10 minimum (docs/exchange/rules.md#minimum-notional), so a small position still
  closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hip3.protocol.actions import cancel_action, limit_order_wire
from hip3.protocol.ids import perp_asset_id
from hip3.protocol.numbers import Rounding, format_size, quantize_price, wire_decimal

__all__ = [
    "MAX_ENTRIES_PER_ACTION",
    "FlattenOrder",
    "Market",
    "NoPrice",
    "cancel_actions",
    "flatten_order",
    "markets_from",
]

MAX_ENTRIES_PER_ACTION = 200
_BPS = Decimal(10_000)


@dataclass(frozen=True)
class Market:
    coin: str
    asset: int
    sz_decimals: int


class NoPrice(ValueError):
    """The book has no level on the side a flatten order must take."""


def markets_from(perp_dexs: list[Any], metas: dict[str, dict[str, Any]]) -> dict[str, Market]:
    """coin -> Market for every asset of the dexes in `metas` (dex name -> its `meta` answer),
    numbered by the dex's place in `perpDexs` (element 0, null, is the first dex "")."""
    index = {"": 0}
    for i, dex in enumerate(perp_dexs):
        if i > 0 and isinstance(dex, dict):
            index[dex["name"]] = i
    markets: dict[str, Market] = {}
    for dex, meta in metas.items():
        if dex not in index:
            raise ValueError(f"dex {dex!r} is not listed by perpDexs")
        for i, asset in enumerate(meta["universe"]):
            markets[asset["name"]] = Market(
                coin=asset["name"],
                asset=perp_asset_id(index[dex], i),
                sz_decimals=asset["szDecimals"],
            )
    return markets


def cancel_actions(
    open_orders: list[dict[str, Any]], markets: dict[str, Market]
) -> tuple[list[dict], list[dict[str, Any]]]:
    """`cancel` actions for every order in an `openOrders` answer, at most 200 to an action,
    and the orders whose coin is not in `markets` (they cannot be addressed by asset id)."""
    targets: list[tuple[int, int]] = []
    unknown: list[dict[str, Any]] = []
    for order in open_orders:
        market = markets.get(order["coin"])
        if market is None:
            unknown.append(order)
        else:
            targets.append((market.asset, order["oid"]))
    actions = [
        cancel_action(targets[i : i + MAX_ENTRIES_PER_ACTION])
        for i in range(0, len(targets), MAX_ENTRIES_PER_ACTION)
    ]
    return actions, unknown


@dataclass(frozen=True)
class FlattenOrder:
    coin: str
    is_buy: bool
    px: str
    sz: str
    wire: dict

    def describe(self) -> str:
        return (
            f"{'buy' if self.is_buy else 'sell'} {self.sz} {self.coin} IOC reduce-only @ {self.px}"
        )


def flatten_order(
    market: Market, szi: Decimal, book: dict[str, Any] | None, slippage_bps: Decimal
) -> FlattenOrder:
    """The reduce-only IOC that closes a position of signed size `szi` against `book` (an
    `l2Book` answer: levels [bids descending, asks ascending]). NoPrice when that side is
    empty. A book thinner than the position prices at its last level: the IOC takes what is
    there and the next round closes the rest."""
    if szi == 0:
        raise ValueError(f"{market.coin}: no position to close")
    is_buy = szi < 0  # a short closes by buying from the asks
    size = abs(szi)
    levels = (book or {}).get("levels") or [[], []]
    side = levels[1] if is_buy else levels[0]
    if not side:
        raise NoPrice(f"{market.coin}: the book has no {'asks' if is_buy else 'bids'}")
    covered = Decimal(0)
    px = Decimal(side[-1]["px"])
    for level in side:
        covered += Decimal(level["sz"])
        if covered >= size:
            px = Decimal(level["px"])
            break
    through = slippage_bps / _BPS
    limit = px * (1 + through) if is_buy else px * (1 - through)
    limit_px = wire_decimal(
        quantize_price(
            limit, sz_decimals=market.sz_decimals, is_buy=is_buy, rounding=Rounding.AGGRESSIVE
        )
    )
    sz = format_size(size, sz_decimals=market.sz_decimals)
    wire = limit_order_wire(
        asset=market.asset, is_buy=is_buy, px=limit_px, sz=sz, reduce_only=True, tif="Ioc"
    )
    return FlattenOrder(coin=market.coin, is_buy=is_buy, px=limit_px, sz=sz, wire=wire)
