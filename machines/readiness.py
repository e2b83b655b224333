"""ReadinessMachine: READY for ONE connection epoch (the one definition, docs/design.md#ready).

A new epoch builds a new instance, so nothing delivered to an old epoch can make a new one
ready. Each required subscription key moves pending → acked → ready in plain bookkeeping driven
by an explicit table (a StateChart per key would cost ~200 µs each); the aggregate
not_ready → md_ready → trading (READY-TRADING) is a StateChart with eventless, guarded transitions that
are re-evaluated after every event.

Keys: `bbo:<coin>` and `activeAssetCtx:<coin>` per market; in trading mode also `orderUpdates`,
`userFills` and `userEvents`. A key is ready on its first data message (userFills: only the
`isSnapshot` message); orderUpdates and userEvents have no snapshot and are ready on their ack.
Data arriving BEFORE its ack counts (the seed bot deadlocked by losing exactly that message); the
later ack is then a recorded no-op.

READY-TRADING = trading mode ∧ connection live ∧ every market ready-or-excluded (and at least one
ready) ∧ orderUpdates, userFills, userEvents ready ∧ positions, open_orders and fills reconciled
∧ HardStop armed. Market-data freshness is checked on the hot path, outside this machine.

Every event is accepted in every non-final state (internal self-transitions that only record);
`end()` makes the machine final, after which every event raises TransitionNotAllowed. There is
no "connection down" event: every way out of a live connection ends the epoch, and with it this
machine (`end`); the next epoch starts a new one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from statemachine import State

from .base import HipChart, require_non_negative_int, require_text, stay
from .commands import MarketExcluded, ReadyChanged

PENDING = "pending"
ACKED = "acked"
READY = "ready"

RECONCILIATION_PARTS = ("positions", "open_orders", "fills")
TRADING_KEYS = ("orderUpdates", "userFills", "userEvents")
# Channels without a snapshot: their ack is the only lifecycle fact we ever get.
READY_ON_ACK = frozenset({"orderUpdates", "userEvents"})
# Channels whose readiness needs the snapshot message, not just any data.
NEEDS_SNAPSHOT = frozenset({"userFills"})

# (status, event) -> next status. Anything missing here is a bug, not an input problem.
KEY_TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, "ack"): ACKED,
    (PENDING, "data"): READY,
    (ACKED, "ack"): ACKED,
    (ACKED, "data"): READY,
    (READY, "ack"): READY,
    (READY, "data"): READY,
}


def md_keys(coin: str) -> tuple[str, str]:
    return (f"bbo:{coin}", f"activeAssetCtx:{coin}")


class ReadinessMachine(HipChart):
    """READY-MD per market and READY-TRADING for one epoch."""

    # `key` is unusable as a payload name inside the library; callbacks see `subscription`.
    payload_aliases = {"key": "subscription"}

    not_ready = State(initial=True)
    md_ready = State()
    # Named `trading`, not `trading_ready`: that attribute is the public bool below.
    trading = State(name="Trading ready")
    ended = State(final=True)

    not_ready.to(md_ready, cond="md_complete")
    md_ready.to(trading, cond="trading_complete")
    trading.to(md_ready, unless="trading_complete")

    ack = stay(not_ready, md_ready, trading, on="record_ack")
    data = stay(not_ready, md_ready, trading, on="record_data")
    # an ack or first data that may move the aggregate (see `send`): the guards are evaluated
    recheck = stay(not_ready, md_ready, trading)
    self_sent_events = ("recheck",)  # sent by `send` itself, never by the runtime
    reconciled = stay(not_ready, md_ready, trading, on="record_reconciled")
    connection_live = stay(not_ready, md_ready, trading, on="record_connection_live")
    hardstop_armed = stay(not_ready, md_ready, trading, on="record_hardstop")
    tick = stay(not_ready, md_ready, trading, on="apply_timeout_policy")
    # discovery lists a market as delisted: it never trades again, so nothing waits for it
    retire = stay(not_ready, md_ready, trading, on="record_retired")
    # a market listed since the epoch began (a whole dex's new listing) joins it: it is READY-MD
    # once its own first data comes, and never holds the other markets' READY back
    join = stay(not_ready, md_ready, trading, on="record_joined")
    end = not_ready.to(ended) | md_ready.to(ended) | trading.to(ended)

    def __init__(
        self,
        *,
        epoch: int,
        markets: list[str],
        trading: bool,
        first_data_timeout_ms: int,
        exclude_on_timeout: bool,
        started_ms: int,
        hardstop_is_armed: bool = False,
        outbox: list | None = None,
    ) -> None:
        require_non_negative_int(epoch, "epoch")
        require_non_negative_int(first_data_timeout_ms, "first_data_timeout_ms")
        require_non_negative_int(started_ms, "started_ms")
        if not isinstance(markets, list | tuple) or not markets:
            raise ValueError("markets must be a non-empty list of coin names")
        for coin in markets:
            require_text(coin, "market")
        if len(set(markets)) != len(markets):
            raise ValueError(f"markets contains duplicates: {sorted(markets)}")
        for flag, name in (
            (trading, "trading"),
            (exclude_on_timeout, "exclude_on_timeout"),
            (hardstop_is_armed, "hardstop_is_armed"),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be a bool, got {flag!r}")
        self.epoch = epoch
        self.markets: tuple[str, ...] = tuple(markets)
        self.trading_mode = trading
        self.first_data_timeout_ms = first_data_timeout_ms
        self.exclude_on_timeout = exclude_on_timeout
        self.started_ms = started_ms
        self.keys: dict[str, str] = {}
        for coin in self.markets:
            for key in md_keys(coin):
                self.keys[key] = PENDING
        if trading:
            for key in TRADING_KEYS:
                self.keys[key] = PENDING
        # Kept as each key moves, so the guards re-evaluated after every event cost O(1), not
        # a walk over every market (300 markets, 1 200 first events: that walk was most of
        # the start-up time): markets still short of a key's first data, in configured order,
        # and how many keys still wait for their ack or data.
        self._md_waiting: dict[str, None] = dict.fromkeys(self.markets)
        self._pending_keys = len(self.keys)
        self.reconciled_parts: set[str] = set()
        self.excluded: dict[str, str] = {}
        self.retired: set[str] = set()  # excluded for good (delisted), whatever data comes
        self.joined: set[str] = set()  # markets that joined mid-epoch (see `join`)
        self.ignored: Counter[tuple[str, str]] = Counter()
        self._connection_live = False
        self._hardstop_armed = hardstop_is_armed
        super().__init__(outbox=outbox)

    def send(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """Acks and first data update the per-key table in place (plain bookkeeping, validated
        as the chart would) and reach the chart, as `recheck`, only when they may move the
        aggregate. The library's event cycle costs ~0.4 ms, and an epoch of 300 markets has
        1 200 of these events: half a second of every start spent on no-ops."""
        if event in ("ack", "data") and not args and not self.is_final:
            key = kwargs.pop("key", None)
            if key is None or (event == "ack" and kwargs) or set(kwargs) - {"snapshot"}:
                raise ValueError(f"{event} takes key= (and, for data, snapshot=) only")
            self._check_key(key)
            if event == "ack":
                self.record_ack(key)
            else:
                snapshot = kwargs.get("snapshot", False)
                self._validate_data(key, snapshot)
                self.record_data(key, snapshot)
            if self._aggregate_may_move():
                return super().send("recheck")
            return None
        return super().send(event, *args, **kwargs)

    def _aggregate_may_move(self) -> bool:
        state = self.state
        if state == "not_ready":
            return self.md_complete()
        if state == "md_ready":
            return self.trading_complete()
        return not self.trading_complete()

    # --- queries -----------------------------------------------------------------------------

    def market_ready(self, coin: str) -> bool:
        """bbo and activeAssetCtx both received this epoch, and the market not excluded."""
        if coin not in self.markets:
            raise ValueError(f"unknown market {coin!r} (configured: {list(self.markets)})")
        if coin in self.excluded:
            return False
        return all(self.keys[key] == READY for key in md_keys(coin))

    def ready_markets(self) -> frozenset[str]:
        return frozenset(c for c in self.markets if self.market_ready(c))

    @property
    def trading_ready(self) -> bool:
        return self.state == "trading"

    @property
    def is_md_ready(self) -> bool:
        return self.state in ("md_ready", "trading")

    def missing(self) -> list[str]:
        """What is still awaited, in a stable order (for logs and the summary)."""
        out = [
            f"{key} ({status})"
            for key, status in self.keys.items()
            if status != READY and not self._key_excluded(key)
        ]
        if len(self.excluded) == len(self.markets):
            out.append("at least one market (all excluded)")
        if self.trading_mode:
            out += [
                f"reconciled:{p}" for p in RECONCILIATION_PARTS if p not in self.reconciled_parts
            ]
            if not self._connection_live:
                out.append("connection live")
            if not self._hardstop_armed:
                out.append("hardstop armed")
        return out

    def _key_excluded(self, key: str) -> bool:
        prefix, _, coin = key.partition(":")
        return bool(coin) and coin in self.excluded and prefix in ("bbo", "activeAssetCtx")

    # --- guards ------------------------------------------------------------------------------

    def md_complete(self) -> bool:
        excluded = self.excluded
        # every market has its first data or is excluded (a walk that stops at the first
        # market still waiting, which is nearly always the first one it meets)
        joined = self.joined
        if not all(c in excluded or c in joined for c in self._md_waiting):
            return False
        # All markets excluded is not "ready": fail closed rather than trade nothing "readily".
        # Markets with all their data, less those among them that are excluded (retired ones).
        # (joined ones count only once their data came: they have left the waiting list)
        with_data = len(self.markets) - len(self._md_waiting)
        return with_data > sum(1 for c in excluded if c not in self._md_waiting)

    @property
    def all_answered(self) -> bool:
        """No subscription of this epoch is still pending (each is acked or has data)."""
        return self._pending_keys == 0

    def trading_complete(self) -> bool:
        return (
            self.trading_mode
            and self._connection_live
            and self._hardstop_armed
            and self.md_complete()
            and all(self.keys[key] == READY for key in TRADING_KEYS)
            and self.reconciled_parts.issuperset(RECONCILIATION_PARTS)
        )

    # --- validators --------------------------------------------------------------------------

    def _check_key(self, subscription: str) -> None:
        if subscription not in self.keys:
            raise ValueError(
                f"unknown subscription key {subscription!r} for epoch {self.epoch} "
                f"(required: {list(self.keys)})"
            )

    @ack.validators
    def _validate_ack(self, subscription: str) -> None:
        self._check_key(subscription)

    @data.validators
    def _validate_data(self, subscription: str, snapshot: bool = False) -> None:
        self._check_key(subscription)
        if not isinstance(snapshot, bool):
            raise ValueError(f"snapshot must be a bool, got {snapshot!r}")

    @reconciled.validators
    def _validate_part(self, part: str) -> None:
        if part not in RECONCILIATION_PARTS:
            raise ValueError(
                f"unknown reconciliation part {part!r} (expected one of {RECONCILIATION_PARTS})"
            )

    @hardstop_armed.validators
    def _validate_armed(self, armed: bool) -> None:
        if not isinstance(armed, bool):
            raise ValueError(f"armed must be a bool, got {armed!r}")

    @tick.validators
    def _validate_tick(self, now_ms: int) -> None:
        require_non_negative_int(now_ms, "now_ms")

    @retire.validators
    def _validate_retire(self, market: str, reason: str) -> None:
        if market not in self.markets:
            raise ValueError(f"unknown market {market!r} (configured: {list(self.markets)})")
        require_text(reason, "reason")

    @join.validators
    def _validate_join(self, market: str) -> None:
        require_text(market, "market")
        if market in self.markets:
            raise ValueError(f"market {market!r} is already part of epoch {self.epoch}")

    # --- actions -----------------------------------------------------------------------------

    def _advance(self, key: str, event: str) -> bool:
        """Move one key; True when that gave its market the last of its first data."""
        before = self.keys[key]
        after = KEY_TRANSITIONS[(before, event)]
        if event == "ack" and key in READY_ON_ACK:
            after = READY
        if after == before:
            self.ignored[(key, event)] += 1
            return False
        self.keys[key] = after
        if before == PENDING:
            self._pending_keys -= 1
        if after == READY:
            coin = key.partition(":")[2]
            if coin in self._md_waiting and all(self.keys[k] == READY for k in md_keys(coin)):
                del self._md_waiting[coin]
                return True
        return False

    def record_ack(self, subscription: str) -> None:
        self._advance(subscription, "ack")

    def record_data(self, subscription: str, snapshot: bool = False) -> None:
        if subscription in NEEDS_SNAPSHOT and not snapshot:
            # A streamed fill before the snapshot proves nothing about what we missed.
            self.ignored[(subscription, "data")] += 1
            return
        completed = self._advance(subscription, "data")
        coin = subscription.partition(":")[2]
        if completed and coin in self.joined and self.state in ("md_ready", "trading"):
            self._announce()  # a joined market's first data: the ready set grew
        if (
            coin in self.excluded
            and coin not in self.retired
            and all(self.keys[k] == READY for k in md_keys(coin))
        ):
            # The exclusion only stood in for data that had not come; now it has. Without this,
            # an epoch whose first data was merely slow would stay unready until a reconnect.
            del self.excluded[coin]
            if self.state in ("md_ready", "trading"):
                # No state change follows (the epoch was already decided), so no entry
                # action announces the larger market set: announce it here.
                self._announce()

    def record_reconciled(self, part: str) -> None:
        self.reconciled_parts.add(part)

    def record_connection_live(self) -> None:
        self._connection_live = True

    def record_hardstop(self, armed: bool) -> None:
        self._hardstop_armed = armed

    def record_retired(self, market: str, reason: str) -> None:
        """Excluded for the rest of the epoch: a delisted market's data, had it come, says
        nothing about trading it."""
        self.excluded[market] = reason
        self.retired.add(market)
        for key in md_keys(market):
            if self.keys[key] == PENDING:
                self.ignored[(key, "retire")] += 1

    def record_joined(self, market: str) -> None:
        self.markets = (*self.markets, market)
        for key in md_keys(market):
            self.keys[key] = PENDING
        self._pending_keys += 2
        self._md_waiting[market] = None
        self.joined.add(market)

    def tick_due(self, now_ms: int) -> bool:
        """Whether `tick` would do anything: the first-data timeout has passed with a market
        neither ready nor excluded (and the policy excludes on timeout). Otherwise `tick` is
        an ignored self-transition, which the runtime skips (a transition costs ~90 µs). In
        the final state it is False too: nothing ticks an ended epoch."""
        if self.state == "ended":
            return False
        return bool(self._timed_out_markets(now_ms))

    def _timed_out_markets(self, now_ms: int) -> list[str]:
        if not self.exclude_on_timeout:
            return []
        if now_ms - self.started_ms < self.first_data_timeout_ms:
            return []
        # the markets still short of first data, kept as keys move (none, once all came: the
        # usual tick asks nothing more); a joined market holds nothing back, so nothing
        # excludes it
        excluded, joined = self.excluded, self.joined
        return [c for c in self._md_waiting if c not in excluded and c not in joined]

    def apply_timeout_policy(self, now_ms: int) -> None:
        for coin in self._timed_out_markets(now_ms):
            awaited = [k for k in md_keys(coin) if self.keys[k] != READY]
            reason = (
                f"no first data within {self.first_data_timeout_ms} ms "
                f"(missing {', '.join(awaited)})"
            )
            self.excluded[coin] = reason
            self.emit(MarketExcluded(self.epoch, coin, reason))

    def _announce(self) -> None:
        self.emit(ReadyChanged(self.epoch, self.trading_ready, self.ready_markets()))

    def on_enter_md_ready(self) -> None:
        self._announce()

    def on_enter_trading(self) -> None:
        self._announce()

    def on_enter_ended(self, source: State) -> None:
        if source.id != "not_ready":
            self.emit(ReadyChanged(self.epoch, False, frozenset()))
