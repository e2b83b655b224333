"""Rediscovery while connected, for whole dexes (`coin = "xyz:*"`): the markets a dex lists
change during a run, and the run follows them without a restart.

Every `discovery.rediscover_s` of a live connection it asks perpDexs and the meta of each
whole dex again, as info posts like any other (the loop never waits for them). With every
answer in, the fresh specs of those dexes go through the one discovery path of the epoch's
reconciliation (`Reconciler.apply_specs`): a traded market listed `isDelisted` is retired
there exactly as at a reconnect (gate `delisted`, READY stops waiting, its streams are
unsubscribed), and a changed asset id or precision trips the market's ParamChange gate. A
live market the run does not know yet joins it (`MarketJoin`), with its asset id taken from
its meta position as at start, so no id ever shifts.

A failed or refused read, or an answer that does not hold together, changes nothing: it is
counted (`rediscovery_failed`) and asked again after a backoff that doubles up to the period.
Cost: each read weighs 20 of the 1200 request weight per minute (docs/exchange/rules.md), so a
round weighs 20 x (1 + whole dexes); at the default 60 s and four whole dexes that is 100 a
minute.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from hip3.config import MarketConfig
from hip3.market.state import MarketSpec
from hip3.runtime.common import log, ms
from hip3.runtime.reconciliation import INFO_RETRY_MIN_MS, DiscoveryError, build_specs
from hip3.runtime.whole_dex import new_listings

PERP_DEXS = "rediscover:perpDexs"


class Rediscovery:
    def __init__(
        self,
        *,
        entries: tuple[MarketConfig, ...],
        rediscover_s: float,
        ask: Callable[..., bool],
        conn: Any,
        specs: dict[str, MarketSpec],
        known: Callable[[], set[str]],
        apply_specs: Callable[[dict[str, MarketSpec]], None],
        join: Callable[[MarketConfig, MarketSpec], None],
        counters: Any,
    ) -> None:
        self.entries = entries  # the configuration's "dex:*" entries, before expansion
        self.period_ms = ms(rediscover_s)
        self.ask = ask  # the reconciler's checked info request
        self.conn = conn
        self.specs = specs  # every asset's spec, as the last discovery saw it (shared)
        self.known = known  # every market the run trades or has retired
        self.apply_specs = apply_specs  # the epoch discovery's own path (delistings, gates)
        self.join = join  # a market listed since: into the running bot
        self.counters = counters
        self.dexes = sorted({e.dex for e in entries})
        self._epoch = -1
        self._next_ms = 0
        self._round = 0  # the round asking now (0: none)
        self._rounds = 0
        self._answers: dict[str, Any] = {}
        self._failures = 0

    @property
    def enabled(self) -> bool:
        return bool(self.entries) and self.period_ms > 0

    def tick(self, now: int) -> None:
        """On every tick: start a round when one is due on a live connection."""
        if not self.enabled:
            return
        conn = self.conn
        if conn.epoch != self._epoch:
            # a new connection discovers everything in its reconciliation: the next round is
            # one period after it, and a round of the old connection is void
            self._epoch, self._round, self._failures = conn.epoch, 0, 0
            self._next_ms = now + self.period_ms
        if conn.state != "live" or self._round or now < self._next_ms:
            return
        self._rounds += 1
        self._round, self._answers = self._rounds, {}
        requests = [(PERP_DEXS, {"type": "perpDexs"})] + [
            (f"rediscover:meta:{dex}", {"type": "meta", "dex": dex}) for dex in self.dexes
        ]
        self.counters["rediscoveries"] += 1
        for key, payload in requests:
            if not self._round:
                return  # an earlier request of this round already failed
            if not self.ask(
                payload,
                key,
                on_answer=partial(self._answer, self._round, key, len(requests)),
                on_failure=partial(self._failed, self._round, key),
            ):
                self._failed(self._round, key, "no room on the wire", now)

    def _answer(self, round_: int, key: str, count: int, data: Any, now: int) -> None:
        if round_ != self._round:
            return  # a round given up (a failure, a new connection): nothing of it is used
        self._answers[key] = data
        if len(self._answers) < count:
            return
        perp_dexs = self._answers.pop(PERP_DEXS)
        metas = {k.removeprefix("rediscover:meta:"): v for k, v in self._answers.items()}
        try:
            fresh = build_specs(perp_dexs, metas, [])
        except DiscoveryError as exc:
            self._failed(round_, key, str(exc), now)
            return
        self._round, self._failures = 0, 0
        self._next_ms = now + self.period_ms
        merged = dict(self.specs)
        merged.update(fresh)
        self.apply_specs(merged)  # delistings and parameter changes, as at a reconnect
        for entry in new_listings(self.entries, metas, self.known()):
            spec = merged[entry.coin]
            log.warning(
                "%s is listed (asset %d): it joins the run with the settings of %s:*",
                entry.coin,
                spec.asset,
                entry.dex,
            )
            self.counters["markets_listed"] += 1
            self.join(entry, spec)

    def _failed(self, round_: int, key: str, reason: str, now: int) -> None:
        if round_ != self._round:
            return
        self._round = 0
        if self.conn.state != "live" or self.conn.epoch != self._epoch:
            return  # the connection ended under it: the next one discovers anyway
        self._failures += 1
        # doubling from 250 ms up to the period itself: an answer that is always refused or
        # incoherent is asked once a period, never more often than the reads it replaces
        backoff = INFO_RETRY_MIN_MS << min(self._failures - 1, 16)
        self._next_ms = now + min(backoff, self.period_ms)
        n = self.counters["rediscovery_failed"] = self.counters["rediscovery_failed"] + 1
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, ...: counted always, logged sparsely
            log.warning("rediscovery #%d failed (%s): %s; asked again", n, key, reason)
