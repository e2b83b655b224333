"""One guard run: watch the heartbeat, then act and report (the command is `hip3/guard/cli.py`).

The connection is opened first and the markets found while the bot is still alive, so the
guard is ready to act the moment the beat stops. Once it acts, SIGINT and SIGTERM no longer
interrupt it: a half-done cancel and flatten is the one outcome worse than either, and every
step is bounded (`guard.max_attempts` rounds, `guard.request_timeout_s` per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from hip3.app.exit_codes import ExitCode
from hip3.config import Config
from hip3.guard.actions import Guardian, Outcome
from hip3.guard.heartbeat import this_host
from hip3.guard.link import ExchangeLink, LinkError
from hip3.guard.reaper import kill_stale_bot
from hip3.guard.watcher import GuardMismatch, Verdict, WatchResult, watch
from hip3.keys import SigningKey
from hip3.protocol.signing import FastSigner

__all__ = ["run_guard"]

log = logging.getLogger("hip3.guard")

_WHAT_HAPPENED = {
    Verdict.STALE: "stopped beating",
    Verdict.GONE: "is gone",
    Verdict.STOPPED: "ended its run",
}


def _fail(message: str, code: ExitCode) -> int:
    print(f"hip3 guard: {message}", file=sys.stderr, flush=True)
    return code


async def run_guard(cfg: Config, url: str, key: SigningKey, user: str) -> int:
    g = cfg.guard
    path = Path(g.heartbeat_path or "")
    dexes = ", ".join(repr(d) for d in cfg.dexes)
    link = ExchangeLink(
        url,
        signer=FastSigner(key.secret_bytes()),
        mainnet=cfg.endpoints.mainnet_signing,
        request_timeout_s=g.request_timeout_s,
        ping_interval_s=g.ping_interval_s,
    )
    guardian = Guardian(link, user=user, dexes=cfg.dexes, cfg=g)
    log.info(
        "guard: account %s on %s (%s), heartbeat %s, timeout %gs, flatten %s",
        user,
        cfg.network,
        url,
        path,
        g.timeout_s,
        "on" if g.flatten else "off",
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[str] = []

    def on_signal(name: str) -> None:
        stopped_by.append(name)
        if stop.is_set():
            log.warning("guard: %s while acting; finishing first (bounded)", name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    link.start()
    try:
        refused = await _connect(link, guardian, key.address, g.request_timeout_s, dexes)
        if refused is not None:
            return _fail(
                f"the signing key may not trade the account: {refused}; nothing was done",
                ExitCode.ACCOUNT_REFUSED,
            )
        watcher = loop.create_task(
            watch(path, g, account=user, network=cfg.network), name="guard-watch"
        )
        stopper = loop.create_task(stop.wait())
        await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            return _fail(
                f"stopped by {stopped_by[0]} while watching; nothing was done",
                ExitCode.INTERRUPTED,
            )
        stopper.cancel()
        stop.set()  # from here a signal only says it waits for the guard to finish
        try:
            result = watcher.result()
        except GuardMismatch as exc:
            return _fail(f"{exc}; nothing was done", ExitCode.USAGE)
        if result.verdict is Verdict.NEVER_SEEN:
            return _fail(
                f"no heartbeat appeared at {path} within {g.start_deadline_s:g} s; "
                "nothing was done (is the bot running, in trading mode, with "
                "guard.heartbeat_path set?)",
                ExitCode.NEVER_READY,
            )
        await _end_hung_bot(result, g.kill_stale_bot)
        outcome = await guardian.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await link.close()
    return _report(outcome, user=user, dexes=dexes, flatten=g.flatten)


async def _connect(
    link: ExchangeLink, guardian: Guardian, signer: str, timeout_s: float, dexes: str
) -> str | None:
    """Connect, check that the key may trade the account, find the markets. Returns why the
    key may not trade the account, else None. What cannot be asked now (no connection yet) is
    asked again, or simply tried, when the guard acts."""
    if not await link.wait_connected(timeout_s):
        log.warning("guard: not connected yet (%s); retrying in the background", link.last_error)
        return None
    try:
        refused = await guardian.signer_problem(signer, time.time_ns() // 1_000_000)
    except LinkError as exc:
        log.warning("guard: the account check got no answer (%s)", exc)
        refused = None
    if refused is not None:
        return refused
    try:
        markets = await guardian.discover()
    except (LinkError, ValueError) as exc:
        log.warning("guard: discovery failed (%s); it is asked again before acting", exc)
        return None
    log.info("guard: connected; %d markets on dexes %s", len(markets), dexes)
    return None


async def _end_hung_bot(result: WatchResult, kill_stale: bool) -> None:
    beat = result.beat
    assert beat is not None
    stopped = result.verdict is Verdict.STOPPED
    log.log(
        logging.INFO if stopped else logging.WARNING,
        "guard: bot pid %d %s (last beat %.1fs ago, it held %d position(s) and %d order(s)); %s",
        beat.pid,
        _WHAT_HAPPENED[result.verdict],
        result.age_s,
        beat.positions,
        beat.open_orders,
        "checking the account" if stopped else "acting",
    )
    if result.verdict is not Verdict.STALE or not kill_stale:
        return
    if beat.host != this_host():
        log.warning(
            "guard: the bot ran on host %s; it cannot be ended from here; acting anyway", beat.host
        )
    elif not await kill_stale_bot(beat):
        log.error("guard: the hung bot could not be ended; acting anyway")


def _report(outcome: Outcome, *, user: str, dexes: str, flatten: bool) -> int:
    if outcome.clean:
        print(
            "hip3 guard: verified with the exchange: no open orders, no positions "
            f"(account {user}, dexes {dexes})",
            flush=True,
        )
        return ExitCode.OK
    if outcome.state is None:
        return _fail(
            "could not verify with the exchange "
            f"({'; '.join(outcome.errors[-3:]) or 'no answer'}); exposure may remain: "
            "check the account",
            ExitCode.EXPOSED,
        )
    why = "" if flatten or not outcome.state.positions else " (guard.flatten is off)"
    return _fail(
        f"exposure remains after {outcome.rounds} round(s): {outcome.state.describe()}{why}; "
        "check the account",
        ExitCode.EXPOSED,
    )
