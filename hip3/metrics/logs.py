"""Structured logs: key=value text or JSON lines, machine transitions, and key redaction.

`configure_logging` installs one handler on the root logger. Every line carries the time, the
level, the logger, the message and any `extra={...}` fields; as JSON each line is one object.
Whatever reaches the handler passes `redact` last — the formatted line, tracebacks included —
so a private key that slipped into a message, an argument or an exception never reaches a
terminal or a file. "Looks like a key" means 64 hex digits standing alone (with or without
0x): addresses (40) and cloids (32) stay readable.

`TransitionLogger` is a python-statemachine listener (see docs/statemachine.md#listeners).
Attach it with
`machine.add_listener(logger)` or `listeners=[logger]` and each taken transition becomes one
log line. Its only convention-named method is `after_transition`, so it can never act as a
guard by accident. Attaching costs about as much as creating a machine, so per-order machines
should report through `OrderRegistry.on_transition` instead (`order_transition` matches it).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

# 32 bytes of hex, not part of a longer hex run: a private key (or a signature half).
_KEY_LIKE = re.compile(r"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{64}(?![0-9A-Za-z])")
REDACTED = "<redacted-32-byte-hex>"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


_NOISY_LIBRARIES = ("statemachine", "websockets")


def redact(text: str) -> str:
    """`text` with every 32-byte hex run replaced."""
    return _KEY_LIKE.sub(REDACTED, text)


class RedactFilter(logging.Filter):
    """Rewrites a record's message and extras so other handlers see no key either."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string still gets logged, saying so
            message = f"{record.msg!r} (unformattable arguments: {type(exc).__name__})"
        record.msg = redact(message)
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _kv_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=INFO logger=hip3.x msg="..." key=value ...`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={_timestamp(record)}",
            f"level={record.levelname}",
            f"logger={record.name}",
            f"msg={_kv_value(record.getMessage())}",
        ]
        parts += [f"{k}={_kv_value(v)}" for k, v in _extras(record).items()]
        if record.exc_info:
            parts.append(f"exc={_kv_value(self.formatException(record.exc_info))}")
        return redact(" ".join(parts))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras become top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in _extras(record).items():
            obj.setdefault(k, v)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(obj, default=str, separators=(",", ":")))


def configure_logging(
    level: str | int = "INFO", *, json_lines: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one redacting, structured handler."""
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
        level = numeric
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Per-frame and per-transition DEBUG lines from these libraries would cost more than the
    # work they describe; hip3's own DEBUG stays available.
    for noisy in _NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    return handler


def _machine_key(machine: Any) -> str:
    """What tells two machines of a kind apart: an order's cloid, a flatten's market, ..."""
    for attr in ("cloid", "market", "epoch"):
        value = getattr(machine, attr, None)
        if value is not None:
            return f"{attr}={value}"
    return ""


class TransitionLogger:
    """A listener that logs every taken transition of the machines it is attached to."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.log = logger or logging.getLogger("hip3.machines")
        self.level = level
        self.count = 0

    def after_transition(self, machine: Any, event: Any, source: Any, target: Any) -> None:
        self.count += 1
        # internal no-ops (ticks, acks recorded in place) would drown the real changes
        level = self.level if source.id != target.id else logging.DEBUG
        if not self.log.isEnabledFor(level):
            return
        name = type(machine).__name__
        key = _machine_key(machine)
        self.log.log(
            level,
            "%s%s %s: %s -> %s",
            name,
            f"[{key}]" if key else "",
            event,
            source.id,
            target.id,
            extra={
                "machine": name,
                "machine_key": key,
                "event": str(event),
                "src": source.id,
                "dst": target.id,
            },
        )

    def order_transition(self, cloid: str, source: str, target: str, event: str) -> None:
        """The `OrderRegistry.on_transition` form, for order machines (no listener needed)."""
        self.count += 1
        if self.log.isEnabledFor(self.level):
            self.log.log(
                self.level,
                "OrderMachine[cloid=%s] %s: %s -> %s",
                cloid,
                event,
                source,
                target,
                extra={
                    "machine": "OrderMachine",
                    "machine_key": f"cloid={cloid}",
                    "event": event,
                    "src": source,
                    "dst": target,
                },
            )

    def attach(self, machine: Any) -> bool:
        """Add this listener to `machine` unless it is already there; True if added."""
        if machine is None or self in getattr(machine, "active_listeners", ()):
            return False
        machine.add_listener(self)
        return True

    def attach_dispatcher(self, dispatcher: Any) -> int:
        """Attach to the dispatcher's connection, HardStop, readiness and flatten machines.

        Readiness (per epoch) and flatten (per market) machines appear later: call this again
        when an epoch begins or a flatten machine is made; it is idempotent. Returns how many
        machines were newly attached.
        """
        added = 0
        for m in (
            dispatcher.conn,
            dispatcher.hardstop,
            dispatcher.readiness,
            *list(dispatcher.flatten.values()),
        ):
            added += self.attach(m)
        return added
