"""One backtest: recorded frames through the bot's dispatcher on a virtual clock, against the
simulator's exchange core.

The loop, for each recorded frame in receive-time order:

1. the virtual clock runs up to the frame's receive time, firing what is due on the way: the
   bot's 100 ms ticks, blocks of the exchange's timing model, post answers and user events
   after their network delay, competing takers' orders;
2. the frame moves the exchange core (`Venue.apply`: the recorded book and oracle);
3. the frame reaches the bot as it reached the recording bot, decoded by the bot's own
   decoder, with its recorded receive time, if the bot is subscribed to it.

The bot is built by `hip3.app.wiring.build_dispatcher`, as `hip3 bot` builds it; it connects,
subscribes, reconciles and checks its account against the core as it would against the
exchange, and trades once READY. When the data ends it is asked to stop (cancel, and flatten
as configured) and the clock runs on until it has, or until `shutdown.timeout_s` and a margin
have passed. The journal gets every row with virtual timestamps; same data, seed, scenario and
config give the same journal file, byte for byte.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hip3.app.summary import build_summary
from hip3.app.wiring import build_dispatcher
from hip3.backtest.clock import BotClock, VirtualTime
from hip3.backtest.data import DataError, DataFile, merged, open_data
from hip3.backtest.venue import UnknownCoin, Venue
from hip3.config import Config
from hip3.events import FrameIn, OperatorCommand, Tick
from hip3.keys import SigningKey
from hip3.protocol.frames import decode_frame
from hip3.runtime.dispatcher import FatalError
from hip3.sim.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

TICK_NS = 100_000_000  # the bot's timer, as `Dispatcher.run` ticks it
STOP_MARGIN_NS = 10_000_000_000  # beyond shutdown.timeout_s, before the stop counts as stuck
# The journal commits once a minute of data, not every tick: a crashed backtest is rerun from
# its data, so it needs none of the live bot's per-tick durability (the rows are the same).
JOURNAL_FLUSH_EVERY_MS = 60_000


class BacktestError(RuntimeError):
    """A backtest that cannot run; the message is one line naming the problem."""


@dataclass
class BacktestResult:
    summary: dict[str, Any]
    journal: Path | None
    frames: int = 0  # recorded frames replayed
    frames_to_bot: int = 0  # recorded frames the bot was subscribed to
    first_ns: int = 0
    last_ns: int = 0
    truncated: list[str] = field(default_factory=list)  # recordings that ended in a cut


def run_backtest(
    cfg: Config,
    data: list[str | Path],
    *,
    journal: str | Path | None,
    seed: int = 7,
    scenario: Scenario | str | Path | None = None,
    timing: bool = True,
    oracle_from_mid: bool = False,
) -> BacktestResult:
    """Replay `data` (recordings and/or l2Book archive files) through the bot configured by
    `cfg`; write the journal to `journal` (replaced if it exists). Raises BacktestError."""
    try:
        files = [open_data(p) for p in data]
    except DataError as exc:
        raise BacktestError(str(exc)) from None
    if not files:
        raise BacktestError("no data file given")
    try:
        scen = load_scenario(scenario if scenario is not None else cfg.sim.scenario)
    except ValueError as exc:
        raise BacktestError(f"scenario: {exc}") from None
    stream = merged(files)
    try:
        first = next(stream)
    except StopIteration:
        raise BacktestError(f"{files[0].path}: no frames") from None
    except DataError as exc:
        raise BacktestError(str(exc)) from None
    time = VirtualTime(first[0])
    return _Run(cfg, files, scen, time, seed, timing, oracle_from_mid, journal).go(first, stream)


class _Run:
    def __init__(
        self,
        cfg: Config,
        files: list[DataFile],
        scenario: Scenario,
        time: VirtualTime,
        seed: int,
        timing: bool,
        oracle_from_mid: bool,
        journal_path: str | Path | None,
    ) -> None:
        self.files = files
        self.time = time
        self.venue = Venue(
            scenario,
            time=time,
            seed=seed,
            timing=scenario.timing if timing else None,
            deliver=self._to_bot,
            oracle_from_mid=oracle_from_mid,
        )
        address, secret = self.venue.account
        self.cfg = cfg = _with_user(cfg, address)
        key = SigningKey.from_hex(secret, source="the backtest's simulated account")
        self.clock = clock = BotClock(time)
        self.journal_path = Path(journal_path) if journal_path is not None else None
        self.journal = _open_journal(self.journal_path, cfg, seed, clock)
        try:
            self.d = build_dispatcher(
                cfg,
                transport=self.venue.transport(),
                key=key,
                user=address if cfg.mode == "trading" else None,
                journal=self.journal,
                journal_flush_every_ms=JOURNAL_FLUSH_EVERY_MS,
                log_transitions=False,
                clock=clock,
                rng=random.Random(f"{seed}:bot"),
                cloid_salt=random.Random(f"{seed}:cloids").getrandbits(48),
            )
        except FatalError as exc:
            if self.journal is not None:
                self.journal.close()
            raise BacktestError(str(exc)) from None

    # --- events into the bot ---------------------------------------------------------------

    def _to_bot(self, event: Any) -> None:
        d = self.d
        if d.finished.is_set():
            return
        d.handle(event)
        inbox = d.inbox
        while inbox and not d.finished.is_set():
            d.handle(inbox.popleft())

    def _tick(self) -> None:
        if self.d.finished.is_set():
            return
        self._to_bot(Tick())
        self.time.call_at_ns(self.time.ns + TICK_NS, self._tick)

    # --- the run ---------------------------------------------------------------------------

    def go(self, first: tuple[int, Any, int, DataFile], rest: Any) -> BacktestResult:
        time, venue, d = self.time, self.venue, self.d
        result = BacktestResult(summary={}, journal=self.journal_path, first_ns=first[0])
        try:
            d.start()
            self._tick_at_start()
            frames = 0
            to_bot = 0
            record = first
            while record is not None:
                recv_ns, frame, line, source = record  # decoded as it was read
                time.run_until(recv_ns)
                try:
                    extra = venue.apply(frame)
                except UnknownCoin as exc:
                    raise BacktestError(
                        f"{source.path}: line {line}: unknown coin {exc} (not a market of the "
                        "scenario's exchange)"
                    ) from None
                except ValueError as exc:
                    raise BacktestError(f"{source.path}: line {line}: {exc}") from None
                frames += 1
                if not d.finished.is_set():
                    epoch = venue.epoch
                    if venue.wants(frame):
                        to_bot += 1
                        self._to_bot(FrameIn(epoch, frame, recv_ns))
                    for data in extra:
                        to_bot += 1
                        self._to_bot(FrameIn(epoch, decode_frame(data), recv_ns))
                try:
                    record = next(rest, None)
                except DataError as exc:
                    raise BacktestError(str(exc)) from None
            result.frames, result.frames_to_bot, result.last_ns = frames, to_bot, time.ns
            self._stop()
        finally:
            venue.stop()
            d.recorder.close()
        result.summary = self._summary()
        result.truncated = [str(f.path) for f in self.files if f.truncated]
        return result

    def _tick_at_start(self) -> None:
        self.time.call_at_ns(self.time.ns + TICK_NS, self._tick)

    def _stop(self) -> None:
        """The data has ended: the graceful stop, then the clock runs until it is done."""
        time, d = self.time, self.d
        self._to_bot(OperatorCommand("shutdown", "end of data"))
        deadline = time.ns + int(self.cfg.shutdown.timeout_s * 1e9) + STOP_MARGIN_NS
        while not d.finished.is_set():
            due = time.next_due_ns()
            if due is None or due > deadline:
                break
            time.run_until(due)
        if not d.finished.is_set():
            d.abort("the backtest's stop did not finish within shutdown.timeout_s")

    def _summary(self) -> dict[str, Any]:
        d, exchange = self.d, self.venue.exchange
        exchange_view = None
        if d.trading:
            user = self.venue.account[0]
            positions = {
                coin: str(size) for coin, size in sorted(exchange.positions(user).items()) if size
            }
            orders = sorted(
                (
                    {
                        "coin": o["coin"],
                        "side": o["side"],
                        "sz": o["sz"],
                        "px": o["limitPx"],
                        "oid": o["oid"],
                    }
                    for o in exchange.open_orders(user)
                ),
                key=lambda o: o["oid"],
            )
            exchange_view = (positions, orders)
        summary = build_summary(d, exchange=exchange_view, check_error=None)
        summary["competitor_fills"] = (
            {c.params.name: c.filled for c in self.venue.competitors.competitors}
            if self.venue.competitors is not None
            else {}
        )
        return summary


def _open_journal(path: Path | None, cfg: Config, seed: int, clock: BotClock) -> Any:
    if path is None:
        return None
    from hip3.journal import Journal, JournalError

    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            stale.unlink(missing_ok=True)
        except OSError as exc:
            raise BacktestError(f"--journal {path}: cannot replace it ({exc.strerror})") from None
    try:
        return Journal(
            path,
            session=f"backtest-seed-{seed}",
            mode=cfg.mode,
            network="backtest",
            clock_ms=clock.wall_ms,
            pid=0,  # no process of its own to name: a backtest's journal depends on its inputs
        )
    except JournalError as exc:
        raise BacktestError(f"journal: {exc}") from None


def _with_user(cfg: Config, address: str) -> Config:
    import msgspec

    return msgspec.structs.replace(
        cfg, account=msgspec.structs.replace(cfg.account, user=address.lower())
    )


__all__ = ["BacktestError", "BacktestResult", "run_backtest"]
