"""Configuration: TOML decoded into frozen, typed msgspec Structs.

One entry point, `load_config`, turns a TOML file (or nothing, meaning the built-in defaults that
`config/default.toml` mirrors key for key) plus CLI overrides into a `Config`. Every mistake is
reported as one `ConfigError` naming the dotted path, the offending value and what was expected,
so an operator can fix a file without reading code.

Secrets never live here: the signing key comes from the environment or a keystore (`hip3.keys`).
Money is a float in the config only; the runtime converts it with `as_decimal` before it can
reach the wire.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi

__all__ = [
    "MAINNET_WS_URL",
    "TESTNET_WS_URL",
    "AccountConfig",
    "Config",
    "ConfigError",
    "DashboardConfig",
    "DeadMansSwitchConfig",
    "DetectorConfig",
    "DiscoveryConfig",
    "Endpoints",
    "EntryGuardsConfig",
    "ExitsConfig",
    "FlattenConfig",
    "FreshnessConfig",
    "GatesConfig",
    "GuardConfig",
    "JournalConfig",
    "MarketConfig",
    "MetricsConfig",
    "OracleExitConfig",
    "OutboundConfig",
    "PriorityConfig",
    "ReadyConfig",
    "RiskConfig",
    "ShutdownConfig",
    "SimConfig",
    "StrategyConfig",
    "WebSocketConfig",
    "as_decimal",
    "endpoints",
    "load_config",
]

MAINNET_WS_URL = "wss://api.hyperliquid.xyz/ws"
TESTNET_WS_URL = "wss://api.hyperliquid-testnet.xyz/ws"

# The exchange's own limits; configuring more would only earn rate-limit errors.
EXCHANGE_MESSAGES_PER_MINUTE = 2000
EXCHANGE_MAX_INFLIGHT_POSTS = 100
EXCHANGE_MIN_ORDER_NOTIONAL_USD = 10.0
# scheduleCancel must name a time at least this far in the future.
EXCHANGE_MIN_SCHEDULE_CANCEL_LEAD_S = 5.0
# A priority fee rate is at most 100 % of notional (docs/exchange/changes-2026.md#priority-fees).
EXCHANGE_MAX_PRIORITY_BPS = 10_000.0

Network = Literal["sim", "testnet", "mainnet"]
Mode = Literal["trading", "observation"]


class ConfigError(ValueError):
    """A configuration problem; the message names the key, the value and what was expected.

    `problems` lists each problem on its own (one line each) for callers that report them.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


# ---------------------------------------------------------------------------------------------
# Constrained scalar types. msgspec enforces them while decoding; `_describe` turns the same
# constraints into the "expected ..." half of an error message.

Seconds = Annotated[float, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Bps = Annotated[float, msgspec.Meta(ge=0)]
PositiveBps = Annotated[float, msgspec.Meta(gt=0)]
Usd = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# The exchange takes integer leverage from 1 to the asset's maxLeverage.
Leverage = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table: immutable, and unknown keys are an error, not ignored."""


class AccountConfig(_Section):
    # The trading account (the "user" every subscription and info request names).
    user: str | None = None
    # The API wallet the key belongs to; checked against the key, never used to sign.
    signer: str | None = None
    # An eth-account encrypted keyfile; mutually exclusive with the key environment variable.
    keystore: str | None = None
    key_env: str = "HIP3_PRIVATE_KEY"


PriorityBps = Annotated[float, msgspec.Meta(ge=0, le=EXCHANGE_MAX_PRIORITY_BPS)]
WHOLE_DEX_SUFFIX = ":*"


class MarketConfig(_Section):
    # "dex:NAME", a validator coin, or "dex:*" for every market the dex lists (expanded after
    # discovery; an entry naming one of its markets exactly overrides it).
    coin: str
    # Overrides the detector's edge threshold for this market only (for "dex:*": for each of
    # the dex's markets without an exact entry).
    threshold_bps: Bps | None = None
    # Overrides priority.cap_bps for this market only (0: never pay priority here).
    priority_cap_bps: PriorityBps | None = None
    # Leverage set on this market at start (updateLeverage), replacing margin.leverage.
    leverage: Leverage | None = None
    # Overrides entry_guards.min_liq_buffer_ratio for this market only (0: not checked here).
    min_liq_buffer_ratio: Fraction | None = None

    @property
    def dex(self) -> str:
        """The perp dex the coin trades on; "" is the validator-operated first dex."""
        dex, sep, _ = self.coin.partition(":")
        return dex if sep else ""

    @property
    def whole_dex(self) -> bool:
        """The entry names every market of its dex ("dex:*")."""
        return self.coin.endswith(WHOLE_DEX_SUFFIX)


def _default_markets() -> tuple[MarketConfig, ...]:
    return tuple(MarketConfig(coin=f"xyz:{name}") for name in ("AAA", "BBB", "CCC", "DDD"))


class WebSocketConfig(_Section):
    connect_timeout_s: Seconds = 5.0
    ping_after_s: Seconds = 45.0
    pong_timeout_s: Seconds = 10.0
    backoff_min_s: Seconds = 1.0
    backoff_max_s: Seconds = 60.0
    backoff_reset_after_s: Seconds = 30.0
    handshake_timeout_s: Seconds = 15.0
    # With positions or live orders open: ping this often whatever else arrives ...
    exposed_ping_interval_s: Seconds = 2.0
    # ... reconnect when its pong is this late ...
    exposed_pong_timeout_s: Seconds = 3.0
    # ... and retry a lost connection at most this long after the loss.
    exposed_backoff_max_s: Seconds = 2.0


class OutboundConfig(_Section):
    messages_per_minute: Annotated[int, msgspec.Meta(ge=1, le=EXCHANGE_MESSAGES_PER_MINUTE)] = 2000
    max_inflight_posts: Annotated[int, msgspec.Meta(ge=1, le=EXCHANGE_MAX_INFLIGHT_POSTS)] = 100
    post_timeout_s: Seconds = 5.0


class ReadyConfig(_Section):
    first_data_timeout_s: Seconds = 10.0
    exclude_on_timeout: bool = True
    # A run not READY this long after it started ends (exit code 5) naming the URL and the
    # last connection error, instead of retrying an unreachable endpoint forever.
    startup_timeout_s: Seconds = 30.0


# The shortest period between two rediscoveries while connected (tests run it this often).
MIN_REDISCOVER_S = 0.1


class DiscoveryConfig(_Section):
    # While connected, read perpDexs and the meta of every whole dex ("dex:*") this often:
    # a market listed since joins the run, a delisted one leaves it. Each read weighs 20 of
    # the 1200 per minute (docs/exchange/rules.md), so a round costs 20 x (1 + whole dexes).
    # 0: only when a connection starts.
    rediscover_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0


class FreshnessConfig(_Section):
    """When a market's data is fresh enough to trade on: READY-MD, the gates, the exits and the
    status view all use these, through `MarketState.stale_reason`; and what is done about a
    stream that went silent (hip3/runtime/streams.py). Why each limit: docs/exchange/freshness.md."""

    # bbo is pushed only on change: a quiet book stays fresh while the asset context's mid
    # confirms it; contradicted by that mid for longer than this, the bbo stream is silent.
    max_bbo_age_s: Seconds = 2.0
    # The asset context (oracle, mark; pushed with every oracle update, ~3 s on HIP-3) was last
    # received longer ago than this: its stream is silent, the market stale.
    max_ctx_age_s: Seconds = 8.0
    # A silent stream is resubscribed (unsubscribe + subscribe of just it) at most this many
    # times, this long apart; still silent after that, the connection is replaced.
    resubscribe_wait_s: Seconds = 5.0
    max_resubscribes: Annotated[int, msgspec.Meta(ge=0)] = 2
    # After the book's exchange time runs backwards, the market is stale this long.
    time_regression_block_s: NonNegativeFloat = 10.0
    # A book stamped further ahead of our wall clock than this is dropped and counted.
    max_future_skew_s: Seconds = 5.0


class DetectorConfig(_Section):
    # "full": the detector with filters, baseline and gates (hip3.strategy.detector);
    # "basic": edge over cost only (hip3.strategy.basic), useful to exercise the loop.
    kind: Literal["full", "basic"] = "full"
    taker_fee_bps: Bps = 4.5
    slippage_bps: Bps = 2.0
    min_edge_bps: Bps = 5.0
    size_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1
    max_order_notional_usd: Usd = 50.0
    min_order_notional_usd: Annotated[float, msgspec.Meta(ge=EXCHANGE_MIN_ORDER_NOTIONAL_USD)] = (
        11.0
    )
    max_slippage_bps: PositiveBps = 30.0
    # --- the full detector (hip3.strategy.detector); 0 disables a filter where noted ---
    # Orders are sized below the dollar cap by this fraction (mark vs quote drift).
    notional_buffer: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.01
    # Raise a too-small order to the minimum notional when the quote and the cap allow it.
    boost_to_min_notional: bool = True
    # A quote worth this much or less is too thin to take, USD.
    min_book_notional_usd: NonNegativeFloat = 500.0
    # A quote worth this much or more is sized at the full size_fraction, USD.
    normal_book_notional_usd: Usd = 5000.0
    # Skip entries while the book's spread is wider than this, bps (0 = off).
    max_entry_spread_bps: Bps = 0.0
    # Signal a side at most once per oracle price.
    signal_dedup: bool = True
    # Oracle changes smaller than this are wiggles, not moves, bps.
    oracle_min_move_bps: Bps = 2.0
    # Buy only after an up move of the oracle, sell only after a down move.
    direction_filter: bool = True
    # The last oracle move must be at least this large, bps (0 = off).
    min_oracle_velocity_bps: Bps = 3.0
    # Same-direction oracle moves in a row required (0 = off).
    min_consecutive_oracle_moves: Annotated[int, msgspec.Meta(ge=0)] = 2
    # Time since the oracle changed must be at least this (0 = off).
    min_quote_lag_s: NonNegativeFloat = 0.0
    # ... and at most this (0 = off).
    max_quote_lag_s: NonNegativeFloat = 0.0
    # Also require the edge to beat the market's spread EWMA times the multiplier.
    adaptive_threshold: bool = False
    # Multiplier of the market's spread EWMA (gates.spread_ewma_alpha) in the adaptive threshold.
    spread_threshold_multiplier: PositiveFloat = 1.5
    # Track each market's usual oracle-mid gap (EWMA) and discount it from the edge.
    baseline_tracking: bool = True
    # Weight of each new sample in the baseline EWMA.
    baseline_alpha: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.001
    # Samples before the baseline is trusted.
    baseline_min_samples: Annotated[int, msgspec.Meta(ge=0)] = 100
    # Edge required beyond the baseline gap, bps (0 = off).
    min_edge_above_baseline_bps: Bps = 0.0
    # Skip signals whose confidence (0..1) is below this (0 = off).
    min_confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    # Scale size by 0.5 + 0.5 * confidence.
    confidence_sizing: bool = False
    # Around the US session (by the book's exchange time, UTC) require more edge and take less
    # size: 14:30-16:00 threshold x open mult, size x open mult; 16:00-21:00 the day mults.
    session_aware: bool = False
    session_open_threshold_mult: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    session_open_size_mult: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    session_day_threshold_mult: Annotated[float, msgspec.Meta(ge=1)] = 1.5
    session_day_size_mult: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.75


class PriorityConfig(_Section):
    """Priority fees on IOC orders (hip3.strategy.priority): a rate of the filled notional,
    paid in HYPE from the undelegated staking balance, that buys earlier execution."""

    # "off": never; "fixed": every entry pays fixed_bps; "edge_share": an entry pays
    # share x (edge - cost), up to cap_bps.
    mode: Literal["off", "fixed", "edge_share"] = "off"
    fixed_bps: PriorityBps = 8.0
    share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    # 8 bps buys the whole time preference; more only sorts within one 70 ms block.
    cap_bps: Annotated[float, msgspec.Meta(gt=0, le=EXCHANGE_MAX_PRIORITY_BPS)] = 8.0
    # Rate of reduce-only IOC exits (flatten orders), bps; 0 = none.
    exit_bps: PriorityBps = 0.0


class GatesConfig(_Section):
    # Block when mark and book mid differ by more than this, bps (0 = off).
    max_mark_mid_divergence_bps: Bps = 50.0
    # Weight of each new book in the market's one spread EWMA (the spread-shock gate and the
    # detector's adaptive threshold both read it).
    spread_ewma_alpha: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    # Books seen before the spread-shock gate acts.
    spread_min_samples: PositiveInt = 20
    # Spread above EWMA x this reduces the size (spread_shock_size_factor).
    spread_shock_multiplier: Annotated[float, msgspec.Meta(ge=1)] = 3.0
    # Spread above EWMA x spread_shock_multiplier x this blocks.
    spread_shock_block_multiplier: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    # Size multiplier in the reduce tier (0 < x <= 1).
    spread_shock_size_factor: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.2


class MarginConfig(_Section):
    # Leverage set on every traded market at start; 0 leaves each as the exchange has it.
    leverage: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    # Cross margin where the asset's marginMode allows it, isolated elsewhere; false: isolated.
    cross: bool = True


class RiskConfig(_Section):
    max_notional_per_market_usd: Usd = 100.0
    max_total_notional_usd: Usd = 300.0
    max_concurrent_positions: PositiveInt = 5
    loss_limit_usd: Usd = 50.0
    # Dynamic sizing: the per-market notional cap is also at most risk_per_market x the account
    # value of the market's dex (read with the positions every epoch).
    dynamic_sizing: bool = False
    risk_per_market: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.1
    max_consecutive_rejections: PositiveInt = 5
    max_flatten_failures: PositiveInt = 3
    disconnect_exposure_s: Seconds = 30.0
    max_actions_per_s: PositiveFloat = 10.0


class ExitsConfig(_Section):
    time_stop_s: Seconds = 30.0
    mark_regression_bps: Bps = 5.0
    min_hold_s: NonNegativeFloat = 1.0
    slippage_bps: PositiveBps = 50.0
    # Exit when the book catches up with the oracle (false: time stop only); stale data
    # (see [freshness]) never triggers it. The keys below refine this exit.
    mark_regression_enabled: bool = True
    # Tighten the band with age: x1 until decay_start_s, then linearly down to
    # min_decay_factor at time_stop_s.
    time_decay_enabled: bool = False
    decay_start_s: NonNegativeFloat = 5.0
    min_decay_factor: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    # Skip a mark-regression exit that would lose less than this, bps (0 = off); a profit
    # always exits, a larger loss too.
    min_loss_exit_bps: Bps = 0.0
    # Band = max(mark_regression_bps, entry edge x entry_edge_scale_factor).
    entry_edge_scaling: bool = False
    entry_edge_scale_factor: NonNegativeFloat = 0.5
    # Exit once the exit-side quote is this far in profit against the entry price, bps (0 = off),
    # after quick_profit_min_hold_s.
    quick_profit_bps: Bps = 0.0
    quick_profit_min_hold_s: NonNegativeFloat = 0.5
    # Exit once the entry side's dislocation against the oracle is down to edge_evaporation_bps,
    # after edge_evaporation_min_hold_s.
    edge_evaporation_enabled: bool = False
    edge_evaporation_min_hold_s: NonNegativeFloat = 0.5
    edge_evaporation_bps: Bps = 2.0


class OracleExitConfig(_Section):
    # Exit by the oracle's moves since the entry: against_moves in a row against the position
    # (loss cut), with_moves in a row with it (profit take).
    enabled: bool = True
    against_moves: PositiveInt = 2
    with_moves: PositiveInt = 3
    # No oracle exit before the position is this old, seconds (moves still count).
    min_hold_s: NonNegativeFloat = 1.0
    # Oracle changes smaller than this are wiggles, not moves, bps.
    min_move_bps: Bps = 2.0
    # Trailing stop on the oracle's P&L since the entry: armed once its best reaches
    # trail_activation_bps, fires when it falls trail_bps below that best.
    trailing_stop: bool = False
    trail_activation_bps: Bps = 5.0
    trail_bps: PositiveBps = 3.0
    # One more against move allowed when the entry edge was at least high_edge_bps.
    dynamic_thresholds: bool = False
    high_edge_bps: Bps = 40.0


class HourlyDrawdownConfig(_Section):
    # Refuse entries once the round trips closed in this clock hour lost this much, USD (0 = off).
    max_loss_usd: NonNegativeFloat = 0.0


class TiltConfig(_Section):
    enabled: bool = False
    # Losing round trips in a row that start the cooldown.
    max_consecutive_losses: PositiveInt = 3
    cooldown_s: Seconds = 300.0


class ReEntryConfig(_Section):
    enabled: bool = False
    # A market is not entered again this long after its position closed.
    delay_s: Seconds = 30.0


class BurstConfig(_Section):
    enabled: bool = False
    # This many entries in one market within window_s start a cooldown of that market.
    window_s: Seconds = 1800.0
    max_entries: PositiveInt = 3
    cooldown_s: Seconds = 300.0
    # An edge at least this large passes anyway, bps (0 = no bypass).
    bypass_edge_bps: Bps = 0.0


class MarketHealthConfig(_Section):
    enabled: bool = False
    # Round trips per market the score is computed over.
    window: PositiveInt = 20
    # Score (0.6 x win rate + 0.4 x P&L quality) below which the market is disabled ...
    disable_below: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    # ... and at or above which it is enabled again.
    re_enable_at: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    # Round trips before the score counts.
    min_samples: PositiveInt = 10
    # A disabled market is enabled again after this long with a fresh record (0 = never).
    probation_s: NonNegativeFloat = 1800.0


class CorrelationCooldownConfig(_Section):
    # This many closes (any markets) within window_s start a cooldown of all entries (0 = off).
    close_threshold: Annotated[int, msgspec.Meta(ge=0)] = 0
    window_s: Seconds = 30.0
    cooldown_s: Seconds = 60.0


class CorrelationGroupConfig(_Section):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    markets: tuple[str, ...]
    weight: Annotated[float, msgspec.Meta(ge=1)] = 1.5


class CorrelationLimitConfig(_Section):
    enabled: bool = False
    # The positions' weighted count, with the candidate, may not exceed this.
    max_weighted_positions: PositiveFloat = 5.0
    groups: tuple[CorrelationGroupConfig, ...] = ()


class EntryGuardsConfig(_Section):
    """Entry guards: refusals from recent trading and the clock (hip3/execution/guards.py)."""

    # UTC windows "HH:MM-HH:MM" without entries (wrapping past midnight allowed).
    blackout_windows: tuple[str, ...] = ()
    # The market position after an entry may be at most this fraction of the market's open
    # interest (0 = off).
    max_oi_fraction: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    # After an entry fills, its market's estimated liquidation price must be at least this
    # fraction of the mark away from the mark (hip3/execution/liquidation.py; 0 = off).
    min_liq_buffer_ratio: Fraction = 0.0
    hourly_drawdown: HourlyDrawdownConfig = msgspec.field(default_factory=HourlyDrawdownConfig)
    tilt: TiltConfig = msgspec.field(default_factory=TiltConfig)
    re_entry: ReEntryConfig = msgspec.field(default_factory=ReEntryConfig)
    burst: BurstConfig = msgspec.field(default_factory=BurstConfig)
    market_health: MarketHealthConfig = msgspec.field(default_factory=MarketHealthConfig)
    correlation_cooldown: CorrelationCooldownConfig = msgspec.field(
        default_factory=CorrelationCooldownConfig
    )
    correlation_limit: CorrelationLimitConfig = msgspec.field(
        default_factory=CorrelationLimitConfig
    )


class FlattenConfig(_Section):
    timeout_s: Seconds = 5.0
    retry_backoff_s: Seconds = 0.5
    retry_backoff_max_s: Seconds = 5.0
    max_attempts: PositiveInt = 5


class ShutdownConfig(_Section):
    flatten_on_exit: bool = True
    cancel_on_exit: bool = True
    timeout_s: Seconds = 15.0


class DeadMansSwitchConfig(_Section):
    enabled: bool = False
    interval_s: Seconds = 30.0
    lead_s: Annotated[float, msgspec.Meta(ge=EXCHANGE_MIN_SCHEDULE_CANCEL_LEAD_S)] = 60.0
    # The exchange refuses the switch until the account has traded about $1M: while it does,
    # ask again this rarely (the account's volume may grow).
    unavailable_retry_s: Seconds = 600.0
    # Refuse to trade (no entries: READY-TRADING is false) while the exchange has not
    # accepted the switch.
    required: bool = False


class JournalConfig(_Section):
    path: Annotated[str, msgspec.Meta(min_length=1)] = "data/journal.sqlite"
    enabled: bool = True


class MetricsConfig(_Section):
    enabled: bool = False
    # Log every machine state change at INFO (else DEBUG); `hip3 bot --log-transitions` too.
    log_transitions: bool = False
    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    # 0 asks the OS for a free port (useful in tests).
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9090


class DashboardConfig(_Section):
    enabled: bool = False
    # Loopback by default; any other address needs the token (checked when the file loads).
    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    # 0 asks the OS for a free port (useful in tests).
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8050
    # The NAME of the environment variable holding the operator token, never the token itself.
    token_env: str = "HIP3_DASHBOARD_TOKEN"


# A token shorter than this is too easy to guess to guard the HardStop and reset buttons.
DASHBOARD_MIN_TOKEN_CHARS = 16


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1); a name that is not
    `localhost` counts as reachable from elsewhere, since what it resolves to can change."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GuardConfig(_Section):
    """`hip3 guard`, the watchdog beside the bot (hip3/guard), and the heartbeat it watches."""

    # The file the bot rewrites with its heartbeat and the guard watches; unset: the bot
    # writes none and `hip3 guard` refuses to start.
    heartbeat_path: str | None = None
    # The bot rewrites the heartbeat this often, from its event loop.
    heartbeat_interval_s: Seconds = 1.0
    # A heartbeat not renewed for this long means the bot is dead or hung.
    timeout_s: Seconds = 5.0
    # How often the guard reads the heartbeat.
    poll_interval_s: Seconds = 0.25
    # The guard logs "watching pid N, last beat Xs ago" this often.
    report_interval_s: Seconds = 60.0
    # At start, with no heartbeat file (or only an ended run's), the guard waits this long for
    # a running bot; then it exits (no file) or acts on the ended run.
    start_deadline_s: Seconds = 60.0
    # SIGKILL a bot whose heartbeat went stale while its process is still alive on this host.
    kill_stale_bot: bool = True
    # Close every position (reduce-only IOC) after cancelling every order; false: cancel only.
    flatten: bool = True
    # Rounds of read, cancel and flatten before the guard gives up and exits 3.
    max_attempts: PositiveInt = 5
    # Pause between rounds, seconds.
    retry_backoff_s: Seconds = 0.5
    # A flatten order's limit lies this far beyond the book level that covers its size, bps.
    slippage_bps: Annotated[float, msgspec.Meta(gt=0, lt=10_000)] = 200.0
    # An info request or action without an answer after this long has failed.
    request_timeout_s: Seconds = 5.0
    # The guard pings its quiet connection this often (the exchange closes one it has sent
    # nothing to for 60 s).
    ping_interval_s: Seconds = 20.0


class SimConfig(_Section):
    seed: Annotated[int, msgspec.Meta(ge=0)] = 7
    scenario: str | None = None
    fund_usdc: Usd = 100000.0
    faults: str | None = None


class StrategyConfig(_Section):
    # "package.module:Class" or "path/to/file.py:Class" (a hip3.strategy.api.Strategy); unset
    # runs the built-in dislocation taker, configured by [detector] and [exits].
    name: str | None = None
    # Subscribe to each market's l2Book and hand every book to the strategy's on_book.
    book: bool = False
    # The strategy's own parameters, checked against its declared Params when loaded.
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class Endpoints(msgspec.Struct, frozen=True):
    """Where to connect and which signing domain to use; derived from `Config.network`."""

    ws_url: str | None
    mainnet_signing: bool

    @property
    def source(self) -> str:
        """The phantom agent's `source`: "a" signs for mainnet, "b" for everything else."""
        return "a" if self.mainnet_signing else "b"

    @property
    def hyperliquid_chain(self) -> str:
        """`hyperliquidChain` of user-signed actions such as approveAgent."""
        return "Mainnet" if self.mainnet_signing else "Testnet"


class Config(_Section):
    network: Network = "sim"
    mode: Mode = "trading"
    # Overrides the network's endpoint; with network "sim" it points at a running `hip3 sim`.
    ws_url: str | None = None
    confirm_mainnet: bool = False
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)
    markets: tuple[MarketConfig, ...] = msgspec.field(default_factory=_default_markets)
    websocket: WebSocketConfig = msgspec.field(default_factory=WebSocketConfig)
    outbound: OutboundConfig = msgspec.field(default_factory=OutboundConfig)
    ready: ReadyConfig = msgspec.field(default_factory=ReadyConfig)
    discovery: DiscoveryConfig = msgspec.field(default_factory=DiscoveryConfig)
    freshness: FreshnessConfig = msgspec.field(default_factory=FreshnessConfig)
    detector: DetectorConfig = msgspec.field(default_factory=DetectorConfig)
    gates: GatesConfig = msgspec.field(default_factory=GatesConfig)
    priority: PriorityConfig = msgspec.field(default_factory=PriorityConfig)
    margin: MarginConfig = msgspec.field(default_factory=MarginConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    exits: ExitsConfig = msgspec.field(default_factory=ExitsConfig)
    oracle_exit: OracleExitConfig = msgspec.field(default_factory=OracleExitConfig)
    entry_guards: EntryGuardsConfig = msgspec.field(default_factory=EntryGuardsConfig)
    flatten: FlattenConfig = msgspec.field(default_factory=FlattenConfig)
    shutdown: ShutdownConfig = msgspec.field(default_factory=ShutdownConfig)
    dead_mans_switch: DeadMansSwitchConfig = msgspec.field(default_factory=DeadMansSwitchConfig)
    journal: JournalConfig = msgspec.field(default_factory=JournalConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    dashboard: DashboardConfig = msgspec.field(default_factory=DashboardConfig)
    guard: GuardConfig = msgspec.field(default_factory=GuardConfig)
    sim: SimConfig = msgspec.field(default_factory=SimConfig)
    strategy: StrategyConfig = msgspec.field(default_factory=StrategyConfig)

    @property
    def endpoints(self) -> Endpoints:
        return endpoints(self)

    @property
    def coins(self) -> tuple[str, ...]:
        return tuple(m.coin for m in self.markets)

    @property
    def whole_dexes(self) -> tuple[str, ...]:
        """Dexes named as a whole ("dex:*"), which discovery expands into their markets."""
        return tuple(m.dex for m in self.markets if m.whole_dex)

    @property
    def dexes(self) -> tuple[str, ...]:
        """Every perp dex traded, sorted; reconciliation queries each one separately."""
        return tuple(sorted({m.dex for m in self.markets}))

    def leverage_for(self, coin: str) -> int:
        """The leverage to set on `coin` at start; 0: leave it as the exchange has it."""
        for m in self.markets:
            if m.coin == coin and m.leverage is not None:
                return m.leverage
        return self.margin.leverage

    def liq_buffer_ratio_for(self, coin: str) -> float:
        """The liquidation buffer an entry in `coin` must keep; 0: not checked."""
        for m in self.markets:
            if m.coin == coin and m.min_liq_buffer_ratio is not None:
                return m.min_liq_buffer_ratio
        return self.entry_guards.min_liq_buffer_ratio

    def market(self, coin: str) -> MarketConfig:
        for m in self.markets:
            if m.coin == coin:
                return m
        raise KeyError(coin)


def endpoints(cfg: Config) -> Endpoints:
    """The websocket URL and signing domain for the configured network.

    With network "sim" and no explicit `ws_url` the URL is None: the bot starts the simulator
    in-process and connects to whatever port it got. Only mainnet signs with source "a".
    """
    default_url = {"sim": None, "testnet": TESTNET_WS_URL, "mainnet": MAINNET_WS_URL}
    url = cfg.ws_url if cfg.ws_url is not None else default_url[cfg.network]
    return Endpoints(ws_url=url, mainnet_signing=cfg.network == "mainnet")


def as_decimal(x: float) -> Decimal:
    """A config float as the Decimal its TOML text meant (0.1 -> Decimal("0.1"), not 0.1000…)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError(f"as_decimal expects a number, got {type(x).__name__}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"as_decimal: {x!r} is not a finite number")
    return Decimal(repr(x))


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Load `path` (or the built-in defaults when None), merge `overrides`, validate.

    `overrides` is a nested dict (`{"websocket": {"ping_after_s": 5}}`) or uses dotted keys
    (`{"websocket.ping_after_s": 5}`); tables merge key by key, anything else (including the
    `markets` array) replaces the file's value. A None value means "not given" and is skipped,
    so argparse results can be passed straight through.
    """
    raw: dict[str, Any] = {} if path is None else _read_toml(Path(path))
    if overrides:
        raw = _merge(raw, _expand_dotted(overrides))
    moved = list(_moved_key_problems(raw))
    if moved:
        raise _config_error(moved, path)
    cfg, problems = _convert_collecting(raw)
    if cfg is not None:
        problems.extend(_problems(cfg))
        problems.extend(_strategy_problems(cfg.strategy))
    if problems:
        raise _config_error(problems, path)
    return _normalised(cfg)


def _strategy_problems(s: StrategyConfig) -> list[str]:
    """The named strategy must load and its params fit its declared Params (the strategy's
    module is imported here, so `hip3 config check` finds a wrong one too)."""
    from hip3.strategy.loader import StrategyError, load_strategy_class, strategy_params

    if s.name is None:
        if s.params:
            return ["strategy.params is given but strategy.name is not: name the strategy"]
        return []
    try:
        strategy_params(load_strategy_class(s.name), s.params)
    except StrategyError as exc:
        return [str(exc)]
    return []


def _convert_collecting(raw: dict[str, Any]) -> tuple[Config | None, list[str]]:
    """Convert `raw`, collecting every type problem rather than the first: msgspec stops at
    the first, so each offending key is noted, dropped from a copy (its default applies) and
    the conversion retried. A file with several mistakes is then fixed in one pass."""
    raw = copy.deepcopy(raw)
    problems: list[str] = []
    dropped: set[PathParts] = set()
    for _ in range(_MAX_REPORTED_PROBLEMS):
        try:
            return msgspec.convert(raw, Config, strict=True), problems
        except msgspec.ValidationError as exc:
            message = str(exc)
            match = _AT.match(message)
            assert match is not None  # the pattern accepts any string
            where = _parse_path(match["path"] or "")
            text = match["msg"]
            if unknown := _UNKNOWN.fullmatch(text):
                where = (*where, unknown["field"])
            elif missing := _MISSING.fullmatch(text):
                full = (*where, missing["field"])
                if full in dropped:  # a required key already reported as wrong
                    return None, problems
                problems.append(_translate(message, raw))
                return None, problems
            problems.append(_translate(message, raw))
            if where in dropped or not _drop_at(raw, where):
                return None, problems
            dropped.add(where)
    return None, problems


def _drop_at(raw: Any, path: PathParts) -> bool:
    """Remove the value at `path` from `raw`; False when there is nothing to remove."""
    if not path:
        return False
    parent = _value_at(raw, path[:-1])
    try:
        del parent[path[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _config_error(problems: list[str], path: str | Path | None) -> ConfigError:
    where = f" in {path}" if path is not None else ""
    if len(problems) == 1:
        return ConfigError(f"invalid configuration{where}: {problems[0]}", tuple(problems))
    listed = "\n  ".join(problems)
    return ConfigError(f"invalid configuration{where}:\n  {listed}", tuple(problems))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib names line and column, never the content, so the message is safe to show.
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"overrides must be a mapping, got {type(overrides).__name__}")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if not isinstance(key, str) or not key:
            raise ConfigError(f"override key {key!r} is not a key name")
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
            if not value:
                continue
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r} conflicts with override {part!r}")
            node = child
        if isinstance(node.get(leaf), dict) and isinstance(value, dict):
            node[leaf] = _merge(node[leaf], value)
        else:
            node[leaf] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# Keys that used to exist, and where their meaning lives now. Configs are validated strictly,
# so an old file fails with the new place named instead of a bare "unknown key".
_MOVED_KEYS = {
    ("ready", "max_bbo_age_s"): "freshness.max_bbo_age_s",
    ("ready", "max_ctx_age_s"): "freshness.max_ctx_age_s",
    ("gates", "max_bbo_age_s"): "freshness.max_bbo_age_s",
    ("gates", "max_ctx_age_s"): "freshness.max_ctx_age_s",
    ("gates", "time_regression_block_s"): "freshness.time_regression_block_s",
    ("detector", "max_data_age_s"): "freshness.max_bbo_age_s and freshness.max_ctx_age_s",
    ("exits", "max_data_age_s"): "freshness.max_bbo_age_s and freshness.max_ctx_age_s",
    ("detector", "spread_ewma_alpha"): "gates.spread_ewma_alpha",
}


def _moved_key_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    for (section, key), new in _MOVED_KEYS.items():
        table = raw.get(section)
        if isinstance(table, Mapping) and key in table:
            yield (
                f"{section}.{key} has moved to {new} (one freshness definition and one spread "
                "EWMA for the whole bot): rename it there"
            )


# ---------------------------------------------------------------------------------------------
# Turning msgspec's errors into operator-facing ones

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_ABSENT = object()
_SECRET_WORDS = ("private", "secret", "password", "mnemonic", "seed_phrase")

PathParts = tuple[str | int, ...]
# a file this wrong is rewritten, not fixed line by line; the cap also bounds the retries
_MAX_REPORTED_PROBLEMS = 50


def _translate(message: str, raw: Mapping[str, Any]) -> str:
    match = _AT.match(message)
    assert match is not None  # the pattern accepts any string
    text, path = match["msg"], _parse_path(match["path"] or "")
    if unknown := _UNKNOWN.fullmatch(text):
        return _unknown_key_message(path, unknown["field"])
    if missing := _MISSING.fullmatch(text):
        full = (*path, missing["field"])
        return f"{_dotted(full)} is missing: expected {_describe(_type_at(full))}"
    value = _value_at(raw, path)
    shown = "(missing)" if value is _ABSENT else _show(value)
    return f"{_dotted(path)} = {shown}: expected {_describe(_type_at(path))}"


def _unknown_key_message(path: PathParts, field: str) -> str:
    full = _dotted((*path, field))
    message = f"unknown key '{full}'"
    known = _field_names(_type_at(path))
    close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
    if close:
        message += f" (did you mean '{_dotted((*path, close[0]))}'?)"
    if any(word in field.lower() for word in _SECRET_WORDS):
        message += (
            "; secrets are never read from config files: put the key in the environment "
            "variable named by account.key_env, or use account.keystore"
        )
    return message


def _parse_path(text: str) -> PathParts:
    return tuple(name if name else int(index) for name, index in _PATH_TOKEN.findall(text))


def _dotted(path: PathParts) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _value_at(raw: Any, path: PathParts) -> Any:
    node = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return node


def _type_at(path: PathParts) -> mi.Type:
    node: mi.Type = mi.type_info(Config)
    for part in path:
        node = _strip_optional(node)
        if isinstance(part, int) and isinstance(node, mi.VarTupleType | mi.ListType):
            node = node.item_type
        elif isinstance(part, str) and isinstance(node, mi.StructType):
            node = next((f.type for f in node.fields if f.name == part), mi.AnyType())
        else:
            return mi.AnyType()
    return node


def _strip_optional(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return t


def _field_names(t: mi.Type) -> list[str]:
    t = _strip_optional(t)
    if isinstance(t, mi.VarTupleType | mi.ListType):
        t = t.item_type
    return [f.name for f in t.fields] if isinstance(t, mi.StructType) else []


def _describe(t: mi.Type) -> str:
    t = _strip_optional(t)
    if isinstance(t, mi.FloatType):
        return "a number" + _bounds(t)
    if isinstance(t, mi.IntType):
        return "an integer" + _bounds(t)
    if isinstance(t, mi.BoolType):
        return "true or false"
    if isinstance(t, mi.StrType):
        return "a non-empty string" if t.min_length else "a string"
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, mi.StructType):
        return "a table"
    if isinstance(t, mi.VarTupleType | mi.ListType):
        item = _strip_optional(t.item_type)
        return "an array of tables" if isinstance(item, mi.StructType) else "an array"
    return "a valid value"


def _bounds(t: mi.FloatType | mi.IntType) -> str:
    parts = [
        f"{op} {_num(v)}"
        for op, v in ((">", t.gt), (">=", t.ge), ("<", t.lt), ("<=", t.le))
        if v is not None
    ]
    return (" " + " and ".join(parts)) if parts else ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


_HEX_BODY = re.compile(r"(?:0x)?[0-9a-fA-F]{48,}")


def _show(value: Any) -> str:
    """A value as it would be written in TOML, never echoing something shaped like a key."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if _HEX_BODY.fullmatch(value.strip()):
            return f"<redacted {len(value)}-character hex string>"
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# Checks msgspec cannot express: finiteness, formats, cross-field relations, safety interlocks

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Validator perps ("BTC", "kPEPE") or HIP-3 "dex:NAME"; dex names are short lowercase words.
_COIN = re.compile(r"(?:[a-z][a-z0-9]{0,7}:)?[A-Za-z0-9]{1,20}|[a-z][a-z0-9]{0,7}:\*")
_WS_URL = re.compile(r"wss?://[^\s/]+(?:/\S*)?")


def _problems(cfg: Config) -> Iterator[str]:
    yield from _non_finite(cfg, ())
    yield from _account_problems(cfg.account)
    yield from _market_problems(cfg.markets)
    yield from _url_problems(cfg)
    yield from _relation_problems(cfg)
    yield from _dashboard_problems(cfg.dashboard, os.environ)
    yield from _guard_problems(cfg)
    r = cfg.discovery.rediscover_s
    if 0 < r < MIN_REDISCOVER_S:
        yield (
            f"discovery.rediscover_s = {r!r}: expected 0 (only at connect) or at least "
            f"{MIN_REDISCOVER_S} seconds"
        )
    if cfg.network == "mainnet" and cfg.mode == "trading" and not cfg.confirm_mainnet:
        yield (
            "mode = 'trading' on network = 'mainnet' needs confirm_mainnet = true "
            "(or the bot's explicit mainnet confirmation flag); use mode = 'observation' "
            "to watch without trading"
        )


def _non_finite(node: msgspec.Struct, path: PathParts) -> Iterator[str]:
    for name in node.__struct_fields__:
        value = getattr(node, name)
        here = (*path, name)
        if isinstance(value, float) and not math.isfinite(value):
            expected = _describe(_type_at(here)).replace("a number", "a finite number", 1)
            yield f"{_dotted(here)} = {value!r}: expected {expected}"
        elif isinstance(value, msgspec.Struct):
            yield from _non_finite(value, here)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, msgspec.Struct):
                    yield from _non_finite(item, (*here, i))


def _account_problems(account: AccountConfig) -> Iterator[str]:
    for name in ("user", "signer"):
        value = getattr(account, name)
        if value is not None and not _ADDRESS.fullmatch(value):
            yield f"account.{name} = {_show(value)}: expected an address, 0x + 40 hex digits"
    if _HEX_BODY.fullmatch(account.key_env):
        # A key pasted where its variable's name belongs would be echoed by every message that
        # names the variable; refuse it outright.
        yield (
            f"account.key_env = {_show(account.key_env)}: expected the NAME of an environment "
            "variable holding the key, not the key itself"
        )
    elif not _ENV_NAME.fullmatch(account.key_env):
        yield (
            f"account.key_env = {_show(account.key_env)}: expected an environment variable "
            "name (letters, digits, underscore; not starting with a digit)"
        )
    if account.keystore is not None and not account.keystore.strip():
        yield (
            f"account.keystore = {_show(account.keystore)}: expected a path to an encrypted "
            "keyfile, or leave it out"
        )


def _market_problems(markets: tuple[MarketConfig, ...]) -> Iterator[str]:
    if not markets:
        yield "markets = []: expected at least one [[markets]] entry"
    seen: set[str] = set()
    for i, market in enumerate(markets):
        if not _COIN.fullmatch(market.coin):
            yield (
                f"markets[{i}].coin = {_show(market.coin)}: expected 'dex:NAME' "
                "(e.g. 'xyz:AAA'), 'dex:*' (every market of a HIP-3 dex) or a validator coin "
                "name (e.g. 'BTC')"
            )
        elif market.coin in seen:
            yield f"markets[{i}].coin = {_show(market.coin)}: expected each coin once"
        seen.add(market.coin)


def _url_problems(cfg: Config) -> Iterator[str]:
    url = cfg.ws_url
    if url is None:
        return
    if not _WS_URL.fullmatch(url):
        yield f"ws_url = {_show(url)}: expected a ws:// or wss:// URL"
        return
    # Signing source follows `network`, not the URL: a mainnet URL with testnet signing (or the
    # reverse) would send orders that recover to a stranger's address. Refuse the mix.
    official = {MAINNET_WS_URL: "mainnet", TESTNET_WS_URL: "testnet"}
    owner = official.get(url.rstrip("/"))
    if owner is not None and owner != cfg.network:
        yield (
            f"ws_url = {_show(url)} is the {owner} endpoint but network = {cfg.network!r}: "
            f"expected network = {owner!r} so orders are signed for that chain"
        )


def _dashboard_problems(dash: DashboardConfig, environ: Mapping[str, str]) -> Iterator[str]:
    """The token lives in the environment, so it is read here, where a mistake still stops
    the bot before it connects; its value is never part of a message."""
    if _HEX_BODY.fullmatch(dash.token_env) or not _ENV_NAME.fullmatch(dash.token_env):
        yield (
            f"dashboard.token_env = {_show(dash.token_env)}: expected the NAME of an environment "
            "variable holding the token (letters, digits, underscore), not the token itself"
        )
        return
    if not dash.enabled:
        return
    token = environ.get(dash.token_env, "")
    if token and len(token) < DASHBOARD_MIN_TOKEN_CHARS:
        yield (
            f"dashboard.token_env: the token in {dash.token_env} is {len(token)} characters: "
            f"expected at least {DASHBOARD_MIN_TOKEN_CHARS}"
        )
    elif not token and not is_loopback_host(dash.host):
        yield (
            f"dashboard.host = {_show(dash.host)} is not a loopback address: expected a token "
            f"in the environment variable {dash.token_env} (dashboard.token_env) to serve "
            "beyond this machine, or host = '127.0.0.1'"
        )


def _relation_problems(cfg: Config) -> Iterator[str]:
    def at_most(low_path: str, low: float, high_path: str, high: float) -> Iterator[str]:
        if math.isfinite(low) and math.isfinite(high) and low > high:
            yield f"{low_path} = {_num(low)}: expected a value <= {high_path} ({_num(high)})"

    ws, det, risk, fl, dms, pri = (
        cfg.websocket,
        cfg.detector,
        cfg.risk,
        cfg.flatten,
        cfg.dead_mans_switch,
        cfg.priority,
    )
    yield from at_most(
        "websocket.backoff_min_s", ws.backoff_min_s, "websocket.backoff_max_s", ws.backoff_max_s
    )
    # Exposed, reconnects must come well before the disconnect-with-exposure HardStop.
    if ws.exposed_backoff_max_s >= risk.disconnect_exposure_s:
        yield (
            f"websocket.exposed_backoff_max_s = {_num(ws.exposed_backoff_max_s)}: expected a "
            f"value < risk.disconnect_exposure_s ({_num(risk.disconnect_exposure_s)}) so a "
            "dropped connection is retried before the exposure HardStop trips"
        )
    yield from at_most(
        "detector.min_order_notional_usd",
        det.min_order_notional_usd,
        "detector.max_order_notional_usd",
        det.max_order_notional_usd,
    )
    yield from at_most(
        "detector.min_book_notional_usd",
        det.min_book_notional_usd,
        "detector.normal_book_notional_usd",
        det.normal_book_notional_usd,
    )
    if det.max_quote_lag_s:
        yield from at_most(
            "detector.min_quote_lag_s",
            det.min_quote_lag_s,
            "detector.max_quote_lag_s",
            det.max_quote_lag_s,
        )
    yield from at_most(
        "risk.max_notional_per_market_usd",
        risk.max_notional_per_market_usd,
        "risk.max_total_notional_usd",
        risk.max_total_notional_usd,
    )
    ex = cfg.exits
    if ex.time_decay_enabled and ex.decay_start_s >= ex.time_stop_s:
        yield (
            f"exits.decay_start_s = {_num(ex.decay_start_s)}: expected a value < "
            f"exits.time_stop_s ({_num(ex.time_stop_s)}), where the time decay ends"
        )
    yield from at_most(
        "flatten.retry_backoff_s",
        fl.retry_backoff_s,
        "flatten.retry_backoff_max_s",
        fl.retry_backoff_max_s,
    )
    guard = cfg.guard
    # A beat written every interval must not look stale between two writes.
    if guard.heartbeat_interval_s * 2 > guard.timeout_s:
        yield (
            f"guard.heartbeat_interval_s = {_num(guard.heartbeat_interval_s)}: expected at most "
            f"half of guard.timeout_s ({_num(guard.timeout_s)}) so a live bot never looks stale"
        )
    if guard.heartbeat_path is not None and not guard.heartbeat_path.strip():
        yield (
            f"guard.heartbeat_path = {_show(guard.heartbeat_path)}: expected a file path, "
            "or leave it out"
        )
    if pri.mode == "fixed":
        yield from at_most("priority.fixed_bps", pri.fixed_bps, "priority.cap_bps", pri.cap_bps)
    # The switch must be renewed before it fires, or resting orders die between renewals.
    if dms.interval_s >= dms.lead_s:
        yield (
            f"dead_mans_switch.interval_s = {_num(dms.interval_s)}: expected a value < "
            f"dead_mans_switch.lead_s ({_num(dms.lead_s)}) so it is renewed before it fires"
        )
    if dms.required and not dms.enabled:
        yield (
            "dead_mans_switch.required = true: expected dead_mans_switch.enabled = true "
            "(trading cannot require a switch that is never set)"
        )


def _guard_problems(cfg: Config) -> Iterator[str]:
    from hip3.execution.guards import parse_window

    g = cfg.entry_guards
    for i, text in enumerate(g.blackout_windows):
        try:
            parse_window(text)
        except ValueError as exc:
            yield f"entry_guards.blackout_windows[{i}] = {_show(text)}: {str(exc).split(': ', 1)[1]}"
    h = g.market_health
    if h.re_enable_at < h.disable_below:
        yield (
            f"entry_guards.market_health.re_enable_at = {_num(h.re_enable_at)}: expected a value >= "
            f"entry_guards.market_health.disable_below ({_num(h.disable_below)})"
        )
    if h.min_samples > h.window:
        yield (
            f"entry_guards.market_health.min_samples = {h.min_samples}: expected a value <= "
            f"entry_guards.market_health.window ({h.window})"
        )
    for m in cfg.markets:
        ratio = m.min_liq_buffer_ratio
        ratio = g.min_liq_buffer_ratio if ratio is None else ratio
        leverage = cfg.margin.leverage if m.leverage is None else m.leverage
        if ratio and not leverage:
            yield (
                f"entry_guards.min_liq_buffer_ratio = {_num(ratio)} for {m.coin}: expected a "
                "leverage to judge it by (set margin.leverage or its [[markets]] leverage)"
            )
    grouped: dict[str, str] = {}
    for i, group in enumerate(g.correlation_limit.groups):
        for coin in group.markets:
            if coin in grouped:
                yield (
                    f"entry_guards.correlation_limit.groups[{i}].markets: {coin!r} is already in group "
                    f"{grouped[coin]!r}: expected each market in one group at most"
                )
            grouped[coin] = group.name


def _normalised(cfg: Config) -> Config:
    account = cfg.account
    lowered = msgspec.structs.replace(
        account,
        user=account.user.lower() if account.user else None,
        signer=account.signer.lower() if account.signer else None,
    )
    return msgspec.structs.replace(cfg, account=lowered)
