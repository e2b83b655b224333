"""Structured logs, the transition listener, and the key never reaching a log."""

from __future__ import annotations

import io
import json
import logging
import random

import pytest
from e2e.support import bot_config, stop_when
from hip3.machines.connection import ConnectionMachine
from hip3.machines.hardstop import HardStopMachine

from hip3.app.bot import run_bot
from hip3.keys import SigningKey
from hip3.metrics.logs import REDACTED, TransitionLogger, configure_logging, redact
from hip3.sim.harness import SimHarness

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"


@pytest.fixture
def captured():
    """Route the root logger into a buffer for one test, then put pytest's handlers back."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    buf = io.StringIO()

    def install(**kw):
        configure_logging(stream=buf, **kw)
        return buf

    yield install
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def test_redact_hides_keys_and_keeps_addresses_and_cloids():
    cloid = "0x" + "ab" * 16
    text = f"key {KEY} and 0x{KEY.upper()} addr {ADDRESS} cloid {cloid} longer {KEY}ff"
    out = redact(text)
    assert out.startswith(f"key {REDACTED} and {REDACTED} addr")
    assert out.count(REDACTED) == 2
    assert ADDRESS in out and cloid in out
    assert f"{KEY}ff" in out  # 66 hex digits are not a key (a hash of something else)


@pytest.mark.parametrize("json_lines", [False, True])
def test_key_never_logged_through_any_route(captured, json_lines):
    buf = captured(level="DEBUG", json_lines=json_lines)
    log = logging.getLogger("hip3.test")
    log.info("loaded key %s for %s", KEY, ADDRESS)
    log.warning("in the message itself: 0x" + KEY)
    log.info("extra field", extra={"secret": KEY, "n": 3})
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        log.exception("failed")
    log.info("broken %d format", "not a number")
    text = buf.getvalue()
    assert KEY not in text.lower()
    assert text.count(REDACTED) >= 4
    assert ADDRESS in text
    lines = text.strip().splitlines() if json_lines else None
    if json_lines:
        records = [json.loads(line) for line in lines]
        assert records[2]["n"] == 3 and records[2]["secret"] == REDACTED
        assert "ValueError" in records[3]["exc"]
        assert records[0]["level"] == "INFO" and records[0]["logger"] == "hip3.test"
    else:
        assert "level=WARNING logger=hip3.test" in text
        assert "n=3" in text


def test_bad_level_is_named():
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD", stream=io.StringIO())


def test_transition_logger_logs_every_transition(captured):
    buf = captured(level="INFO", json_lines=True)
    tl = TransitionLogger()
    conn = ConnectionMachine(
        backoff_min_ms=10,
        backoff_max_ms=100,
        backoff_reset_after_ms=1000,
        ping_after_ms=1000,
        pong_timeout_ms=1000,
        handshake_timeout_ms=1000,
        rng=random.Random(1),
    )
    hs = HardStopMachine()
    assert tl.attach(conn) and tl.attach(hs)
    assert not tl.attach(conn)  # idempotent: a second attach would log twice
    conn.send("start", now_ms=0)
    conn.send("socket_open", now_ms=1)
    hs.send("trip", reason="operator: test", now_ms=2)
    tl.order_transition("0x" + "01" * 16, "sent", "filled", "filled_at_post")
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    moves = [(r["machine"], r["event"], r["src"], r["dst"]) for r in records]
    assert ("ConnectionMachine", "start", "disconnected", "connecting") in moves
    assert ("ConnectionMachine", "socket_open", "connecting", "subscribing") in moves
    assert ("HardStopMachine", "trip", "armed", "tripped") in moves
    assert ("OrderMachine", "filled_at_post", "sent", "filled") in moves
    assert tl.count == len(records)


async def test_real_run_logs_transitions_and_never_the_key(captured):
    """The bot at DEBUG against the simulator: the simulator's key is the bot's key here."""
    buf = captured(level="DEBUG")
    tl = TransitionLogger()

    def attach_and_stop_at_ready(d, sim) -> None:
        tl.attach_dispatcher(d)
        stop_when(lambda d: bool(d.ready_latency_ms))(d, sim)

    async with SimHarness(seed=11) as sim:
        await run_bot(
            bot_config(sim.ws_url),
            duration_s=15,
            install_signals=False,
            on_dispatcher=attach_and_stop_at_ready,
            key=SigningKey.from_hex(sim.account[1]),
        )
        secret = sim.account[1].removeprefix("0x").lower()
    text = buf.getvalue()
    assert secret not in text.lower()
    assert "machine=ConnectionMachine" in text
    assert "dst=connecting" in text
    assert tl.count >= 2
    # the state-machine library's own DEBUG chatter would cost more than the transitions
    assert "logger=statemachine" not in text
