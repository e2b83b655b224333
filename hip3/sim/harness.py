"""The simulator in-process: for tests, benchmarks, the bot's default network and `hip3 sim`.

    async with SimHarness(seed=7) as sim:
        sim.ws_url        # ws://127.0.0.1:PORT/ws
        sim.http_url      # http://127.0.0.1:PORT (POST /info, POST /exchange; an SDK's base_url)
        sim.account       # (address, private_key_hex), funded on every dex by transfers
        sim.exchange      # the true state (positions, open orders, ...)
        sim.faults        # FaultController: inject faults

`schedule_cancel_min_volume` sets the volume an account must have traded before it may set
a scheduleCancel deadline (live: $1,000,000; 0 lets any account use the dead man's switch).

With `feeds=False` no oracle process or maker runs: tests move prices themselves through
`sim.exchange.set_oracle` / `replace_maker_quotes` and the server publishes the changes.
The exchange clock still ticks, so scheduled cancels fire.

`timing` (off by default: every action runs and is answered at once, as fast tests want)
turns on the exchange's timing model (`hip3.sim.timing`): True for the scenario's
`[timing]`, or a `TimingConfig`. A scenario's `[[competitors]]` trade whenever it has some.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from hip3.sim.blocks import CANCEL_SLOT
from hip3.sim.faults import FaultController, FaultSpec, parse_faults
from hip3.sim.feeds import Feeds
from hip3.sim.scenario import Scenario, ScenarioEvent, load_scenario
from hip3.sim.server import ConnectionLimits, SimServer
from hip3.sim.timing import LoopClock, Sequencer, TimedGateway, TimingConfig

if TYPE_CHECKING:
    from hip3.sim.competitors import CompetingTakers

CLOCK_TICK_S = 0.05


def wall_clock_ms() -> int:
    # Nonces are checked against wall time, exactly as on the exchange.
    return time.time_ns() // 1_000_000


class SimHarness:
    """Exchange core + websocket server + feeds + faults, started together."""

    def __init__(
        self,
        *,
        seed: int = 7,
        scenario: Scenario | str | Path | None = None,
        faults: str | FaultSpec | None = None,
        feeds: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ConnectionLimits | None = None,
        fund: list[tuple[str, Decimal]] | None = None,
        timing: TimingConfig | bool | None = None,
        schedule_cancel_min_volume: Decimal | None = None,
        account_usdc: Decimal | None = None,
    ) -> None:
        self.seed = seed
        self.scenario = load_scenario(scenario)
        spec = faults if isinstance(faults, FaultSpec) else parse_faults(faults)
        self.faults = FaultController(spec)
        self.server = SimServer(limits=limits, faults=self.faults)
        config = self.scenario.timing if timing is True else timing or None
        self.sequencer: Sequencer | None = None
        emit: Callable[[object], None] = self.server.on_event
        clock: Callable[[], int] = wall_clock_ms
        if config is not None:
            self.sequencer = Sequencer(
                config,
                clock=LoopClock(),
                sink=self.server.on_event,
                rng=random.Random(f"{seed}:latency"),
            )
            emit, clock = self.sequencer.on_event, self.sequencer.clock_ms
        taps: list[Callable[[object], None]] = []
        if self.scenario.competitors:
            emit = _tapped(emit, taps)
        self.exchange = _make_exchange(self.scenario, seed, emit, clock, schedule_cancel_min_volume)
        self.server.attach(self.exchange)
        if self.sequencer is not None:  # WS posts and HTTP requests alike
            self.server.gateway = TimedGateway(self.server.gateway, self.sequencer)
        self.faults.attach(self.server, self.exchange)
        # `account_usdc` (the bot's `sim.fund_usdc`) overrides the scenario's funding. The
        # test account starts as a new account does (USDC on the first dex) and is then sent
        # that much again onto every HIP-3 dex in its collateral, so it trades everywhere.
        self.account: tuple[str, str] = self.exchange.new_account(
            self.scenario.account_usdc if account_usdc is None else account_usdc, every_dex=True
        )
        if self.scenario.account_abstraction != "disabled":
            self.exchange.set_abstraction(self.account[0], self.scenario.account_abstraction)
        # Undelegated staking HYPE pays priority fees, converted at the scenario's HYPE price.
        self.exchange.staking.hype_usd = self.scenario.hype_usd
        self.exchange.staking.fund(self.account[0], self.scenario.account_staking_hype)
        for address, usdc in fund or ():  # `hip3 sim --fund`: a new account, first dex only
            self.exchange.fund(address, usdc)
        self.competitors: CompetingTakers | None = None
        if self.scenario.competitors:
            # Imported only when used: it signs, and eth-account is slow to import.
            from hip3.sim.competitors import CompetingTakers

            self.competitors = CompetingTakers(
                self.exchange,
                list(self.scenario.competitors),
                submit=self.submit_internal,
                call_later=_call_later,
                source="a" if self.exchange.network == "Mainnet" else "b",
            )
            taps.append(self.competitors.on_event)
        in_block = self._in_block if self.sequencer is not None else None
        self.feeds: Feeds | None = (
            Feeds(self.exchange, self.scenario, seed, in_block=in_block) if feeds else None
        )
        self._host, self._port = host, port
        self._tasks: list[asyncio.Task[None]] = []
        self.ws_url = ""
        self.http_url = ""

    async def start(self) -> SimHarness:
        await self.server.start(self._host, self._port)
        self.ws_url = self.server.ws_url
        self.http_url = self.server.http_url
        if self.feeds is not None:
            self.feeds.step(direct=True)  # books exist before the first client can look
            self._tasks.append(asyncio.create_task(self.feeds.run(), name="sim-feeds"))
        self._tasks.append(asyncio.create_task(self._clock(), name="sim-clock"))
        for event in self.scenario.events:
            self._tasks.append(asyncio.create_task(self._event_later(event), name="sim-event"))
        self.faults.start()
        return self

    async def stop(self) -> None:
        await self.faults.stop()
        if self.competitors is not None:
            self.competitors.stop()
        if self.sequencer is not None:
            self.sequencer.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.server.stop()

    async def __aenter__(self) -> SimHarness:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _clock(self) -> None:
        # Scheduled cancels and funding depend on time passing even when nobody trades.
        while True:
            self.exchange.tick(wall_clock_ms())
            await asyncio.sleep(CLOCK_TICK_S)

    async def _event_later(self, event: ScenarioEvent) -> None:
        await asyncio.sleep(float(event.at_s))
        if event.kind == "disable_dex":
            self.exchange.disable_dex(event.target)
        elif event.kind == "list":  # a new market, appended to its dex's meta
            self.exchange.list_market(event.target)
        else:  # "delist": one market goes at a rediscovery; it keeps its slot and asset id
            self.exchange.halt_market(event.target)

    def new_account(self, usdc: Decimal, *, every_dex: bool = False) -> tuple[str, str]:
        """Another test account (address, private key hex), funded on the first perp dex
        only as on the exchange, or also sent `usdc` onto every HIP-3 dex."""
        return self.exchange.new_account(usdc, every_dex=every_dex)

    def submit_internal(self, payload: dict[str, Any], on_answer: Callable[[Any], None]) -> None:
        """A signed action from inside the simulator (a competitor): the same path and, with
        timing on, the same mempool and blocks as a client's action."""
        self.server.gateway.submit("action", payload, lambda answer: on_answer(answer.body))

    def _in_block(self, work: Callable[[], None]) -> None:
        assert self.sequencer is not None
        self.sequencer.submit(CANCEL_SLOT, work)


def _make_exchange(
    scenario: Scenario,
    seed: int,
    emit: Callable[[object], None],
    clock: Callable[[], int],
    schedule_cancel_min_volume: Decimal | None,
) -> Any:
    from hip3.sim.exchange import Exchange  # the core; imported late to keep start-up cheap

    options: dict[str, Any] = {}
    if schedule_cancel_min_volume is not None:
        options["schedule_cancel_min_volume"] = Decimal(schedule_cancel_min_volume)
    return Exchange(scenario.universe(), clock_ms=clock, emit=emit, seed=seed, **options)


def _tapped(
    emit: Callable[[object], None], taps: list[Callable[[object], None]]
) -> Callable[[object], None]:
    """`emit`, with every event shown to `taps` first (competitors watching the books)."""

    def tapped(event: object) -> None:
        for tap in taps:
            tap(event)
        emit(event)

    return tapped


def _call_later(ms: float, callback: Callable[[], None]) -> None:
    asyncio.get_running_loop().call_later(ms / 1000, callback)


__all__ = ["SimHarness", "wall_clock_ms"]
