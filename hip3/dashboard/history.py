"""PnL and fees over time: a bounded ring of samples the dashboard takes itself.

The dispatcher keeps totals, not history, and the hot path must not grow a list per fill, so
the dashboard samples the totals on a timer (one sample a second by default) into a ring that
forgets the oldest. The sampler is a task on the bot's loop: a sample reads a few positions
between two events, microseconds a second, and never inside a frame's handling.

The same timer notes when the count of answered scheduleCancel posts grows, which tells the
page when the dead man's switch was last renewed (to within one sample).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from hip3.dashboard.source import MoneySample

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
# An hour at one sample a second: about 200 kB of JSON when a page first asks for all of it.
MAX_SAMPLES = 3600


class History:
    """Samples in time order, at most `capacity`; readable from any thread."""

    def __init__(self, capacity: int = MAX_SAMPLES) -> None:
        if capacity < 1:
            raise ValueError("a history needs room for at least one sample")
        self._samples: deque[MoneySample] = deque(maxlen=capacity)
        self._lock = threading.Lock()  # the loop appends, server threads read
        self.last_renewal_ms: int | None = None
        self._renewals_seen = 0

    def append(self, sample: MoneySample) -> None:
        with self._lock:
            if self._samples and sample.t_ms <= self._samples[-1].t_ms:
                return  # the wall clock stepped back: keep the series in time order
            self._samples.append(sample)

    def since(self, t_ms: int) -> list[MoneySample]:
        """Samples taken after `t_ms` (all of them for 0), oldest first."""
        with self._lock:
            samples = list(self._samples)
        if not samples or t_ms < samples[0].t_ms:
            return samples
        # the ring is in time order: skip from the newest end
        start = len(samples)
        while start > 0 and samples[start - 1].t_ms > t_ms:
            start -= 1
        return samples[start:]

    def __len__(self) -> int:
        return len(self._samples)

    def note_renewals(self, count: int, now_ms: int) -> None:
        if count > self._renewals_seen:
            self._renewals_seen = count
            self.last_renewal_ms = now_ms


async def sample_forever(
    history: History,
    sample: Callable[[], MoneySample],
    renewals: Callable[[], int],
    finished: Callable[[], bool],
    interval_s: float = SAMPLE_INTERVAL_S,
) -> None:
    """Sample until the bot finishes, then once more, so the chart ends where the run did."""
    while True:
        try:
            s = sample()
            history.append(s)
            history.note_renewals(renewals(), s.t_ms)
        except Exception:  # a broken sampler must not take the bot down: the page says stale
            log.exception("dashboard sampler failed; the charts stop here")
            return
        if finished():
            return
        await asyncio.sleep(interval_s)


def series_json(samples: list[MoneySample]) -> list[dict[str, Any]]:
    return [s.as_json() for s in samples]
