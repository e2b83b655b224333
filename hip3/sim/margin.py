"""Margin: leverage settings, equity, used and available margin per dex, leverage changes.

Each dex is margined on its own (standard account abstraction). Equity of a dex = balance +
unrealized PnL of that dex's positions at mark; a position uses |szi| * mark / leverage, a
resting order reserves its increasing notional / leverage at its own limit price.
"""

from __future__ import annotations

from decimal import Decimal

from hip3.sim import texts
from hip3.sim.accounts import ZERO, Account, Leverage
from hip3.sim.market import Markets
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import ActionError

DEFAULT_LEVERAGE = 20


class Margin:
    def __init__(self, universe: Universe, markets: Markets) -> None:
        self._universe = universe
        self._markets = markets

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
        value = account.balance(dex)
        for position in account.positions.values():
            if position.dex == dex:
                value += position.szi * (mark_px(position.coin) - position.entry_px)
        return value

    def position_margin(self, account: Account, dex: str) -> Decimal:
        used = ZERO
        for position in account.positions.values():
            if position.dex == dex:
                asset = self._universe.by_coin[position.coin]
                lev = self.leverage_of(account, asset).value
                used += abs(position.szi) * self._markets.mark_px(position.coin) / lev
        return used

    def available(self, account: Account, dex: str) -> Decimal:
        return (
            self.equity(account, dex)
            - self.position_margin(account, dex)
            - account.order_margin.get(dex, ZERO)
        )

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
