"""Margin: leverage settings, equity, used and available margin per dex, leverage changes.

In standard mode (userAbstraction "disabled") each perp dex is margined on its own, in its
collateral token. In unified and portfolio-margin modes the dexes that share a collateral
token share one balance, the account's spot balance of that token (plus the PnL already
realized on those dexes): https://hyperliquid.gitbook.io/hyperliquid-docs/trading/
account-abstraction-modes. Portfolio margin's extra collateral (HYPE, BTC) is not simulated.

Margin per position follows its leverage setting (https://hyperliquid.gitbook.io/
hyperliquid-docs/trading/margining):
- cross: the position uses |szi| * mark / leverage of the shared balance, and its unrealized
  PnL counts for (or against) every other order and position of the pool;
- isolated (the only choice where the asset's `marginMode` is strictIsolated or noCross): the
  margin set aside when it opened, |szi| * entry / leverage, is all it takes from the pool, and
  its unrealized PnL stays with it until it closes.
A resting order reserves its increasing notional / leverage at its own limit price.
Equity (accountValue) = balance + unrealized PnL of every position of the pool at mark.

Liquidation price (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations):
the maintenance margin is half the initial margin at the asset's maxLeverage, a rate of
l = 1 / (2 * maxLeverage) of the position's value at mark. A cross position's margin is the
pool's cross account value (balance less what isolated positions set aside, plus the cross
positions' unrealized PnL) less the maintenance margin of the pool's other cross positions; an
isolated position's margin is what it set aside plus its own unrealized PnL. With
`available` that margin less the position's own maintenance margin at mark p, the position is
liquidated at p - side * available / |szi| / (1 - side * l), side +1 long and -1 short, every
other price held. The simulator reports that price (a long's at or below zero is no price: no
fall of the mark liquidates it, and the answer says null); it does not liquidate.
"""

from __future__ import annotations

from decimal import Decimal

from hip3.sim import rules, texts
from hip3.sim.accounts import STANDARD, ZERO, Account, Leverage, Position
from hip3.sim.market import Markets
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import ActionError

DEFAULT_LEVERAGE = 20


class Margin:
    def __init__(self, universe: Universe, markets: Markets) -> None:
        self._universe = universe
        self._markets = markets
        self._token_dexes: dict[str, tuple[str, ...]] = {}  # collateral -> dexes it margins
        for dex in universe.dexes:
            token = dex.collateral.name
            self._token_dexes[token] = (*self._token_dexes.get(token, ()), dex.name)

    def pool(self, account: Account, dex: str) -> tuple[tuple[str, ...], Decimal]:
        """(the dexes margined together with `dex`, their shared balance)."""
        if account.abstraction == STANDARD:
            return (dex,), account.balance(dex)
        token = self._universe.by_dex_name[dex].collateral.name
        dexes = self._token_dexes[token]
        return dexes, account.spot.get(token, ZERO) + sum(account.balance(d) for d in dexes)

    def leverage_of(self, account: Account, asset: Asset) -> Leverage:
        setting = account.leverage.get(asset.coin)
        if setting is None:
            setting = Leverage(
                is_cross=not asset.isolated_only, value=min(DEFAULT_LEVERAGE, asset.max_leverage)
            )
        return setting

    def order_margin(
        self, account: Account, asset: Asset, is_buy: bool, sz: Decimal, px: Decimal
    ) -> Decimal:
        """Margin an order reserves: only the part that would grow the position counts."""
        position = account.position(asset.coin)
        increasing = sz
        if position and (position > 0) != is_buy:
            increasing = max(ZERO, sz - abs(position))
        return increasing * px / self.leverage_of(account, asset).value

    def equity(self, account: Account, dex: str) -> Decimal:
        mark_px = self._markets.mark_px
        dexes, value = self.pool(account, dex)
        for position in account.positions.values():
            if position.dex in dexes:
                value += position.szi * (mark_px(position.coin) - position.entry_px)
        return value

    def position_margin(self, account: Account, dex: str) -> Decimal:
        used = ZERO
        for position in account.positions.values():
            if position.dex == dex:
                asset = self._universe.by_coin[position.coin]
                leverage = self.leverage_of(account, asset)
                used += abs(position.szi) * self._markets.mark_px(position.coin) / leverage.value
                if not leverage.is_cross:
                    used += position.isolated_extra
        return used

    def available(self, account: Account, dex: str) -> Decimal:
        """What is left for new orders and for transfers out (the dex's `withdrawable`)."""
        mark_px = self._markets.mark_px
        by_coin = self._universe.by_coin
        dexes, free = self.pool(account, dex)
        for position in account.positions.values():
            if position.dex not in dexes:
                continue
            leverage = self.leverage_of(account, by_coin[position.coin])
            if leverage.is_cross:
                mark = mark_px(position.coin)
                free += position.szi * (mark - position.entry_px)
                free -= abs(position.szi) * mark / leverage.value
            else:  # and what updateIsolatedMargin added to it
                free -= abs(position.szi) * position.entry_px / leverage.value
                free -= position.isolated_extra
        for pooled in dexes:
            free -= account.order_margin.get(pooled, ZERO)
        return free

    def isolated_margin(self, account: Account, position: Position) -> Decimal:
        """An isolated position's own margin: what it set aside (|szi| x entry / leverage, and
        what updateIsolatedMargin added) with its unrealized PnL at mark."""
        leverage = self.leverage_of(account, self._universe.by_coin[position.coin])
        mark = self._markets.mark_px(position.coin)
        set_aside = abs(position.szi) * position.entry_px / leverage.value
        return set_aside + position.isolated_extra + position.szi * (mark - position.entry_px)

    def maintenance_margin(self, position: Position) -> Decimal:
        """Half the initial margin at the asset's maxLeverage, at mark."""
        asset = self._universe.by_coin[position.coin]
        return abs(position.szi) * self._markets.mark_px(position.coin) / (2 * asset.max_leverage)

    def liquidation_px(self, account: Account, position: Position) -> Decimal | None:
        """The mark at which `position` is liquidated (module docstring), or None."""
        if not position.szi:
            return None
        by_coin = self._universe.by_coin
        asset = by_coin[position.coin]
        rate = Decimal(1) / (2 * asset.max_leverage)
        mark = self._markets.mark_px(position.coin)
        if self.leverage_of(account, asset).is_cross:
            dexes, available = self.pool(account, position.dex)
            for other in account.positions.values():
                if other.dex not in dexes or not other.szi:
                    continue
                if self.leverage_of(account, by_coin[other.coin]).is_cross:
                    other_mark = self._markets.mark_px(other.coin)
                    available += other.szi * (other_mark - other.entry_px)
                    available -= self.maintenance_margin(other)
                else:
                    pnl = other.szi * (self._markets.mark_px(other.coin) - other.entry_px)
                    available -= self.isolated_margin(account, other) - pnl
        else:
            available = self.isolated_margin(account, position) - self.maintenance_margin(position)
        side = Decimal(1) if position.szi > 0 else Decimal(-1)
        px = mark - side * available / abs(position.szi) / (1 - side * rate)
        return px if px > 0 else None

    def update_isolated_margin(self, account: Account, asset: Asset, amount: Decimal) -> None:
        """Add (amount > 0) or remove (amount < 0) margin of an isolated position.

        Added margin stays with the position until it closes; only added margin can be
        removed (never below what the leverage requires), and none on a strictIsolated asset.
        """
        position = account.positions.get(asset.coin)
        if position is None or not position.szi:
            raise ActionError(texts.ISOLATED_NO_POSITION.format(coin=asset.coin))
        if self.leverage_of(account, asset).is_cross:
            raise ActionError(texts.ISOLATED_NOT_ISOLATED.format(coin=asset.coin))
        if amount > 0:
            if amount > self.available(account, asset.dex):
                raise ActionError(texts.ISOLATED_ADD_MARGIN)
        elif amount < 0:
            if asset.margin_mode == "strictIsolated":
                raise ActionError(texts.ISOLATED_STRICT.format(coin=asset.coin))
            if -amount > position.isolated_extra:
                raise ActionError(
                    texts.ISOLATED_REMOVE_MARGIN.format(
                        removable=rules.wire(rules.usdc(position.isolated_extra))
                    )
                )
        position.isolated_extra += amount

    def update_leverage(self, account: Account, asset: Asset, is_cross: bool, value: int) -> None:
        """Apply a new leverage, or refuse it (and keep the old one) if margin would not fit."""
        previous = account.leverage.get(asset.coin)
        account.leverage[asset.coin] = Leverage(is_cross=is_cross, value=value)
        if self.available(account, asset.dex) < 0:
            if previous is None:
                del account.leverage[asset.coin]
            else:
                account.leverage[asset.coin] = previous
            raise ActionError(texts.LEVERAGE_MARGIN)
