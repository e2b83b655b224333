"""The runtime's composition root: how the bot's components are put together.

`assemble()` builds every component of one run in dependency order, each given in its
constructor the books and collaborators it works with, and returns them in a `Runtime`.
This file answers "what is the runtime made of, and who holds whom"; where an event goes once
the run is under way is the dispatcher's story (dispatcher.py), which owns the inbox, routes
each event and runs each command the machines emit through these components.

A few facts pass from a component built early to one built later (the reconciler's account
value to the executor, an applied fill to the strategy host, ...). The dispatcher routes them,
so `assemble()` takes each route as an explicit callable rather than reaching back into it.
The strategy is built here too: the built-in taker's detector and exit policy read the same
fee table, gates, specs and entry guards the components were given.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hip3.execution.entry_guards import EntryGuards
from hip3.execution.executor import Executor, RiskLimits
from hip3.execution.liquidation import LiquidationBuffer
from hip3.execution.orders import OrderRegistry
from hip3.execution.positions import PositionTracker
from hip3.execution.risk import RiskMonitor
from hip3.machines.connection import ConnectionMachine
from hip3.machines.flatten import FlattenMachine
from hip3.machines.hardstop import HardStopMachine
from hip3.market.gates import GateParams, MarketGates
from hip3.market.spread import SpreadEwma
from hip3.market.state import Freshness, MarketSpec, MarketState
from hip3.protocol.ids import CloidSource
from hip3.runtime.account_check import AccountCheck
from hip3.runtime.common import FatalError, dec, ms
from hip3.runtime.dead_mans_switch import DeadMansSwitch
from hip3.runtime.epoch import FRAME_STATES, ConnectionEpoch
from hip3.runtime.flatten import Flattening
from hip3.runtime.leverage import LeverageSetter
from hip3.runtime.market_join import MarketJoin
from hip3.runtime.order_flow import Fills, OrderFlow
from hip3.runtime.price_lookup import PriceLookup
from hip3.runtime.ready import Ready
from hip3.runtime.reconciliation import Reconciler
from hip3.runtime.recorder import Recorder
from hip3.runtime.rediscovery import Rediscovery
from hip3.runtime.safety import Safety
from hip3.runtime.strategy_host import StrategyHost
from hip3.runtime.streams import StreamWatch
from hip3.runtime.trip import HardStopTrip
from hip3.runtime.wire import Wire
from hip3.strategy.api import Strategy
from hip3.strategy.exits import ExitParams, ExitPolicy
from hip3.strategy.fees import FeeTable
from hip3.strategy.loader import BUILTIN, StrategyError, load_strategy_class, strategy_params
from hip3.strategy.priority import PriorityPolicy
from hip3.strategy.taker import DislocationTaker, make_detector
from hip3.transport.limits import TokenBucket

__all__ = ["Runtime", "assemble", "build_strategy"]


@dataclass(slots=True)
class Runtime:
    """What `assemble()` built, under the names the dispatcher exposes it by: the shared books,
    then the components that use them. (`Fills` is held by its two users alone, the
    reconciler and the order flow.)"""

    # shared state: the machines and the books the components read and change
    conn: ConnectionMachine
    wire: Wire
    markets: dict[str, MarketState]
    specs: dict[str, MarketSpec]
    dead_mans_switch: DeadMansSwitch
    ready: Ready
    hardstop: HardStopMachine
    flatten: dict[str, FlattenMachine]
    orders: OrderRegistry
    positions: PositionTracker
    cloids: Any
    gates: dict[str, MarketGates]
    fees: FeeTable
    priority: PriorityPolicy
    risk: RiskMonitor
    recorder: Recorder
    trip: HardStopTrip
    # the components
    epoch: ConnectionEpoch
    reconciler: Reconciler
    leverage: LeverageSetter
    order_flow: OrderFlow
    entry_guards: EntryGuards
    liq_buffer: LiquidationBuffer
    executor: Executor
    price_lookup: PriceLookup
    flattening: Flattening
    safety: Safety
    host: StrategyHost
    streams: StreamWatch
    # the strategy, and the built-in taker's detector and exit policy (None for another)
    strategy: Any
    detector: Any
    exits: Any
    # whole dexes whose listings change during the run
    market_join: MarketJoin
    rediscovery: Rediscovery


def assemble(
    cfg: Any,
    *,
    trading: bool,
    user: str | None,
    coins: list[str],
    dexes: list[str],
    transport: Any,
    clock: Any,
    signer: Any | None,
    nonces: Any | None,
    rng: random.Random | None,
    cloids: Any | None,
    detector: Any | None,
    exits: Any | None,
    journal: Any | None,
    transition_log: Any | None,
    latency: Any | None,
    account_check: AccountCheck | None,
    strategy: Any | None,
    whole_dexes: tuple[Any, ...],
    journal_flush_every_ms: int,
    outbox: list,
    counters: Counter[str],
    decode_errors: Counter[str],
    account_value: Callable[[str, Any], None],
    margin_state: Callable[[str, Any], None],
    fill_applied: Callable[[Any, str | None], None],
    order_transition: Callable[[str, str, str, str], None],
) -> Runtime:
    """Build one run's components in dependency order. `coins` and `dexes` are the run's own
    lists, shared with the dispatcher (a market joining during the run is appended to
    `coins`); `outbox` is the machines' shared command list the dispatcher runs; the rest is
    as `Dispatcher` takes it.

    The routes, called only once the run is under way: `account_value` and `margin_state`
    (the reconciler read a dex's account value or margin state), `fill_applied` (a fill
    reached the positions), `order_transition` (an order's machine moved)."""
    now = clock.now_ms()

    # --- shared state: the machines and the books the components read and change
    ws, ob = cfg.websocket, cfg.outbound
    conn = ConnectionMachine(
        backoff_min_ms=ms(ws.backoff_min_s),
        backoff_max_ms=ms(ws.backoff_max_s),
        backoff_reset_after_ms=ms(ws.backoff_reset_after_s),
        ping_after_ms=ms(ws.ping_after_s),
        pong_timeout_ms=ms(ws.pong_timeout_s),
        handshake_timeout_ms=ms(ws.handshake_timeout_s),
        exposed_backoff_max_ms=ms(ws.exposed_backoff_max_s),
        exposed_ping_interval_ms=ms(ws.exposed_ping_interval_s),
        exposed_pong_timeout_ms=ms(ws.exposed_pong_timeout_s),
        rng=rng or random.Random(),
        outbox=outbox,
    )
    wire = Wire(
        transport,
        signer=signer,
        nonces=nonces,
        mainnet=cfg.endpoints.mainnet_signing,
        messages_per_minute=ob.messages_per_minute,
        max_inflight_posts=ob.max_inflight_posts,
        post_timeout_ms=ms(ob.post_timeout_s),
        now_ms=clock.now_ms,
        is_open=lambda: conn.state in FRAME_STATES,
    )
    account_check = account_check if trading else None
    if account_check is not None:
        wire.signer_verified = False
    freshness = Freshness.from_config(cfg.freshness)
    markets: dict[str, MarketState] = {
        c: MarketState(c, freshness, SpreadEwma(cfg.gates.spread_ewma_alpha)) for c in coins
    }
    specs: dict[str, MarketSpec] = {}
    dead_mans_switch = DeadMansSwitch(
        cfg=cfg.dead_mans_switch,
        wire=wire,
        conn=conn,
        trading=trading,
        clock=clock,
        counters=counters,
    )
    ready = Ready(now_ns=clock.now_ns, dead_mans_switch=dead_mans_switch)
    ready.connection = conn
    ready.markets = markets
    hardstop = HardStopMachine(retry_interval_ms=ms(cfg.flatten.timeout_s), outbox=outbox)
    flatten: dict[str, FlattenMachine] = {}
    orders = OrderRegistry(outbox)
    positions = PositionTracker(session_start_ms=clock.wall_ms())
    cloids = cloids or CloidSource()
    d = cfg.detector
    gates = {c: MarketGates(c, GateParams.from_config(cfg.gates)) for c in coins}
    fees = FeeTable(dec(d.taker_fee_bps))
    priority = PriorityPolicy.from_config(cfg.priority, cfg.markets)
    r = cfg.risk
    risk = RiskMonitor(
        loss_limit=dec(r.loss_limit_usd),
        max_consecutive_rejections=r.max_consecutive_rejections,
        disconnect_exposure_ms=ms(r.disconnect_exposure_s),
        max_flatten_failures=r.max_flatten_failures,
    )
    recorder = Recorder(journal, observation=not trading, flush_every_ms=journal_flush_every_ms)
    trip = HardStopTrip(hardstop, now_ms=clock.now_ms)

    # --- the components, each given what it works with
    epoch = ConnectionEpoch(
        cfg=cfg,
        conn=conn,
        wire=wire,
        transport=transport,
        ready=ready,
        coins=coins,
        retired=ready.retired,
        markets=markets,
        trading=trading,
        user=user,
        hardstop=hardstop,
        outbox=outbox,
        clock=clock,
        counters=counters,
        transition_log=transition_log,
        latency=latency,
        account_check=account_check,
        trip=trip,
    )
    fills = Fills(
        orders=orders,
        positions=positions,
        recorder=recorder,
        on_fill=fill_applied,
    )
    reconciler = Reconciler(
        conn=conn,
        wire=wire,
        epoch=epoch,
        orders=orders,
        positions=positions,
        fills=fills,
        specs=specs,
        gates=gates,
        fees=fees,
        coins=coins,
        retired=ready.retired,
        dexes=dexes,
        user=user,
        trading=trading,
        clock=clock,
        counters=counters,
        decode_errors=decode_errors,
        account_value=account_value,
        margin_state=margin_state,
    )
    leverage = LeverageSetter(
        wanted={c: cfg.leverage_for(c) for c in coins} if trading else {},
        prefer_cross=cfg.margin.cross,
        specs=specs,
        unsettled=ready.unsettled,
        retired=ready.retired,
        ask=reconciler.ask,
        wire=wire,
        conn=conn,
        user=user,
        counters=counters,
    )
    order_flow = OrderFlow(
        orders=orders,
        positions=positions,
        fills=fills,
        risk=risk,
        reconciler=reconciler,
        first_data=epoch.first,
        trip=trip,
        wire=wire,
        recorder=recorder,
        user=user,
        clock=clock,
        counters=counters,
        latency=latency,
        transition_log=transition_log,
    )
    entry_guards = EntryGuards.from_config(cfg.entry_guards, positions=positions)
    liq_buffer = LiquidationBuffer(
        ratios={c: dec(cfg.liq_buffer_ratio_for(c)) for c in coins} if trading else {},
        specs=specs,
        markets=markets,
        settings=leverage.settings.get,
        tracked_size=positions.size,
        refresh=reconciler.read_margin,
    )
    executor = Executor(
        limits=RiskLimits(
            max_notional_per_market=dec(r.max_notional_per_market_usd),
            max_total_notional=dec(r.max_total_notional_usd),
            max_concurrent_positions=r.max_concurrent_positions,
            min_order_notional=dec(d.min_order_notional_usd),
            slippage_bps=dec(d.slippage_bps),
            max_slippage_bps=dec(d.max_slippage_bps),
            risk_per_market=dec(r.risk_per_market) if r.dynamic_sizing else None,
        ),
        action_budget=TokenBucket(max(1, int(r.max_actions_per_s)), 1.0, now),
        ready=ready,
        hardstop=hardstop,
        flatten=flatten,
        positions=positions,
        orders=orders,
        markets=markets,
        specs=specs,
        wire=wire,
        cloids=cloids,
        trading=trading,
        order_post=order_flow.order_post,
        guards=entry_guards,
        wall_ms=clock.wall_ms,
        exit_priority=priority.exit_rate,
        liq_buffer=liq_buffer,
    )
    executor.journal = journal  # set after construction, as the executor has always taken it
    if transition_log is not None:
        transition_log.attach(conn)
        transition_log.attach(hardstop)
    # a price for a position in a coin the bot does not stream (HardStop flattens it too)
    price_lookup = PriceLookup(
        ask=reconciler.ask,
        can_ask=ready.can_reduce,
        now_ms=clock.now_ms,
        counters=counters,
    )
    flattening = Flattening(
        cfg=cfg,
        flatten=flatten,
        hardstop=hardstop,
        positions=positions,
        markets=markets,
        specs=specs,
        ready=ready,
        wire=wire,
        executor=executor,
        price_lookup=price_lookup,
        risk=risk,
        trip=trip,
        outbox=outbox,
        clock=clock,
        counters=counters,
        transition_log=transition_log,
    )
    safety = Safety(
        cfg=cfg,
        hardstop=hardstop,
        trip=trip,
        flattening=flattening,
        reconciler=reconciler,
        conn=conn,
        orders=orders,
        positions=positions,
        markets=markets,
        specs=specs,
        gates=gates,
        wire=wire,
        ready=ready,
        risk=risk,
        recorder=recorder,
        user=user,
        dexes=dexes,
        trading=trading,
        clock=clock,
        counters=counters,
    )
    host = StrategyHost(
        coins=coins,
        markets=markets,
        positions=positions,
        orders=orders,
        flatten=flatten,
        hardstop=hardstop,
        executor=executor,
        ready=ready,
        specs=specs,
        fees=fees,
        priority=priority,
        recorder=recorder,
        first_data=epoch.first,
        request_flatten=flattening.request,
        clock=clock,
        counters=counters,
    )
    fr = cfg.freshness
    streams = StreamWatch(
        markets=markets,
        readiness=lambda: epoch.readiness,
        is_live=lambda: conn.is_live,
        epoch=lambda: conn.epoch,
        wire=wire,
        reconnect=epoch.stream_stale,
        resubscribe_wait_s=fr.resubscribe_wait_s,
        max_resubscribes=fr.max_resubscribes,
    )
    built = build_strategy(
        cfg,
        strategy,
        host=host,
        detector=detector,
        exits=exits,
        fees=fees,
        gates=gates,
        specs=specs,
        priority=priority,
        entry_guards=entry_guards,
    )
    host.attach(built)
    # the built-in taker's detector and exit policy (status, metrics, benchmarks read them)
    taker_detector = getattr(built, "detector", None)
    taker_exits = getattr(built, "exits", None)
    # whole dexes whose listings change during the run (rediscovery.py, market_join.py)
    detector_params = getattr(taker_detector, "p", None)
    market_join = MarketJoin(
        coins=coins,
        markets=markets,
        gates=gates,
        new_market=lambda c: MarketState(c, freshness, SpreadEwma(cfg.gates.spread_ewma_alpha)),
        new_gates=lambda c: MarketGates(c, GateParams.from_config(cfg.gates)),
        thresholds=getattr(detector_params, "thresholds", None),
        priority_caps=priority.caps,  # type: ignore[arg-type]
        liq_ratios=liq_buffer.ratios,
        default_liq_ratio=cfg.entry_guards.min_liq_buffer_ratio,
        default_leverage=cfg.margin.leverage,
        leverage=leverage,
        ready=ready,
        epoch=epoch,
        host=host,
        trading=trading,
    )
    rediscovery = Rediscovery(
        entries=tuple(whole_dexes),
        rediscover_s=cfg.discovery.rediscover_s,
        ask=reconciler.ask,
        conn=conn,
        specs=specs,
        known=lambda: set(coins) | ready.retired,
        apply_specs=reconciler.apply_specs,
        join=market_join,
        counters=counters,
    )
    # Every order transition: to the journal and transition log, and to the strategy. The
    # registry was built before either listener, so its callback is set here, last.
    orders.on_transition = order_transition
    return Runtime(
        conn=conn,
        wire=wire,
        markets=markets,
        specs=specs,
        dead_mans_switch=dead_mans_switch,
        ready=ready,
        hardstop=hardstop,
        flatten=flatten,
        orders=orders,
        positions=positions,
        cloids=cloids,
        gates=gates,
        fees=fees,
        priority=priority,
        risk=risk,
        recorder=recorder,
        trip=trip,
        epoch=epoch,
        reconciler=reconciler,
        leverage=leverage,
        order_flow=order_flow,
        entry_guards=entry_guards,
        liq_buffer=liq_buffer,
        executor=executor,
        price_lookup=price_lookup,
        flattening=flattening,
        safety=safety,
        host=host,
        streams=streams,
        strategy=built,
        detector=taker_detector,
        exits=taker_exits,
        market_join=market_join,
        rediscovery=rediscovery,
    )


def build_strategy(
    cfg: Any,
    factory: Any,
    *,
    host: StrategyHost,
    detector: Any,
    exits: Any,
    fees: FeeTable,
    gates: dict[str, MarketGates],
    specs: dict[str, MarketSpec],
    priority: PriorityPolicy,
    entry_guards: EntryGuards,
) -> Any:
    """The run's strategy, bound to its host: `factory` (a Strategy class or a callable given
    the host) when given, else the one `cfg.strategy` names, else the built-in taker (with
    `detector` and `exits` in place of the configured ones when given). A strategy that cannot
    be loaded or configured is fatal."""
    try:
        if isinstance(factory, type) and issubclass(factory, Strategy):
            return factory(host, strategy_params(factory, cfg.strategy.params))
        if factory is not None:
            return factory(host)
        name = cfg.strategy.name
        if name is None or name == BUILTIN:
            return DislocationTaker(
                host,
                detector=detector
                or make_detector(cfg, fees=fees, gates=gates, specs=specs, priority=priority),
                exits=exits if exits is not None else exit_policy(cfg, entry_guards),
            )
        cls = load_strategy_class(name)
        if cls is DislocationTaker:
            return DislocationTaker(
                host,
                detector=make_detector(cfg, fees=fees, gates=gates, specs=specs, priority=priority),
                exits=exit_policy(cfg, entry_guards),
            )
        return cls(host, strategy_params(cls, cfg.strategy.params))
    except StrategyError as exc:
        raise FatalError(str(exc)) from None


def exit_policy(cfg: Any, entry_guards: EntryGuards) -> ExitPolicy:
    """The built-in taker's exits: [exits] and [oracle_exit], the entry guards' edge."""
    return ExitPolicy(
        ExitParams.from_config(cfg.exits, cfg.oracle_exit),
        entry_edge=entry_guards.entry_edge,
    )
