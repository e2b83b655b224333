"""Subscription requests: validation and the normalised form the exchange echoes back.

The exchange answers a subscribe with the subscription as *it* understands it: optional
fields filled with their defaults, unknown fields dropped, addresses lower-cased. The
normalised form is also the identity of a subscription on a connection
(`Already subscribed: <json>`).

What follows the ack (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/
websocket/subscriptions): a snapshot tagged `isSnapshot: true` for the time series userFills,
userFundings and userNonFundingLedgerUpdates; the current state for the state feeds (allMids,
l2Book, bbo, activeAssetCtx, clearinghouseState, openOrders, activeAssetData, webData3);
nothing for orderUpdates, userEvents, trades, notification and candle (the docs are silent on
candle; the simulator sends the current candle only after a trade).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from hip3.sim.candles import INTERVALS

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_N_SIG_FIGS = (2, 3, 4, 5)
_MANTISSAS = (1, 2, 5)

COIN_FEEDS = ("l2Book", "bbo", "trades", "activeAssetCtx")
USER_FEEDS = (
    "orderUpdates",
    "userFills",
    "userEvents",
    "userFundings",
    "userNonFundingLedgerUpdates",
    "notification",
    "webData3",
)
# State of one user on one dex (`dex` optional, "" = the first perp dex) or one coin.
USER_DEX_FEEDS = ("clearinghouseState", "openOrders")
USER_COIN_FEEDS = ("activeAssetData",)
SUPPORTED_TYPES = (
    "allMids",
    "candle",
    *COIN_FEEDS,
    *USER_FEEDS,
    *USER_DEX_FEEDS,
    *USER_COIN_FEEDS,
)

# Types the exchange no longer serves and refuses as an unparseable request, echoing the frame
# (webData2 since 2026-08; its info request still answers).
REFUSED_TYPES = frozenset({"webData2"})

# userEvents is the one feed whose channel differs from its type (the docs' subscription list).
CHANNEL_OF = {t: t for t in SUPPORTED_TYPES} | {"userEvents": "user"}


class InvalidSubscription(ValueError):
    """A well-formed subscription naming something this exchange does not serve (an unknown
    coin, dex or address, an unsupported aggregation); str() is the error-channel text."""


class UnparsableSubscription(ValueError):
    """A subscription of the wrong shape: not an object, an unknown `type`, a required field
    missing or of the wrong JSON type, an interval that is not one of the exchange's.

    The exchange parses the whole frame into its request type before it looks at any value, so
    such a frame is answered like any frame it cannot parse: the parse-error prefix followed by
    the frame exactly as sent (the official order book server does this, see
    https://github.com/hyperliquid-dex/order_book_server, `server/src/servers/websocket_server.rs`).
    """


@dataclass(frozen=True, slots=True)
class Subscription:
    type: str
    # coin for coin feeds, lower-cased address for user feeds, dex name for allMids
    target: str
    echo: dict[str, Any]
    n_sig_figs: int | None = None
    mantissa: int | None = None
    fast: bool = False
    # The second half of the subscription's identity: dex (clearinghouseState, openOrders),
    # coin (activeAssetData) or interval (candle); "" where there is none.
    detail: str = ""

    @property
    def key(self) -> str:
        """Canonical JSON of the echo: identical for equal subscriptions."""
        return encode_compact(self.echo)


def encode_compact(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def parse_subscription(
    raw: Any,
    *,
    is_coin: Callable[[str], bool],
    dexes: Collection[str],
) -> Subscription:
    """Validate a `subscription` object.

    Raises UnparsableSubscription when its shape is wrong and InvalidSubscription (with the
    exchange's text) when a value names something not served.
    """
    if not isinstance(raw, dict) or raw.get("type") not in SUPPORTED_TYPES:
        raise UnparsableSubscription(raw)
    _check_shape(raw)
    kind = raw["type"]
    problem = _invalid(raw)
    if kind == "allMids":
        dex = raw.get("dex", None)
        if dex is None:
            return Subscription(kind, "", {"type": kind})
        if not isinstance(dex, str) or dex not in dexes:
            raise problem
        return Subscription(kind, dex, {"type": kind, "dex": dex})
    if kind in COIN_FEEDS:
        coin = raw.get("coin")
        if not isinstance(coin, str) or not is_coin(coin):
            raise problem
        if kind != "l2Book":
            return Subscription(kind, coin, {"type": kind, "coin": coin})
        return _l2_book(raw, coin, problem)
    if kind == "candle":
        coin, interval = raw.get("coin"), raw.get("interval")
        if not is_coin(coin):
            raise problem
        return Subscription(kind, coin, {"type": kind, "coin": coin, "interval": interval},
                            detail=interval)  # fmt: skip
    if kind in USER_DEX_FEEDS or kind in USER_COIN_FEEDS:
        user = _user(raw, problem)
        if kind in USER_COIN_FEEDS:
            coin = raw.get("coin")
            if not isinstance(coin, str) or not is_coin(coin):
                raise problem
            return Subscription(kind, user, {"type": kind, "user": user, "coin": coin}, detail=coin)
        dex = raw.get("dex")
        if dex is None:
            dex = ""
        if not isinstance(dex, str) or dex not in dexes:
            raise problem
        return Subscription(kind, user, {"type": kind, "user": user, "dex": dex}, detail=dex)
    if kind in USER_FEEDS:
        user = _user(raw, problem)
        echo: dict[str, Any] = {"type": kind, "user": user}
        if kind == "userFills" and "aggregateByTime" in raw:
            # Aggregated fills are not simulated; say so rather than send unaggregated ones.
            if raw["aggregateByTime"] not in (False, None):
                raise problem
            echo["aggregateByTime"] = False
        return Subscription(kind, user, echo)
    raise problem


def _l2_book(raw: dict[str, Any], coin: str, problem: InvalidSubscription) -> Subscription:
    n_sig_figs = raw.get("nSigFigs")
    mantissa = raw.get("mantissa")
    fast = raw.get("fast", False)
    if n_sig_figs is not None and (_is_bool(n_sig_figs) or n_sig_figs not in _N_SIG_FIGS):
        raise problem
    if mantissa is not None and (
        _is_bool(mantissa) or mantissa not in _MANTISSAS or n_sig_figs != 5
    ):
        raise problem
    if fast is None:
        fast = False
    if not isinstance(fast, bool):
        raise problem
    echo: dict[str, Any] = {
        "type": "l2Book",
        "coin": coin,
        "nSigFigs": n_sig_figs,
        "mantissa": mantissa,
    }
    if fast:
        echo["fast"] = True
    return Subscription("l2Book", coin, echo, n_sig_figs, mantissa, fast)


def _user(raw: dict[str, Any], problem: InvalidSubscription) -> str:
    user = raw.get("user")
    if not isinstance(user, str) or not _ADDRESS.match(user):
        raise problem
    return user.lower()


# The JSON type each field must have when present; None (null) stands for "absent" where the
# field is optional. Required fields per type are below.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "coin": (str,),
    "user": (str,),
    "dex": (str, type(None)),
    "interval": (str,),
    "nSigFigs": (int, type(None)),
    "mantissa": (int, type(None)),
    "fast": (bool, type(None)),
    "aggregateByTime": (bool, type(None)),
}


def _required(kind: str) -> tuple[str, ...]:
    if kind in COIN_FEEDS:
        return ("coin",)
    if kind == "candle":
        return ("coin", "interval")
    if kind in USER_COIN_FEEDS:
        return ("user", "coin")
    if kind in USER_FEEDS or kind in USER_DEX_FEEDS:
        return ("user",)
    return ()


def _check_shape(raw: dict[str, Any]) -> None:
    kind = raw["type"]
    for name in _required(kind):
        if name not in raw:
            raise UnparsableSubscription(raw)
    for name, types in _FIELD_TYPES.items():
        if name not in raw:
            continue
        value = raw[name]
        # JSON has no separate boolean for integers: true is not a number of levels.
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise UnparsableSubscription(raw)
    if kind == "candle" and raw["interval"] not in INTERVALS:
        raise UnparsableSubscription(raw)  # the interval is an enumeration on the exchange


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _show(raw: Any) -> str:
    try:
        return encode_compact(raw)
    except (TypeError, msgspec.EncodeError):
        return repr(raw)


def _invalid(raw: Any) -> InvalidSubscription:
    return InvalidSubscription(f"Invalid subscription {_show(raw)}")
