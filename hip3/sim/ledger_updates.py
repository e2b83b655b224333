"""Non-funding ledger updates of each account: deposits and transfers, as
`userNonFundingLedgerUpdates` (info and feed) lists them: `{time, hash, delta: {type, ...}}`.

Delta types are the documented ones (https://hyperliquid.gitbook.io/hyperliquid-docs/
for-developers/api/info-endpoint/perpetuals): `deposit {usdc}` for money arriving from outside,
`accountClassTransfer {usdc, toPerp}` for usdClassTransfer. sendAsset is not in that list; the
simulator records it as `send {user, destination, sourceDex, destinationDex, token, amount,
fee}` for both sides (its own reading). Hashes are made up: there is no chain here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from hip3.sim.accounts import Account
from hip3.sim.events import LedgerUpdate


class LedgerUpdates:
    def __init__(self, *, clock_ms: Callable[[], int], emit: Callable[[object], None]) -> None:
        self._clock = clock_ms
        self._emit = emit
        self._made = 0

    def record(self, account: Account, delta: dict[str, Any]) -> None:
        if account.internal:
            return
        self._made += 1
        now = self._clock()
        material = f"hip3-sim-ledger:{account.address}:{self._made}:{now}".encode()
        update = {"time": now, "hash": "0x" + hashlib.sha256(material).hexdigest(), "delta": delta}
        account.ledger_updates.append(update)
        self._emit(LedgerUpdate(account.address, update))
