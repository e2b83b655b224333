"""An ALO market maker around the oracle, written on hip3's strategy API.

It quotes one bid and one ask in `coin`, `half_spread_bps` either side of the oracle, as
post-only (ALO) orders that rest on the book, but never nearer than the market's maker fee
plus `edge_bps` (`Context.maker_fee_bps`: the account's maker rate scaled by the dex's fee
scale and growth mode), so a fill of an unskewed quote earns at least `edge_bps` over the
oracle after its fee. Inventory skews both quotes: holding `max_position` long moves them down
by `skew_bps` (selling gets easier, buying harder: the quote that reduces the position may then
sit nearer than the fee floor, a price paid to unload), short the other way, and the side that
would grow a full position is not quoted at all. When the oracle moves a quote more than
`requote_bps` from where it should be, the quote is modified in place (one batchModify: the old
order is cancelled and the new one placed by the exchange). When the market's data goes stale
(the bot's freshness rule: no new oracle or book for too long), every quote is cancelled until
fresh data returns.

Run it against the simulator:

    hip3 bot --strategy examples/maker.py:AloMaker --config maker.toml

with `[strategy.params] coin = "xyz:AAA"` in maker.toml (see docs/guides/write-a-strategy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hip3.strategy.api import AssetCtx, Context, OrderUpdate, Strategy, Timer

_BPS = Decimal(10_000)


@dataclass(frozen=True)
class MakerParams:
    coin: str
    size: Decimal = Decimal(1)  # per quote, in the coin
    half_spread_bps: Decimal = Decimal(30)
    edge_bps: Decimal = Decimal(2)  # what a fill must earn beyond the maker fee
    skew_bps: Decimal = Decimal(20)  # quote shift at a full max_position
    max_position: Decimal = Decimal(3)
    requote_bps: Decimal = Decimal(5)
    interval_ms: int = 250  # how often quotes are checked besides each oracle update

    def __post_init__(self) -> None:
        if self.size <= 0 or self.max_position <= 0:
            raise ValueError("size and max_position must be > 0")
        if self.half_spread_bps <= 0 or self.requote_bps < 0 or self.skew_bps < 0:
            raise ValueError("half_spread_bps must be > 0, requote_bps and skew_bps >= 0")
        if self.edge_bps < 0:
            raise ValueError("edge_bps must be >= 0")


class AloMaker(Strategy):
    Params = MakerParams

    def __init__(self, ctx: Context, params: MakerParams) -> None:
        super().__init__(ctx, params)
        self.p = params
        self.replaced: set[str] = set()  # quotes a modify is replacing: the exchange ends them

    def on_start(self) -> None:
        self.ctx.set_timer("quote", after_ms=0, every_ms=self.p.interval_ms)

    def on_asset_ctx(self, ctx: AssetCtx) -> None:
        if ctx.coin == self.p.coin:
            self.requote()

    def on_timer(self, timer: Timer) -> None:
        self.requote()

    def on_order(self, update: OrderUpdate) -> None:
        if update.is_final:
            self.replaced.discard(update.cloid)

    def half_spread(self) -> Decimal:
        """How far from the oracle each quote sits before the skew, in bps: the configured
        half-spread, widened to cover the maker fee plus the edge wanted."""
        floor = self.ctx.maker_fee_bps(self.p.coin) + self.p.edge_bps
        return max(self.p.half_spread_bps, floor)

    def wanted(self) -> dict[bool, Decimal]:
        """The price each side should be quoted at now (a side left out is not quoted)."""
        p, ctx = self.p, self.ctx
        oracle = ctx.market(p.coin).oracle_px
        if oracle is None:
            return {}
        position = ctx.position(p.coin)
        lean = max(Decimal(-1), min(Decimal(1), position / p.max_position))
        shift = -lean * p.skew_bps  # long: both quotes lower
        half = self.half_spread()
        out = {}
        if position < p.max_position:
            out[True] = oracle * (1 + (shift - half) / _BPS)
        if position > -p.max_position:
            out[False] = oracle * (1 + (shift + half) / _BPS)
        return out

    def requote(self) -> None:
        p, ctx = self.p, self.ctx
        if ctx.is_stale(p.coin) or not ctx.is_trading(p.coin):
            self.cancel_all()
            return
        mine = [
            o
            for o in ctx.open_orders(p.coin)
            if o.purpose == "strategy" and o.cloid not in self.replaced
        ]
        wanted = self.wanted()
        for is_buy in (True, False):
            side = [o for o in mine if o.is_buy == is_buy]
            for extra in side[:-1]:  # one quote a side: the newest stays
                if extra.state in ("resting", "partially_filled"):
                    ctx.cancel(extra.cloid)
            order = side[-1] if side else None
            px = wanted.get(is_buy)
            if order is None:
                if px is not None:
                    ctx.submit(p.coin, is_buy=is_buy, size=p.size, px=px, tif="Alo")
            elif order.state not in ("resting", "partially_filled"):
                continue  # its answer is not in yet: decide on the next pass
            elif px is None:
                ctx.cancel(order.cloid)
            elif (
                abs(order.px - px) / px * _BPS > p.requote_bps
                and ctx.modify(order.cloid, px=px, size=p.size).ok
            ):
                self.replaced.add(order.cloid)

    def cancel_all(self) -> None:
        for order in self.ctx.open_orders(self.p.coin):
            if order.purpose == "strategy" and order.state in ("resting", "partially_filled"):
                self.ctx.cancel(order.cloid)
