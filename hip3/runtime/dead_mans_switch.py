"""The dead man's switch: an exchange `scheduleCancel` renewed while the bot trades, so resting
orders die with the process — and the truth about whether the exchange holds one.

The exchange refuses the switch until the account has traded about $1M ("Cannot set scheduled
cancel time until enough volume traded. Required: $1000000. Traded: $<x>.", see
docs/exchange/actions.md#schedulecancel). On such an account renewing every `interval_s` only
repeats the refusal, so the switch is marked unavailable, asked again only every
`unavailable_retry_s` (the volume may grow), and shown as unavailable in the live view, the
metrics, the summary and the READY details; with `required = true` the bot does not trade
without it (READY-TRADING is false). `hip3 guard`, a watchdog process, can stand in for it.

States: `off` (not enabled, or observation), `pending` (no answer yet), `active` (the exchange
accepted the last renewal), `unavailable` (refused for volume), `refused` (refused otherwise;
renewed at the usual interval).
"""

from __future__ import annotations

import logging
from typing import Any

from hip3.protocol.actions import schedule_cancel_action
from hip3.runtime.common import ms
from hip3.runtime.post_owners import ScheduleCancelPost

log = logging.getLogger(__name__)

OFF, PENDING, ACTIVE, UNAVAILABLE, REFUSED = "off", "pending", "active", "unavailable", "refused"
STATES = (OFF, PENDING, ACTIVE, UNAVAILABLE, REFUSED)

# The start of the exchange's refusal for an account below the volume requirement.
VOLUME_GATE_TEXT = "Cannot set scheduled cancel time until enough volume traded"

UNAVAILABLE_MESSAGE = (
    "dead man's switch unavailable: the exchange refuses scheduleCancel until the account has "
    "traded enough volume ({detail}); resting orders are NOT cancelled if this process dies. "
    "Run `hip3 guard` beside the bot, or set dead_mans_switch.required = true to refuse "
    "trading without the switch"
)


class DeadMansSwitch:
    def __init__(
        self, *, cfg: Any, wire: Any, conn: Any, trading: bool, clock: Any, counters: Any
    ) -> None:
        self.cfg = cfg  # the [dead_mans_switch] section
        self.wire = wire
        self.conn = conn
        self.clock = clock
        self.counters = counters
        self.enabled = cfg.enabled and trading
        self.state = PENDING if self.enabled else OFF
        self.detail: str | None = None  # the exchange's last refusal text
        self._next_ms = 0

    @property
    def unavailable(self) -> bool:
        return self.state == UNAVAILABLE

    def blocks_trading(self) -> bool:
        """`required` and the exchange does not hold the switch: no entries."""
        return self.enabled and self.cfg.required and self.state != ACTIVE

    def message(self) -> str | None:
        """One line for an operator when the switch is not protecting the account."""
        if self.state == UNAVAILABLE:
            return UNAVAILABLE_MESSAGE.format(detail=self.detail)
        if self.state == REFUSED:
            return f"dead man's switch refused: {self.detail}"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "required": self.enabled and self.cfg.required,
            "detail": self.message(),
        }

    def tick(self, now: int) -> None:
        if not self.enabled or self.conn.state != "live" or now < self._next_ms:
            return
        retry_s = self.cfg.unavailable_retry_s if self.unavailable else self.cfg.interval_s
        self._next_ms = now + ms(retry_s)
        deadline = self.clock.wall_ms() + ms(self.cfg.lead_s)
        self.wire.post_action(
            schedule_cancel_action(deadline),
            kind="schedule_cancel",
            owner=ScheduleCancelPost(accepted=self._accepted, refused=self._refused),
        )

    def _accepted(self) -> None:
        if self.state in (UNAVAILABLE, REFUSED):
            log.warning(
                "dead man's switch accepted by the exchange again: resting orders are protected"
            )
        elif self.state == PENDING:
            log.info("dead man's switch set at the exchange")
        self.state, self.detail = ACTIVE, None

    def _refused(self, err: str) -> None:
        self.counters["dms_refused"] += 1
        first = self.state not in (UNAVAILABLE, REFUSED) or self.detail is None
        self.detail = err
        if err.startswith(VOLUME_GATE_TEXT):
            self.counters["dms_unavailable"] += 1
            if self.state != UNAVAILABLE:
                self.state = UNAVAILABLE
                # renew rarely from now on: the fast loop would only repeat the refusal
                self._next_ms = self.clock.now_ms() + ms(self.cfg.unavailable_retry_s)
                log.error(self.message())
            return
        self.state = REFUSED
        if first:
            log.warning("dead man's switch refused: %s", err)
