"""Push-state feeds of one user: clearinghouseState, openOrders (per dex), activeAssetData
(per coin) and webData3.

Each pushes its whole state: once right after the subscribe ack, then whenever it changed.
A state is read again after any event of its user (order update, fill, funding, ledger or
margin change) and after any book or context change (marks move positions' values and
margins); it is sent only if it differs from the last one sent, ignoring the timestamp
fields (`time`, `serverTime`), which alone would make every read new. The live server also
pushes these without any user activity (its docs and the TypeScript SDK's tests show it);
the simulator pushes on change only, which a client must handle either way.

Shapes: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/
subscriptions. openOrders carries the frontend form of each order (`frontendOpenOrders`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from hip3.sim import user_views

STATE_TYPES = frozenset({"clearinghouseState", "openOrders", "activeAssetData", "webData3"})
_TIME_FIELDS = {"clearinghouseState": "time", "webData3": "serverTime"}

StateKey = tuple[str, str, str]  # (type, user, dex or coin or "")
_encode = msgspec.json.encode


class StateFeeds:
    def __init__(self) -> None:
        self._keys_by_user: dict[str, set[StateKey]] = {}
        self._last: dict[StateKey, bytes] = {}
        self._dirty: set[str] = set()
        self._all_dirty = False

    def __bool__(self) -> bool:
        return bool(self._keys_by_user)

    def add(self, key: StateKey) -> None:
        self._keys_by_user.setdefault(key[1], set()).add(key)

    def remove(self, key: StateKey) -> None:
        keys = self._keys_by_user.get(key[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_by_user[key[1]]
        self._last.pop(key, None)

    def mark_user(self, user: str) -> bool:
        """Note that `user`'s state may have changed; True if someone follows it."""
        if user in self._keys_by_user:
            self._dirty.add(user)
            return True
        return False

    def mark_all(self) -> bool:
        if self._keys_by_user:
            self._all_dirty = True
            return True
        return False

    def frame(self, exchange: Any, key: StateKey) -> bytes:
        """The state's frame now; remembered as the last one sent."""
        data = state_of(exchange, key)
        self._last[key] = _fingerprint(key[0], data)
        return _encode({"channel": key[0], "data": data})

    def changed(self, exchange: Any) -> Iterator[tuple[StateKey, bytes]]:
        """(key, frame) of every followed state that differs from the last one sent."""
        if self._all_dirty:
            users = list(self._keys_by_user)
        else:
            users = [u for u in self._dirty if u in self._keys_by_user]
        self._all_dirty = False
        self._dirty = set()
        for user in users:
            for key in tuple(self._keys_by_user.get(user, ())):
                data = state_of(exchange, key)
                fingerprint = _fingerprint(key[0], data)
                if self._last.get(key) == fingerprint:
                    continue
                self._last[key] = fingerprint
                yield key, _encode({"channel": key[0], "data": data})


def state_of(exchange: Any, key: StateKey) -> dict[str, Any]:
    kind, user, detail = key
    if kind == "clearinghouseState":
        state = exchange.info({"type": "clearinghouseState", "user": user, "dex": detail})
        return {"dex": detail, "user": user, "clearinghouseState": state}
    if kind == "openOrders":
        orders = exchange.info({"type": "frontendOpenOrders", "user": user, "dex": detail})
        return {"dex": detail, "user": user, "orders": orders}
    if kind == "activeAssetData":
        return user_views.active_asset_data(exchange, user, exchange.universe.asset(detail))
    if kind == "webData3":
        return user_views.web_data3(exchange, user)
    raise ValueError(f"{kind!r} is not a state feed")


def _fingerprint(kind: str, data: dict[str, Any]) -> bytes:
    field = _TIME_FIELDS.get(kind)
    if field is None:
        return _encode(data)
    if kind == "clearinghouseState":
        inner = dict(data["clearinghouseState"])
        inner.pop(field, None)
        return _encode({**data, "clearinghouseState": inner})
    user_state = dict(data["userState"])
    user_state.pop(field, None)
    return _encode({**data, "userState": user_state})
