"""Asset ids, coin names and client order ids (docs/exchange/hip3.md#asset-ids,
docs/exchange/signing.md#cloids)."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable

__all__ = [
    "HIP3_ASSET_BASE",
    "OUTCOME_ASSET_BASE",
    "SPOT_ASSET_BASE",
    "CloidSource",
    "coin_name",
    "is_cloid",
    "is_perp_asset",
    "perp_asset_id",
    "split_coin",
    "spot_asset_id",
]

SPOT_ASSET_BASE = 10_000
HIP3_ASSET_BASE = 100_000
_HIP3_DEX_STRIDE = 10_000
OUTCOME_ASSET_BASE = 100_000_000
_MAX_DEX_INDEX = (OUTCOME_ASSET_BASE - HIP3_ASSET_BASE) // _HIP3_DEX_STRIDE - 1
_CLOID = re.compile(r"0x[0-9a-f]{32}")


def _check_index(value: int, name: str, upper: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < upper:
        raise ValueError(f"{name} must be in [0, {upper}), got {value}")


def perp_asset_id(dex_index: int, index_in_meta: int) -> int:
    """Order asset id of a perp: the plain meta index on the validator dex (dex_index 0),
    100000 + dex_index * 10000 + index on a HIP-3 dex (dex_index = position in perpDexs)."""
    _check_index(dex_index, "dex_index", _MAX_DEX_INDEX + 1)
    _check_index(index_in_meta, "index_in_meta", _HIP3_DEX_STRIDE)
    if dex_index == 0:
        return index_in_meta
    return HIP3_ASSET_BASE + dex_index * _HIP3_DEX_STRIDE + index_in_meta


def spot_asset_id(spot_index: int) -> int:
    """Order asset id of a spot pair: 10000 + spotMeta universe index."""
    _check_index(spot_index, "spot_index", HIP3_ASSET_BASE - SPOT_ASSET_BASE)
    return SPOT_ASSET_BASE + spot_index


def is_perp_asset(asset: int) -> bool:
    """True for validator perps and HIP-3 perps; false for spot and outcome assets.

    (The Python SDK's `asset >= 10000` spot test misclassifies HIP-3 assets; see
    docs/exchange/rules.md#prices.)"""
    if isinstance(asset, bool) or not isinstance(asset, int) or asset < 0:
        raise ValueError(f"asset must be an int >= 0, got {asset!r}")
    return asset < SPOT_ASSET_BASE or HIP3_ASSET_BASE <= asset < OUTCOME_ASSET_BASE


def coin_name(dex: str, coin: str) -> str:
    """Wire coin name: "xyz", "NVDA" -> "xyz:NVDA"; the validator dex ("") keeps the bare coin."""
    if not isinstance(dex, str) or ":" in dex:
        raise ValueError(f"dex must be a string without ':', got {dex!r}")
    if not isinstance(coin, str) or not coin or ":" in coin:
        raise ValueError(f"coin must be a non-empty string without ':', got {coin!r}")
    return f"{dex}:{coin}" if dex else coin


def split_coin(name: str) -> tuple[str, str]:
    """Inverse of coin_name: "xyz:NVDA" -> ("xyz", "NVDA"), "BTC" -> ("", "BTC")."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"coin name must be a non-empty string, got {name!r}")
    dex, sep, coin = name.partition(":")
    if not sep:
        return "", name
    if not dex or not coin or ":" in coin:
        raise ValueError(f"malformed coin name {name!r}; expected 'dex:COIN'")
    return dex, coin


def is_cloid(s: object) -> bool:
    """True for "0x" + 32 lowercase hex digits, the only cloid form this bot sends."""
    return isinstance(s, str) and _CLOID.fullmatch(s) is not None


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class CloidSource:
    """Client order ids that stay unique across restarts and across instances.

    Layout of the 128 bits, high to low:
      48 bits  wall-clock milliseconds when the id was made (good until year 10889)
      48 bits  random salt drawn once per instance
      32 bits  per-instance counter
    Within one instance the counter alone makes ids distinct (it wraps only after 2^32 ids,
    by which time the clock has moved on). A restart draws a fresh salt, so two processes
    colliding would need the same millisecond, the same 48-bit salt and the same counter.
    Ids also sort roughly by creation time, which helps when reading logs.
    """

    __slots__ = ("_clock_ms", "_counter", "_lock", "_salt")

    def __init__(
        self,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        salt: int | None = None,
    ) -> None:
        self._clock_ms = clock_ms
        self._salt = secrets.randbits(48) if salt is None else salt & ((1 << 48) - 1)
        self._counter = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            count = self._counter
            self._counter = (count + 1) & 0xFFFFFFFF
        millis = self._clock_ms() & ((1 << 48) - 1)
        value = (millis << 80) | (self._salt << 32) | count
        return f"0x{value:032x}"
