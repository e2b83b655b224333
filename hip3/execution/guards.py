"""Entry guards: refuse a new entry because of what recent trading or the clock says.

Each guard is a small pure object: times (wall-clock ms) and amounts come in as arguments,
decisions go out as a reason string (None: allowed). None reads a clock or does I/O; the facade
`hip3.execution.entry_guards.EntryGuards` feeds them position outcomes and asks them in order.

- `HourlyDrawdown`: the round trips closed in the current clock hour lost `max_loss` or more.
- `TiltGuard`: `max_losses` losing round trips in a row start a cooldown.
- `ReEntryDelay`: a market just closed is not entered again for `delay_ms`.
- `BurstLimiter`: per market, `max_entries` entries within `window_ms` start a cooldown; an
  edge of `bypass_edge_bps` or more passes anyway.
- `MarketHealth`: per market, a score of its recent round trips disables it below
  `disable_below` and enables it again at `re_enable_at`, or after `probation_ms` with a fresh
  record (a disabled market has no new trades to redeem it, so without probation it would be off
  for good).
- `CorrelationCooldown`: `close_threshold` closes within `window_ms` (markets falling together)
  start a cooldown for every market.
- `CorrelationLimit`: positions weighted by group: a position counts its group's weight when two
  or more positions of that group point the same way, else 1; the weighted count with the
  candidate must not exceed `max_weighted`.
- `Blackout`: UTC time-of-day windows `[start, end)`, wrapping past midnight.
- `OpenInterestShare`: the market position after the entry may be at most `max_fraction` of
  the market's open interest (both valued at the entry's price): a position that is a large part
  of a thin HIP-3 market cannot be left quickly. An unknown open interest refuses.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "BLACKOUT",
    "BURST",
    "CORRELATION_COOLDOWN",
    "CORRELATION_LIMIT",
    "HOURLY_DRAWDOWN",
    "MARKET_HEALTH",
    "OI_FRACTION",
    "RE_ENTRY_DELAY",
    "TILT",
    "Blackout",
    "BurstLimiter",
    "CorrelationCooldown",
    "CorrelationGroup",
    "CorrelationLimit",
    "HourlyDrawdown",
    "MarketHealth",
    "OpenInterestShare",
    "ReEntryDelay",
    "TiltGuard",
    "parse_window",
]

HOURLY_DRAWDOWN = "hourly_drawdown"
TILT = "tilt_guard"
RE_ENTRY_DELAY = "re_entry_delay"
BURST = "burst_limit"
MARKET_HEALTH = "market_health"
CORRELATION_COOLDOWN = "correlation_cooldown"
CORRELATION_LIMIT = "correlation_limit"
BLACKOUT = "blackout"
OI_FRACTION = "oi_fraction"

_HOUR_MS = 3_600_000
_DAY_MIN = 1_440
_ZERO = Decimal(0)


class HourlyDrawdown:
    """Losses summed per clock window of `window_ms` (aligned to the epoch: the clock hour)."""

    def __init__(self, max_loss: Decimal, window_ms: int = _HOUR_MS) -> None:
        if not max_loss > 0:
            raise ValueError(f"HourlyDrawdown max_loss = {max_loss}: expected > 0")
        self.max_loss = max_loss
        self.window_ms = window_ms
        self.window_start = 0
        self.pnl = _ZERO

    def _roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.window_ms
        if start > self.window_start:
            self.window_start = start
            self.pnl = _ZERO

    def report(self, pnl: Decimal, at_ms: int) -> None:
        """A round trip's P&L, closed at `at_ms`; one from an earlier window is not counted."""
        self._roll(at_ms)
        if at_ms >= self.window_start:
            self.pnl += pnl

    def refusal(self, now_ms: int) -> str | None:
        self._roll(now_ms)
        return HOURLY_DRAWDOWN if self.pnl <= -self.max_loss else None


class TiltGuard:
    def __init__(self, max_losses: int, cooldown_ms: int) -> None:
        if max_losses < 1:
            raise ValueError(f"TiltGuard max_losses = {max_losses}: expected >= 1")
        self.max_losses = max_losses
        self.cooldown_ms = cooldown_ms
        self.losses = 0
        self.until = 0

    def on_outcome(self, pnl: Decimal, at_ms: int) -> None:
        if pnl < 0:
            self.losses += 1
            if self.losses >= self.max_losses:
                self.until = at_ms + self.cooldown_ms
                # a fresh streak is needed for the next cooldown (the seed bot kept the count,
                # so every further loss re-armed it)
                self.losses = 0
        else:
            self.losses = 0

    def refusal(self, now_ms: int) -> str | None:
        return TILT if now_ms < self.until else None


class ReEntryDelay:
    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self.closed_at: dict[str, int] = {}

    def on_close(self, coin: str, at_ms: int) -> None:
        self.closed_at[coin] = max(at_ms, self.closed_at.get(coin, at_ms))

    def refusal(self, coin: str, now_ms: int) -> str | None:
        at = self.closed_at.get(coin)
        return RE_ENTRY_DELAY if at is not None and now_ms - at < self.delay_ms else None


class BurstLimiter:
    def __init__(
        self, window_ms: int, max_entries: int, cooldown_ms: int, bypass_edge_bps: float = 0.0
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"BurstLimiter max_entries = {max_entries}: expected >= 1")
        self.window_ms = window_ms
        self.max_entries = max_entries
        self.cooldown_ms = cooldown_ms
        self.bypass_edge_bps = bypass_edge_bps
        self.entries: dict[str, deque[int]] = {}
        self.until: dict[str, int] = {}

    def _recent(self, coin: str, now_ms: int) -> deque[int]:
        q = self.entries.setdefault(coin, deque())
        while q and now_ms - q[0] >= self.window_ms:
            q.popleft()
        return q

    def refusal(self, coin: str, edge_bps: float, now_ms: int) -> str | None:
        """Read-only: asking never counts as an entry (only `record` does)."""
        if self.bypass_edge_bps and edge_bps >= self.bypass_edge_bps:
            return None
        if now_ms < self.until.get(coin, 0):
            return BURST
        return BURST if len(self._recent(coin, now_ms)) >= self.max_entries else None

    def record(self, coin: str, now_ms: int) -> None:
        """An entry was sent (after every other gate passed)."""
        q = self._recent(coin, now_ms)
        q.append(now_ms)
        if len(q) >= self.max_entries:
            self.until[coin] = now_ms + self.cooldown_ms
            q.clear()


@dataclass(slots=True)
class _Health:
    outcomes: deque
    disabled_at: int | None = None


class MarketHealth:
    """score = 0.6 x win rate + 0.4 x P&L quality, where the quality is 1 for an average round
    trip >= 0 USD, 0 at or below `bad_avg_usd` (-1), linear in between."""

    def __init__(
        self,
        *,
        window: int = 20,
        disable_below: float = 0.3,
        re_enable_at: float = 0.5,
        min_samples: int = 10,
        probation_ms: int = 0,
        bad_avg_usd: Decimal = Decimal(-1),
    ) -> None:
        if not 1 <= min_samples <= window:
            raise ValueError(f"MarketHealth min_samples = {min_samples}: expected 1..{window}")
        if not 0 <= disable_below <= re_enable_at <= 1:
            raise ValueError(
                f"MarketHealth disable_below = {disable_below}, re_enable_at = {re_enable_at}: "
                "expected 0 <= disable_below <= re_enable_at <= 1"
            )
        self.window = window
        self.disable_below = disable_below
        self.re_enable_at = re_enable_at
        self.min_samples = min_samples
        self.probation_ms = probation_ms
        self.bad_avg = bad_avg_usd
        self.markets: dict[str, _Health] = {}

    def _health(self, coin: str) -> _Health:
        h = self.markets.get(coin)
        if h is None:
            h = self.markets[coin] = _Health(deque(maxlen=self.window))
        return h

    def score(self, coin: str) -> float | None:
        h = self.markets.get(coin)
        if h is None or len(h.outcomes) < self.min_samples:
            return None
        n = len(h.outcomes)
        wins = sum(1 for x in h.outcomes if x > 0)
        avg = sum(h.outcomes, _ZERO) / n
        if avg >= 0:
            quality = 1.0
        elif avg <= self.bad_avg:
            quality = 0.0
        else:
            quality = float(1 - avg / self.bad_avg)
        return 0.6 * wins / n + 0.4 * quality

    def on_outcome(self, coin: str, pnl: Decimal, at_ms: int) -> None:
        h = self._health(coin)
        h.outcomes.append(pnl)
        s = self.score(coin)
        if s is None:
            return
        if h.disabled_at is None and s < self.disable_below:
            h.disabled_at = at_ms
        elif h.disabled_at is not None and s >= self.re_enable_at:
            h.disabled_at = None

    def refusal(self, coin: str, now_ms: int) -> str | None:
        h = self.markets.get(coin)
        if h is None or h.disabled_at is None:
            return None
        if self.probation_ms and now_ms - h.disabled_at >= self.probation_ms:
            # on probation: enabled again with a fresh record, judged anew
            h.disabled_at = None
            h.outcomes.clear()
            return None
        return MARKET_HEALTH


class CorrelationCooldown:
    def __init__(self, close_threshold: int, window_ms: int, cooldown_ms: int) -> None:
        if close_threshold < 1:
            raise ValueError(f"CorrelationCooldown close_threshold = {close_threshold}: >= 1")
        self.close_threshold = close_threshold
        self.window_ms = window_ms
        self.cooldown_ms = cooldown_ms
        self.closes: deque[int] = deque()
        self.until = 0

    def on_close(self, at_ms: int) -> None:
        q = self.closes
        q.append(at_ms)
        while q and at_ms - q[0] >= self.window_ms:
            q.popleft()
        if len(q) >= self.close_threshold:
            self.until = at_ms + self.cooldown_ms
            q.clear()

    def refusal(self, now_ms: int) -> str | None:
        return CORRELATION_COOLDOWN if now_ms < self.until else None


@dataclass(slots=True, frozen=True)
class CorrelationGroup:
    name: str
    markets: tuple[str, ...]
    weight: float = 1.5


class CorrelationLimit:
    def __init__(self, groups: Iterable[CorrelationGroup], max_weighted: float) -> None:
        self.max_weighted = max_weighted
        self.group_of: dict[str, CorrelationGroup] = {}
        for g in groups:
            for coin in g.markets:
                if coin in self.group_of:
                    raise ValueError(
                        f"CorrelationLimit: {coin} is in groups {self.group_of[coin].name!r} "
                        f"and {g.name!r}: expected one group per market"
                    )
                self.group_of[coin] = g

    def weighted(self, positions: Mapping[str, bool]) -> float:
        """The weighted count of `positions` (coin -> is long)."""
        same: dict[tuple[str, bool], int] = {}
        for coin, is_long in positions.items():
            g = self.group_of.get(coin)
            if g is not None:
                same[(g.name, is_long)] = same.get((g.name, is_long), 0) + 1
        total = 0.0
        for coin, is_long in positions.items():
            g = self.group_of.get(coin)
            total += g.weight if g is not None and same[(g.name, is_long)] >= 2 else 1.0
        return total

    def refusal(self, positions: Mapping[str, bool], coin: str, is_long: bool) -> str | None:
        with_candidate = {**positions, coin: is_long}
        return CORRELATION_LIMIT if self.weighted(with_candidate) > self.max_weighted else None


_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def parse_window(text: str) -> tuple[int, int]:
    """ "HH:MM-HH:MM" (UTC) as (start, end) minutes of the day."""
    m = _WINDOW.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"blackout window {text!r}: expected 'HH:MM-HH:MM' (UTC, 24-hour)")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if start == end:
        raise ValueError(f"blackout window {text!r}: expected a start different from the end")
    return start, end


class Blackout:
    def __init__(self, windows: Iterable[tuple[int, int]]) -> None:
        self.windows = tuple(windows)

    def refusal(self, now_wall_ms: int) -> str | None:
        minute = (now_wall_ms // 60_000) % _DAY_MIN
        for start, end in self.windows:
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if inside:
                return BLACKOUT
        return None


class OpenInterestShare:
    def __init__(self, max_fraction: Decimal) -> None:
        if not 0 < max_fraction <= 1:
            raise ValueError(
                f"OpenInterestShare max_fraction = {max_fraction}: expected 0 < x <= 1"
            )
        self.max_fraction = max_fraction

    def refusal(
        self, position_notional: Decimal | None, open_interest_notional: Decimal | None
    ) -> str | None:
        if position_notional is None:
            return None  # not an entry with a size to judge
        if open_interest_notional is None or open_interest_notional <= 0:
            return OI_FRACTION
        if position_notional > open_interest_notional * self.max_fraction:
            return OI_FRACTION
        return None
