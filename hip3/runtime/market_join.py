"""A market listed during the run joins it (a whole dex's new listing, found by rediscovery).

It gets what a configured market gets at start, from its whole-dex entry: its state and gates,
its spec (asset id from the meta position, as at start), the entry's threshold, priority cap,
liquidation buffer and leverage, its place in the strategy's markets, and its subscriptions. The
epoch's readiness takes it as a joined market: READY-MD once its own first data comes, while
every other market keeps its READY. A leverage to set makes it wait for that too, and only it
(`Ready.late`). Later epochs subscribe and await it like any other market (it is in the shared
coin list).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.config import MarketConfig, as_decimal
from hip3.market.state import MarketSpec


class MarketJoin:
    def __init__(
        self,
        *,
        coins: list[str],
        markets: dict[str, Any],
        gates: dict[str, Any],
        new_market: Callable[[str], Any],
        new_gates: Callable[[str], Any],
        thresholds: dict[str, Decimal] | None,
        priority_caps: dict[str, Decimal] | None,
        liq_ratios: dict[str, Decimal],
        default_liq_ratio: float,
        default_leverage: int,
        leverage: Any,
        ready: Any,
        epoch: Any,
        host: Any,
        trading: bool,
    ) -> None:
        self.coins = coins  # the run's markets, shared with the epoch and the reconciler
        self.markets = markets
        self.gates = gates
        self.new_market = new_market  # coin -> a fresh MarketState
        self.new_gates = new_gates  # coin -> fresh MarketGates
        # the built-in detector's per-market thresholds and the priority policy's caps (None:
        # the strategy keeps none)
        self.thresholds = thresholds
        self.priority_caps = priority_caps
        # the liquidation-buffer gate's ratio per market (entry_guards.min_liq_buffer_ratio
        # unless the entry overrides it; 0: not checked), in trading mode
        self.liq_ratios = liq_ratios
        self.default_liq_ratio = default_liq_ratio
        self.default_leverage = default_leverage  # margin.leverage
        self.leverage = leverage  # the LeverageSetter
        self.ready = ready
        self.epoch = epoch  # the ConnectionEpoch: readiness and subscriptions
        self.host = host  # the StrategyHost
        self.trading = trading

    def __call__(self, entry: MarketConfig, spec: MarketSpec) -> None:
        coin = entry.coin
        if coin in self.markets:
            return
        self.markets[coin] = self.new_market(coin)
        gate = self.gates[coin] = self.new_gates(coin)
        gate.on_params(spec)  # the parameters it is traded with from now on
        if entry.threshold_bps is not None and self.thresholds is not None:
            self.thresholds[coin] = as_decimal(entry.threshold_bps)
        if entry.priority_cap_bps is not None and self.priority_caps is not None:
            self.priority_caps[coin] = as_decimal(entry.priority_cap_bps)
        ratio = entry.min_liq_buffer_ratio
        ratio = self.default_liq_ratio if ratio is None else ratio
        if self.trading and ratio > 0:
            self.liq_ratios[coin] = as_decimal(ratio)
        lev = entry.leverage if entry.leverage is not None else self.default_leverage
        if self.trading and lev:
            self.ready.late.add(coin)  # READY-TRADING does not wait for it; its entries do
            self.leverage.want(coin, lev)
        self.coins.append(coin)
        self.host.add_market(coin)
        self.epoch.market_joined(coin)
