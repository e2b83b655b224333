"""Candles built from the trades the simulator executed (info candleSnapshot, `candle` feed).

Each trade updates one one-minute bucket of its coin; longer intervals are merged from those
buckets when asked, so a trade costs one bucket update whatever the intervals subscribed.
Intervals are the documented ones (https://hyperliquid.gitbook.io/hyperliquid-docs/
for-developers/api/info-endpoint, "Candle snapshot"). Buckets start at multiples of the
interval since the Unix epoch, except `1M`, which follows UTC calendar months. `T` is the
bucket's last millisecond, `n` the number of trades, o/h/l/c/v decimal strings. Only buckets
that saw a trade exist: a minute without trades has no candle.

Chosen by the simulator (the live rules are not published): the weekly bucket follows the
epoch (it starts on a Thursday), and one-minute buckets older than `MAX_MINUTES` are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hip3.sim import rules

MINUTE_MS = 60_000
INTERVAL_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "3d": 3 * 1440 * MINUTE_MS,
    "1w": 7 * 1440 * MINUTE_MS,
}
INTERVALS = (*INTERVAL_MS, "1M")
MAX_CANDLES = 5000  # a snapshot answers at most the 5000 most recent candles
MAX_MINUTES = 31 * 1440  # one month of one-minute buckets per coin


class _Bucket:
    __slots__ = ("close", "high", "low", "open", "trades", "volume")

    def __init__(self, px: Decimal) -> None:
        self.open = self.high = self.low = self.close = px
        self.volume = Decimal(0)
        self.trades = 0

    def add(self, px: Decimal, sz: Decimal) -> None:
        if px > self.high:
            self.high = px
        elif px < self.low:
            self.low = px
        self.close = px
        self.volume += sz
        self.trades += 1


class Candles:
    def __init__(self) -> None:
        self._minutes: dict[str, OrderedDict[int, _Bucket]] = {}
        self._last: dict[str, tuple[int, _Bucket]] = {}  # each coin's latest bucket

    def record(self, coin: str, time_ms: int, px: Decimal, sz: Decimal) -> None:
        start = time_ms - time_ms % MINUTE_MS
        last = self._last.get(coin)
        if last is not None and last[0] == start:  # most trades land in the current minute
            last[1].add(px, sz)
            return
        minutes = self._minutes.get(coin)
        if minutes is None:
            minutes = self._minutes[coin] = OrderedDict()
        bucket = minutes.get(start)
        if bucket is None:
            bucket = minutes[start] = _Bucket(px)
            if len(minutes) > MAX_MINUTES:
                minutes.popitem(last=False)
        self._last[coin] = (start, bucket)
        bucket.add(px, sz)

    def snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        """Candles of `coin` that overlap [start_ms, end_ms], oldest first."""
        merged: dict[int, list[Any]] = {}
        first = bucket_start(interval, start_ms)  # the whole candle that holds start_ms
        for minute, bucket in self._minutes.get(coin, {}).items():
            if minute < first or minute > end_ms:  # (a clock may step back: no early exit)
                continue
            start = bucket_start(interval, minute)
            entry = merged.get(start)
            if entry is None:
                merged[start] = [bucket.open, bucket.high, bucket.low, bucket.close,
                                 bucket.volume, bucket.trades]  # fmt: skip
                continue
            entry[1] = max(entry[1], bucket.high)
            entry[2] = min(entry[2], bucket.low)
            entry[3] = bucket.close
            entry[4] += bucket.volume
            entry[5] += bucket.trades
        candles = [_wire(coin, interval, start, merged[start]) for start in sorted(merged)]
        return candles[-MAX_CANDLES:]

    def current(self, coin: str, interval: str, now_ms: int) -> dict[str, Any] | None:
        """The candle of the interval that contains `now_ms`, if it has a trade."""
        start = bucket_start(interval, now_ms)
        found = self.snapshot(coin, interval, start, now_ms)
        return found[-1] if found else None


def bucket_start(interval: str, time_ms: int) -> int:
    if interval == "1M":
        moment = datetime.fromtimestamp(time_ms / 1000, UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    size = INTERVAL_MS[interval]
    return time_ms - time_ms % size


def bucket_end(interval: str, start_ms: int) -> int:
    """The last millisecond of the bucket that starts at `start_ms`."""
    if interval == "1M":
        moment = datetime.fromtimestamp(start_ms / 1000, UTC)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000) - 1
    return start_ms + INTERVAL_MS[interval] - 1


def _wire(coin: str, interval: str, start: int, entry: list[Any]) -> dict[str, Any]:
    open_, high, low, close, volume, trades = entry
    return {
        "t": start,
        "T": bucket_end(interval, start),
        "s": coin,
        "i": interval,
        "o": rules.wire(open_),
        "c": rules.wire(close),
        "h": rules.wire(high),
        "l": rules.wire(low),
        "v": rules.wire(volume),
        "n": trades,
    }
