"""EntryGuards: the one place the executor asks "may this entry go out now?" beyond its own
position and notional limits, and tells "this entry went out".

It owns the guards of `hip3.execution.guards` that the configuration turns on and feeds them
round-trip outcomes read from the position tracker: a market's position going from open to flat
(or flipping) is one round trip, whose P&L is the exchange's closed P&L less fees accrued since
the market was last seen flat (so the entry's fee counts against it). The close time is the
closing fill's exchange time. Outcomes are read lazily, at each question, so nothing else has to
call in when a fill lands.

Order of the questions (the first refusal is the reason counted): blackout window, hourly
drawdown, correlation cooldown, burst limit, tilt, re-entry delay, market health, open-interest
share, correlation limit. The burst limiter counts an entry only when `on_sent` says it went out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.execution.guards import (
    Blackout,
    BurstLimiter,
    CorrelationCooldown,
    CorrelationGroup,
    CorrelationLimit,
    HourlyDrawdown,
    MarketHealth,
    OpenInterestShare,
    ReEntryDelay,
    TiltGuard,
    parse_window,
)
from hip3.execution.positions import PositionTracker

if TYPE_CHECKING:
    from hip3.config import EntryGuardsConfig

__all__ = ["EntryGuards"]

_ZERO = Decimal(0)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class EntryGuards:
    def __init__(
        self,
        *,
        positions: PositionTracker,
        blackout: Blackout | None = None,
        drawdown: HourlyDrawdown | None = None,
        cooldown: CorrelationCooldown | None = None,
        burst: BurstLimiter | None = None,
        tilt: TiltGuard | None = None,
        re_entry: ReEntryDelay | None = None,
        health: MarketHealth | None = None,
        correlation: CorrelationLimit | None = None,
        oi_share: OpenInterestShare | None = None,
    ) -> None:
        self.positions = positions
        self.blackout = blackout
        self.drawdown = drawdown
        self.cooldown = cooldown
        self.burst = burst
        self.tilt = tilt
        self.re_entry = re_entry
        self.health = health
        self.correlation = correlation
        self.oi_share = oi_share
        # with every guard off (the default) a question costs one attribute read
        self.active = (
            any(
                g is not None
                for g in (blackout, drawdown, cooldown, burst, tilt, re_entry, health, correlation)
            )
            or oi_share is not None
        )
        self.outcomes = 0
        self._entry_edge: dict[str, float] = {}
        # coin -> (long?, net P&L when the round trip began); (net P&L, fill count) of coins
        # last seen flat (a coin the tracker did not know yet stood at zero and zero)
        self._open: dict[str, tuple[bool, Decimal]] = {}
        self._flat: dict[str, tuple[Decimal, int]] = {}

    @classmethod
    def from_config(cls, cfg: EntryGuardsConfig, *, positions: PositionTracker) -> EntryGuards:
        t, r, b, h = cfg.tilt, cfg.re_entry, cfg.burst, cfg.market_health
        cc, cl = cfg.correlation_cooldown, cfg.correlation_limit
        return cls(
            positions=positions,
            blackout=(
                Blackout(parse_window(w) for w in cfg.blackout_windows)
                if cfg.blackout_windows
                else None
            ),
            drawdown=(
                HourlyDrawdown(Decimal(repr(cfg.hourly_drawdown.max_loss_usd)))
                if cfg.hourly_drawdown.max_loss_usd
                else None
            ),
            cooldown=(
                CorrelationCooldown(cc.close_threshold, _ms(cc.window_s), _ms(cc.cooldown_s))
                if cc.close_threshold
                else None
            ),
            burst=(
                BurstLimiter(_ms(b.window_s), b.max_entries, _ms(b.cooldown_s), b.bypass_edge_bps)
                if b.enabled
                else None
            ),
            tilt=TiltGuard(t.max_consecutive_losses, _ms(t.cooldown_s)) if t.enabled else None,
            re_entry=ReEntryDelay(_ms(r.delay_s)) if r.enabled else None,
            health=(
                MarketHealth(
                    window=h.window,
                    disable_below=h.disable_below,
                    re_enable_at=h.re_enable_at,
                    min_samples=h.min_samples,
                    probation_ms=_ms(h.probation_s),
                )
                if h.enabled
                else None
            ),
            oi_share=(
                OpenInterestShare(Decimal(repr(cfg.max_oi_fraction)))
                if cfg.max_oi_fraction
                else None
            ),
            correlation=(
                CorrelationLimit(
                    (CorrelationGroup(g.name, g.markets, g.weight) for g in cl.groups),
                    cl.max_weighted_positions,
                )
                if cl.enabled
                else None
            ),
        )

    # -- the executor's two calls --------------------------------------------------------------

    def refusal(
        self,
        coin: str,
        *,
        is_buy: bool,
        edge_bps: float,
        now_ms: int,
        position_notional: Decimal | None = None,
        open_interest_notional: Decimal | None = None,
    ) -> str | None:
        """Why an entry in `coin` may not go out at wall time `now_ms`, or None.

        `position_notional` is the market's position after the entry and
        `open_interest_notional` the market's open interest, both valued at the entry price."""
        if not self.active:
            return None
        self.observe(now_ms)
        if self.blackout is not None and (r := self.blackout.refusal(now_ms)):
            return r
        if self.drawdown is not None and (r := self.drawdown.refusal(now_ms)):
            return r
        if self.cooldown is not None and (r := self.cooldown.refusal(now_ms)):
            return r
        if self.burst is not None and (r := self.burst.refusal(coin, edge_bps, now_ms)):
            return r
        if self.tilt is not None and (r := self.tilt.refusal(now_ms)):
            return r
        if self.re_entry is not None and (r := self.re_entry.refusal(coin, now_ms)):
            return r
        if self.health is not None and (r := self.health.refusal(coin, now_ms)):
            return r
        if self.oi_share is not None and (
            r := self.oi_share.refusal(position_notional, open_interest_notional)
        ):
            return r
        if self.correlation is not None:
            held = {c: p.size > 0 for c, p in self.positions.positions.items() if p.size}
            if r := self.correlation.refusal(held, coin, is_buy):
                return r
        return None

    def on_sent(self, coin: str, *, edge_bps: float, now_ms: int) -> None:
        """An entry went out (every gate passed)."""
        self._entry_edge[coin] = edge_bps
        if self.burst is not None:
            self.burst.record(coin, now_ms)

    def entry_edge(self, coin: str) -> float | None:
        """The edge (bps) of the last entry sent in `coin` (the exits scale by it)."""
        return self._entry_edge.get(coin)

    # -- outcomes --------------------------------------------------------------------------------

    def observe(self, now_ms: int) -> None:
        """Turn positions that closed since the last look into round-trip outcomes."""
        for coin, p in self.positions.positions.items():
            net = p.realized_pnl - p.fees
            at = p.last_fill_ms or now_ms
            was = self._open.get(coin)
            if was is not None and (not p.size or (p.size > 0) != was[0]):
                del self._open[coin]
                self._outcome(coin, net - was[1], at)
                self._flat[coin] = (net, p.fills)
            if p.size:
                if coin not in self._open:
                    self._open[coin] = (p.size > 0, self._flat.get(coin, (_ZERO, 0))[0])
                continue
            flat_net, flat_fills = self._flat.get(coin, (_ZERO, 0))
            if p.fills != flat_fills and was is None:
                # flat at both looks with fills in between: a whole round trip was missed
                self._outcome(coin, net - flat_net, at)
            self._flat[coin] = (net, p.fills)

    def _outcome(self, coin: str, pnl: Decimal, at_ms: int) -> None:
        self.outcomes += 1
        if self.drawdown is not None:
            self.drawdown.report(pnl, at_ms)
        if self.tilt is not None:
            self.tilt.on_outcome(pnl, at_ms)
        if self.re_entry is not None:
            self.re_entry.on_close(coin, at_ms)
        if self.health is not None:
            self.health.on_outcome(coin, pnl, at_ms)
        if self.cooldown is not None:
            self.cooldown.on_close(at_ms)
