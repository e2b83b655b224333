"""Stream watch: a market-data subscription that went silent is resubscribed, and the
connection is replaced when resubscribing does not bring it back.

A socket that answers pings is not proof that each of its streams still flows: one HIP-3 book
stream has been seen to stall while the socket stayed open and busy (docs/exchange/freshness.md).
So silence is judged per subscription, with the meaning that suits how each one is pushed:

- `activeAssetCtx:<coin>` is pushed with every oracle update (about every 3 s on HIP-3): silent
  when its last frame is older than `freshness.max_ctx_age_s`;
- `bbo:<coin>` is pushed only when the book changes, so its age says nothing; it is silent when
  the context's mid has contradicted the book we hold for longer than `freshness.max_bbo_age_s`
  (the book moved and its bbo did not come);
- the user streams (`orderUpdates`, `userFills`, `userEvents`) push only on account activity,
  so their silence is normal; reconciliation after every reconnect covers their gaps.

Both market-data silences are the market's own freshness (`MarketState.stale_reason`), so the
market is not READY-MD from the moment its stream counts as silent. A silent stream is
unsubscribed and subscribed again (just that one), up to `freshness.max_resubscribes` times,
`freshness.resubscribe_wait_s` apart; still silent after that, the connection is replaced
(`stale_stream` on the ConnectionMachine). Only a live epoch's streams that have delivered
their first data are watched: before that the first-data timeout (`[ready]`) is in charge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hip3.machines.readiness import READY
from hip3.market.state import MarketState
from hip3.runtime.wire import Wire

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Silence:
    since_ns: int
    resubscribes: int = 0
    last_resubscribe_ns: int = 0


class StreamWatch:
    def __init__(
        self,
        *,
        markets: dict[str, MarketState],
        readiness: Callable[[], Any],
        is_live: Callable[[], bool],
        epoch: Callable[[], int],
        wire: Wire,
        reconnect: Callable[[str], None],
        resubscribe_wait_s: float,
        max_resubscribes: int,
    ) -> None:
        self.markets = markets
        self.readiness = readiness  # the current epoch's ReadinessMachine (or None)
        self.is_live = is_live
        self.epoch = epoch
        self.wire = wire
        self.reconnect = reconnect  # replace the connection, naming the stream
        self.wait_ns = int(resubscribe_wait_s * 1e9)
        self.max_resubscribes = max_resubscribes
        self._silent: dict[str, _Silence] = {}
        self._epoch = 0
        # per stream ("activeAssetCtx:xyz:AAA"), for the metrics
        self.silence_counts: dict[str, int] = {}
        self.retry_counts: dict[str, int] = {}  # resubscribes sent
        self.reconnect_counts: dict[str, int] = {}

    def silent_streams(self) -> dict[str, int]:
        """Streams silent now, with the resubscribes spent on each."""
        return {key: s.resubscribes for key, s in self._silent.items()}

    def tick(self, now_ns: int) -> None:
        epoch = self.epoch()
        if epoch != self._epoch:  # a new connection: every stream starts afresh
            self._epoch = epoch
            self._silent.clear()
        m = self.readiness()
        if m is None or not self.is_live():
            return
        # Runs on every timer tick over every market: plain integer compares first; names,
        # the readiness lookup and the bookkeeping only for a stream that is silent. The
        # limits are the market's own freshness (`MarketState.stale_reason`).
        silent_now: list[tuple[str, str]] = []
        for coin, st in self.markets.items():
            f = st.freshness
            recv = st.ctx_recv_ns
            if recv == 0 or now_ns - recv > f.ctx_age_ns:
                silent_now.append(("activeAssetCtx", coin))
            since = st.book_contradicted_ns
            if since and now_ns - since > f.bbo_age_ns:
                silent_now.append(("bbo", coin))
        if not silent_now and not self._silent:
            return  # the usual tick: every stream flows and none was silent before
        keys = m.keys
        still: set[str] = set()
        for typ, coin in silent_now:
            key = f"{typ}:{coin}"
            # only a stream that delivered this epoch, of a market not excluded
            if keys.get(key) != READY or coin in m.excluded:
                continue
            still.add(key)
            if self._act(key, typ, coin, now_ns):
                return  # the connection is being replaced
        for key in [k for k in self._silent if k not in still]:
            s = self._silent.pop(key)
            log.info(
                "%s flows again after %.1f s and %d resubscribe(s)",
                key,
                (now_ns - s.since_ns) / 1e9,
                s.resubscribes,
            )

    def _act(self, key: str, typ: str, coin: str, now_ns: int) -> bool:
        """One step for a silent stream; True when the connection is being replaced."""
        s = self._silent.get(key)
        if s is None:
            s = self._silent[key] = _Silence(since_ns=now_ns)
            self.silence_counts[key] = self.silence_counts.get(key, 0) + 1
            log.warning("%s went silent: the market is stale; resubscribing that stream", key)
        elif now_ns - s.last_resubscribe_ns < self.wait_ns:
            return False
        if s.resubscribes >= self.max_resubscribes:
            self.reconnect_counts[key] = self.reconnect_counts.get(key, 0) + 1
            log.warning(
                "%s still silent after %d resubscribe(s): replacing the connection",
                key,
                s.resubscribes,
            )
            self._silent.clear()
            self.reconnect(key)
            return True
        sub = {"type": typ, "coin": coin}
        st = self.markets.get(coin)
        if typ == "activeAssetCtx" and st is not None:
            st.ctx_snapshot_due = True  # the answer to this subscribe restates, not updates
        # Unsubscribe first: a second subscribe to a live subscription is refused.
        if self.wire.unsubscribe(sub) and self.wire.subscribe(sub):
            self.retry_counts[key] = self.retry_counts.get(key, 0) + 1
        # An attempt the budget refused counts too: a connection that cannot even resubscribe
        # is replaced after the same number of waits.
        s.resubscribes += 1
        s.last_resubscribe_ns = now_ns
        return False
