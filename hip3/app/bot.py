"""Wires one bot run: key, optional in-process simulator, transport, dispatcher, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

from hip3.app.startup import StartupWatch, StopKeys, stop_after
from hip3.app.summary import build_summary, exchange_state
from hip3.app.wiring import build_dispatcher
from hip3.config import Config
from hip3.events import OperatorCommand
from hip3.keys import SigningKey, check_signer, load_signing_key, trading_user
from hip3.protocol.frames import decode_frame
from hip3.runtime.dispatcher import Dispatcher, FatalError
from hip3.transport.socket import WsTransport

log = logging.getLogger(__name__)


class BotError(RuntimeError):
    """A run that cannot start; the message says which setting to fix."""


async def run_bot(
    cfg: Config,
    *,
    duration_s: float | None = None,
    key_env: str | None = None,
    install_signals: bool = True,
    on_dispatcher: Any = None,
    key: SigningKey | None = None,
    status_stream: Any = None,
    log_transitions: bool | None = None,
    record: Any = None,
    strategy: Any = None,
) -> dict:
    """Run until shutdown; returns the summary dict.

    `key` lets an embedding program (or a test) hand over a key it already holds; otherwise
    the key comes from `key_env`, the configured key sources, or the built-in simulator.
    `record` (a path) writes every inbound market-data frame there (`hip3 bot --record`).
    `strategy`: a Strategy class to run instead of the one `cfg.strategy.name` names (its
    parameters still come from `cfg.strategy.params`).
    """
    if log_transitions is None:
        log_transitions = cfg.metrics.log_transitions
    sim = None
    url = cfg.endpoints.ws_url
    if key is not None:
        if url is None:
            raise BotError(
                "a key was given but no ws_url: the built-in simulator brings its own account"
            )
    elif url is None:
        # network "sim" without a URL: the built-in simulator, in-process, with its funded account
        from hip3.sim.harness import SimHarness

        sim = SimHarness(
            seed=cfg.sim.seed,
            scenario=cfg.sim.scenario,
            faults=cfg.sim.faults,
            account_usdc=Decimal(str(cfg.sim.fund_usdc)),
        )
        await sim.start()
        url = sim.ws_url
        address, secret = sim.account
        key = SigningKey.from_hex(secret, source="the simulator's test account")
        if cfg.account.user is None:
            cfg = _with_user(cfg, address)
        log.info("simulator on %s, account %s", url, address)
    elif key_env is not None:
        value = os.environ.get(key_env)
        if not value:
            raise BotError(f"--key-env {key_env}: the environment variable is not set")
        key = SigningKey.from_hex(value, source=f"environment variable {key_env}")
    else:
        key = load_signing_key(cfg)
    recorder: Any = None  # the --record writer, once opened
    try:
        # the "dex:*" entries as written: the run follows their listings (rediscovery)
        whole_dexes = tuple(m for m in cfg.markets if m.whole_dex)
        if whole_dexes:
            cfg = await _expand_whole_dexes(cfg, url)
        trading = cfg.mode == "trading"
        user: str | None = None
        if trading:
            if key is None:
                raise BotError(
                    f"trading mode needs a signing key: set {cfg.account.key_env} or account.keystore"
                )
            check_signer(cfg, key)
            user = trading_user(cfg, key)
        dispatcher: Dispatcher | None = None

        startup = StartupWatch(url, cfg.ready.startup_timeout_s, trading=trading)

        def put(event: Any) -> None:
            assert dispatcher is not None
            startup.observe(event)
            dispatcher.put(event)

        journal = None
        if cfg.journal.enabled:
            from hip3.journal import Journal, JournalError

            try:
                journal = Journal(cfg.journal.path, mode=cfg.mode, network=cfg.network)
            except JournalError as exc:
                raise BotError(f"journal: {exc}") from None
        if record is not None:
            from hip3.transport.recording import FrameRecorder, RecordingError

            try:
                recorder = FrameRecorder(record)
            except RecordingError as exc:
                if journal is not None:
                    journal.close()
                raise BotError(str(exc)) from None
        transport = WsTransport(
            url,
            put,
            decode_frame,
            connect_timeout_s=cfg.websocket.connect_timeout_s,
            tap=recorder.offer if recorder is not None else None,
        )
        from hip3.metrics.exporter import LATENCY

        try:
            dispatcher = build_dispatcher(
                cfg,
                transport=transport,
                key=key,
                user=user,
                journal=journal,
                log_transitions=log_transitions,
                latency=LATENCY,
                strategy=strategy,
                whole_dexes=whole_dexes,
            )
        except FatalError as exc:
            if journal is not None:
                journal.close()
            raise BotError(str(exc)) from None
        if on_dispatcher is not None:
            on_dispatcher(dispatcher, sim)
        loop = asyncio.get_running_loop()
        metrics_server = None
        if cfg.metrics.enabled:
            from hip3.metrics.exporter import start_metrics

            try:
                metrics_server = start_metrics(dispatcher, cfg.metrics.host, cfg.metrics.port)
            except OSError as exc:
                dispatcher.recorder.close()
                raise BotError(f"{exc.strerror or exc} (set [metrics] port)") from None
        dashboard = None
        if cfg.dashboard.enabled:
            from hip3.dashboard import DashboardError, start_dashboard

            try:
                dashboard = start_dashboard(dispatcher, cfg.dashboard, latency=LATENCY)
            except DashboardError as exc:
                if metrics_server is not None:
                    metrics_server.close()
                dispatcher.recorder.close()
                raise BotError(str(exc)) from None
        heartbeat = None
        if trading and cfg.guard.heartbeat_path is not None:
            from hip3.app.heartbeat import DispatcherExposure, HeartbeatInUse, HeartbeatWriter

            assert user is not None
            heartbeat = HeartbeatWriter(
                Path(cfg.guard.heartbeat_path),
                account=user,
                network=cfg.network,
                exposure=DispatcherExposure(dispatcher),
            )
            try:
                heartbeat.prepare()
            except (OSError, HeartbeatInUse) as exc:
                if metrics_server is not None:
                    metrics_server.close()
                if dashboard is not None:
                    dashboard.close()
                dispatcher.recorder.close()
                if isinstance(exc, HeartbeatInUse):
                    raise BotError(f"guard.heartbeat_path: {exc}") from None
                raise BotError(
                    f"guard.heartbeat_path {cfg.guard.heartbeat_path}: cannot write the "
                    f"heartbeat: {exc.strerror or exc}"
                ) from None
        status_task = None
        if status_stream is not None:
            from hip3.metrics.status import run_status

            status_task = loop.create_task(
                run_status(dispatcher, status_stream, last_error=lambda: startup.last_error),
                name="status",
            )
        keys = StopKeys(dispatcher, startup)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, keys.press, sig.name)
            for sig, cmd in (
                (signal.SIGUSR1, "hardstop"),
                (signal.SIGUSR2, "reset"),
                (signal.SIGHUP, "accept_params"),
            ):
                loop.add_signal_handler(
                    sig, dispatcher.put, OperatorCommand(cmd, f"signal {sig.name}")
                )
        stopper = None
        if duration_s is not None:
            stopper = stop_after(dispatcher, startup, duration_s)
        watcher = loop.create_task(startup.watch(dispatcher), name="startup-deadline")
        beating = None
        if heartbeat is not None:
            from hip3.app.heartbeat import HeartbeatTask

            beating = HeartbeatTask(heartbeat, cfg.guard.heartbeat_interval_s)
            beating.start()
        # Everything built so far (modules, config, machines, caches) lives for the whole run:
        # move it out of the collector's reach, so a full collection walks only what the run
        # itself allocates. Measured: a full collection on the order path took 23 ms before.
        gc.collect()
        gc.freeze()
        try:
            await dispatcher.run()
        finally:
            if stopper is not None:
                stopper.cancel()
            watcher.cancel()
            if beating is not None:
                await beating.stop()
            if status_task is not None:
                status_task.cancel()
            if metrics_server is not None:
                metrics_server.close()
            if dashboard is not None:
                dashboard.close()
            if install_signals:
                for sig in handled:
                    loop.remove_signal_handler(sig)
                if keys.forced:
                    # the exit is already forced and quick (no final check): further Ctrl-Cs
                    # must not cut it short before the summary and the exit code are out
                    for sig in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(sig, signal.SIG_IGN)
            await transport.aclose()
            dispatcher.recorder.close()
            if recorder is not None:
                recorder.close()
            gc.unfreeze()
        exchange, error = None, None
        if keys.forced:
            error = "not checked: forced exit"
        elif startup.never_ready is not None:
            error = "not checked: the run never became ready"
        elif user is not None:
            try:
                exchange = await exchange_state(url, user, list(dispatcher.dexes))
            except Exception as exc:  # the summary still prints, saying why it could not check
                error = f"{type(exc).__name__}: {exc}"
        summary = build_summary(dispatcher, exchange=exchange, check_error=error)
        summary["never_ready"] = startup.never_ready
        summary["interrupted"] = keys.forced
        if recorder is not None:
            summary["recording"] = {
                "path": str(recorder.path),
                "frames": recorder.frames_written,
                "error": recorder.error,
            }
        if heartbeat is not None:
            # the run ended on its own: the guard need not wait for the beat to go stale
            heartbeat.beat("stopped")
        return summary
    finally:
        if recorder is not None:  # every way out, also a start-up that failed after opening it
            recorder.close()
        if sim is not None:
            with contextlib.suppress(Exception):
                await sim.stop()


async def _expand_whole_dexes(cfg: Config, url: str) -> Config:
    """Replace every "dex:*" entry by the markets its dex lists now (discovery on its own
    connection, before anything subscribes)."""
    import msgspec

    from hip3.app.discovery import fetch_metas
    from hip3.runtime.whole_dex import WholeDexError, expand_markets

    metas = await fetch_metas(url, list(cfg.dexes), timeout_s=cfg.websocket.connect_timeout_s * 2)
    try:
        markets = expand_markets(cfg.markets, metas)
    except WholeDexError as exc:
        raise BotError(str(exc)) from None
    log.info("whole dexes %s: %d markets after discovery", ", ".join(cfg.whole_dexes), len(markets))
    return msgspec.structs.replace(cfg, markets=markets)


def _with_user(cfg: Config, address: str) -> Config:
    import msgspec

    return msgspec.structs.replace(
        cfg, account=msgspec.structs.replace(cfg.account, user=address.lower())
    )
