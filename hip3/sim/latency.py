"""Network latency between the simulated exchange and a client: a seeded random delay.

The delay is log-normal, fixed by its median and its 99th percentile, which is how the
exchange documents its round trips (order end to end for a co-located client: median 0.2 s,
p99 0.9 s, https://hyperliquid.gitbook.io/hyperliquid-docs/hypercore/overview). A p99 equal
to the median gives a constant delay; a median of 0 gives none. Draws come from one
`random.Random` seeded by the caller, so a run with the same seed sees the same delays in the
same order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# The standard normal quantile at 0.99: p99 = median * exp(Z99 * sigma) for a log-normal.
Z99 = 2.3263478740408408
# A draw is never longer than this many p99s: the log-normal tail is unbounded, and one
# 20-second answer would say more about the model than about the exchange.
TAIL_CAP_P99S = 4


class LatencySpecError(ValueError):
    """A latency setting that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class LatencySpec:
    """Median and 99th percentile of a delay, in milliseconds (0 and 0: no delay)."""

    median_ms: float = 0.0
    p99_ms: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("median", self.median_ms), ("p99", self.p99_ms)):
            if not math.isfinite(value) or value < 0:
                raise LatencySpecError(
                    f"latency {name} must be a finite number >= 0 ms, got {value}"
                )
        if self.p99_ms < self.median_ms:
            raise LatencySpecError(
                f"latency p99 ({self.p99_ms} ms) must not be below the median ({self.median_ms} ms)"
            )

    @property
    def is_zero(self) -> bool:
        return self.p99_ms == 0

    def describe(self) -> str:
        if self.median_ms == self.p99_ms:
            return f"{self.median_ms:g} ms"
        return f"median {self.median_ms:g} ms, p99 {self.p99_ms:g} ms"


def parse_latency(text: str) -> LatencySpec:
    """`MEDIAN` (a constant delay) or `MEDIAN,P99`, in milliseconds: "200,900", "0", "50"."""
    parts = [part.strip() for part in text.split(",")]
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise LatencySpecError(f"latency {text!r}: expected MEDIAN or MEDIAN,P99 in milliseconds")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise LatencySpecError(f"latency {text!r}: {', '.join(parts)} is not a number") from None
    median = values[0]
    p99 = values[1] if len(values) == 2 else median
    return LatencySpec(median, p99)


class Latency:
    """Draws delays from a `LatencySpec` with its own seeded generator."""

    def __init__(self, spec: LatencySpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._median = spec.median_ms
        if spec.median_ms > 0 and spec.p99_ms > spec.median_ms:
            self._sigma = math.log(spec.p99_ms / spec.median_ms) / Z99
        else:
            self._sigma = 0.0
        self._cap = spec.p99_ms * TAIL_CAP_P99S

    def draw_ms(self) -> float:
        if self._sigma == 0.0:
            return self._median
        value = self._median * math.exp(self._sigma * self._rng.gauss(0.0, 1.0))
        return min(value, self._cap)


__all__ = ["Latency", "LatencySpec", "LatencySpecError", "parse_latency"]
