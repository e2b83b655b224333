"""scheduleCancel, the dead man's switch: one deadline per account, all orders cancelled at it.

Rules: the deadline must be at least 5 s ahead, and at most 10 deadlines may fire per UTC day
(the exchange's docs). Setting a deadline also needs the account to have traded $1,000,000
(live answers; whether the volume is lifetime or rolling is not known, here it is the
account's lifetime volume as taker and maker). Clearing a deadline needs no volume.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from hip3.sim import rules, texts
from hip3.sim.accounts import Account
from hip3.sim.events import PendingEvents
from hip3.sim.ledger import OrderLedger
from hip3.sim.wire import ActionError

MIN_LEAD_MS = 5000
TRIGGERS_PER_DAY = 10
DAY_MS = 24 * 3600 * 1000
MIN_VOLUME_USD = Decimal(1_000_000)


class ScheduledCancels:
    def __init__(
        self,
        accounts: dict[str, Account],
        ledger: OrderLedger,
        *,
        emit: Callable[[object], None],
        min_volume_usd: Decimal = MIN_VOLUME_USD,
    ) -> None:
        if not min_volume_usd.is_finite() or min_volume_usd < 0:
            raise ValueError("the scheduleCancel volume requirement must be a finite amount >= 0")
        self.min_volume_usd = min_volume_usd
        self._accounts = accounts
        self._ledger = ledger
        self._emit = emit
        self.deadlines: dict[str, int] = {}  # user -> deadline (unix ms)

    def set(self, account: Account, deadline: int | None, now: int) -> None:
        """Arm (or with None, clear) `account`'s deadline."""
        if deadline is None:
            account.scheduled_cancel_ms = None
            self.deadlines.pop(account.address, None)
            return
        if account.volume < self.min_volume_usd:
            raise ActionError(
                texts.SCHEDULE_VOLUME.format(
                    required=rules.wire(self.min_volume_usd), traded=rules.wire(account.volume)
                )
            )
        if deadline < now + MIN_LEAD_MS:
            raise ActionError(texts.SCHEDULE_TOO_EARLY)
        if account.scheduled_cancel_triggers.get(now // DAY_MS, 0) >= TRIGGERS_PER_DAY:
            raise ActionError(texts.SCHEDULE_TOO_MANY)
        account.scheduled_cancel_ms = deadline
        self.deadlines[account.address] = deadline

    def tick(self, now_ms: int) -> None:
        """Fire every deadline that has passed."""
        due = [user for user, deadline in self.deadlines.items() if deadline <= now_ms]
        for user in due:
            self._fire(user, now_ms)

    def _fire(self, user: str, now: int) -> None:
        del self.deadlines[user]
        account = self._accounts[user]
        account.scheduled_cancel_ms = None
        day = now // DAY_MS
        account.scheduled_cancel_triggers[day] = account.scheduled_cancel_triggers.get(day, 0) + 1
        pending = PendingEvents()
        for order in list(account.open_orders.values()):
            self._ledger.cancel(account, order, "scheduledCancel", now, pending)
        pending.flush(self._emit)
