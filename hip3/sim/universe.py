"""Markets of the simulated exchange: perp dexes, their assets and asset ids.

Index 0 is the validator-operated perp dex (name ""), later indexes are HIP-3 builder dexes
whose coins carry the `dex:` prefix. Asset ids follow the exchange: meta index on dex 0,
`100000 + dex_index * 10000 + index_in_meta` on builder dexes
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/asset-ids).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from hip3.sim.collateral import TOKENS, USDC, Token

_DEX_NAME = re.compile(r"^[a-z]{2,4}$")
_ASSET_NAME = re.compile(r"^[A-Z0-9]{1,12}$")


class UniverseError(ValueError):
    """A market definition (scenario file or code) is inconsistent."""


@dataclass(frozen=True, slots=True)
class Asset:
    coin: str  # wire name: "BTC" on the validator dex, "xyz:AAA" on a builder dex
    dex: str
    dex_index: int
    index_in_meta: int
    asset_id: int
    sz_decimals: int
    max_leverage: int
    start_px: Decimal
    margin_mode: str | None = None  # None = normal (cross allowed); "strictIsolated" | "noCross"
    growth_mode: bool = False
    delisted: bool = False  # listed as isDelisted from the start; keeps its index and id
    # declared by the scenario but listed only by a later `list` event: until then no meta,
    # subscription or action knows it (it sits after every listed asset of its dex, where a
    # new listing lands, so listing it moves no other asset's index or id)
    unlisted: bool = False

    @property
    def is_hip3(self) -> bool:
        return self.dex_index > 0

    @property
    def isolated_only(self) -> bool:
        return self.margin_mode in ("strictIsolated", "noCross")


@dataclass(frozen=True, slots=True)
class Dex:
    name: str
    index: int
    full_name: str
    deployer: str
    fee_scale: Decimal  # deployerFeeScale; unused on the validator dex
    assets: tuple[Asset, ...] = field(default_factory=tuple)
    total_oi_cap: Decimal = Decimal("100000000")
    oi_sz_cap_per_perp: Decimal = Decimal("1000000000")
    max_transfer_ntl: Decimal = Decimal("50000000")
    collateral: Token = USDC


def asset_id_for(dex_index: int, index_in_meta: int) -> int:
    if dex_index == 0:
        return index_in_meta
    return 100000 + dex_index * 10000 + index_in_meta


class Universe:
    """Set of dexes with O(1) lookup by coin and by asset id. Fixed but for one thing: a
    market declared `unlisted` is listed once, mid-run (`list_market`); until then only the
    simulator's own machinery (books, oracle, makers) sees it, never a client."""

    def __init__(self, dexes: Iterable[Dex]) -> None:
        self.dexes: tuple[Dex, ...] = tuple(dexes)
        self.unlisted: set[str] = set()  # declared markets not listed yet
        if not self.dexes or self.dexes[0].name != "":
            raise UniverseError('the first perp dex must be the validator dex named ""')
        self.by_coin: dict[str, Asset] = {}
        self.by_asset_id: dict[int, Asset] = {}
        self.by_dex_name: dict[str, Dex] = {}
        for position, dex in enumerate(self.dexes):
            if dex.index != position:
                raise UniverseError(f"dex {dex.name!r} has index {dex.index}, expected {position}")
            if dex.name in self.by_dex_name:
                raise UniverseError(f"duplicate dex name {dex.name!r}")
            self.by_dex_name[dex.name] = dex
            for asset in dex.assets:
                if asset.coin in self.by_coin:
                    raise UniverseError(f"duplicate coin {asset.coin!r}")
                self.by_coin[asset.coin] = asset
                self.by_asset_id[asset.asset_id] = asset
                if asset.unlisted:
                    self.unlisted.add(asset.coin)

    def is_listed(self, coin: str) -> bool:
        """A market clients may see (declared, and not waiting for its listing)."""
        return coin in self.by_coin and coin not in self.unlisted

    def listed_asset(self, asset_id: int) -> Asset | None:
        """The listed asset with this id; None for an unknown or not yet listed one."""
        asset = self.by_asset_id.get(asset_id)
        return None if asset is None or asset.coin in self.unlisted else asset

    def listed_assets(self, dex: str) -> tuple[Asset, ...]:
        """The dex's assets as its meta lists them (those not listed yet left off the end)."""
        assets = self.dex(dex).assets
        if not self.unlisted:
            return assets
        return tuple(a for a in assets if a.coin not in self.unlisted)

    def list_market(self, coin: str) -> Asset:
        """List a declared market: from now on it is in its dex's meta, at the index it was
        declared with (after every market listed before it)."""
        asset = self.asset(coin)
        if coin not in self.unlisted:
            raise UniverseError(f"{coin} is already listed")
        self.unlisted.discard(coin)
        return asset

    @property
    def assets(self) -> list[Asset]:
        return [asset for dex in self.dexes for asset in dex.assets]

    def dex(self, name: str) -> Dex:
        try:
            return self.by_dex_name[name]
        except KeyError:
            raise UniverseError(f"unknown perp dex {name!r}") from None

    def asset(self, coin: str) -> Asset:
        try:
            return self.by_coin[coin]
        except KeyError:
            raise UniverseError(f"unknown coin {coin!r}") from None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Universe:
        """Build from plain data (a scenario file's `[[dexes]]` tables).

        spec = {"dexes": [{"name": "", "assets": [{"name": "BTC", "sz_decimals": 5,
        "max_leverage": 40, "start_px": "60000"}]}, {"name": "xyz", "full_name": "...",
        "deployer_fee_scale": "1.0", "collateral": "USDT", "assets": [{"name": "AAA", ...,
        "margin_mode": "strictIsolated", "growth_mode": true, "delisted": false}]}]}. Builder
        asset names may be given with or without the "xyz:" prefix.
        """
        raw_dexes = spec.get("dexes")
        if not isinstance(raw_dexes, list) or not raw_dexes:
            raise UniverseError("markets spec needs a non-empty list 'dexes'")
        dexes = [_dex_from_spec(index, raw) for index, raw in enumerate(raw_dexes)]
        return cls(dexes)

    @classmethod
    def default(cls) -> Universe:
        return cls.from_spec(DEFAULT_SPEC)


def _dex_from_spec(index: int, raw: Any) -> Dex:
    if not isinstance(raw, Mapping):
        raise UniverseError(f"dexes[{index}] must be a table")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise UniverseError(f"dexes[{index}].name must be a string")
    if index == 0 and name != "":
        raise UniverseError('dexes[0] is the validator dex and must have name ""')
    if index > 0 and not _DEX_NAME.match(name):
        raise UniverseError(f"dex name {name!r} must be 2-4 lowercase letters")
    raw_assets = raw.get("assets")
    if not isinstance(raw_assets, list) or not raw_assets:
        raise UniverseError(f"dex {name!r} needs a non-empty list 'assets'")
    assets = tuple(
        _asset_from_spec(name, index, position, entry) for position, entry in enumerate(raw_assets)
    )
    default_deployer = "0x" + f"{0xD0 + index:040x}"
    collateral = raw.get("collateral", "USDC")
    if collateral not in TOKENS or (index == 0 and collateral != "USDC"):
        allowed = "USDC" if index == 0 else ", ".join(TOKENS)
        raise UniverseError(f"dex {name!r} collateral {collateral!r} must be one of {allowed}")
    fee_scale = _decimal(raw.get("deployer_fee_scale", "1.0"), f"dex {name!r} deployer_fee_scale")
    if not 0 <= fee_scale < 10:
        raise UniverseError(f"dex {name!r} deployer_fee_scale must be in [0, 10)")
    if fee_scale > 3 and not all(asset.growth_mode for asset in assets):
        raise UniverseError(
            f"dex {name!r} deployer_fee_scale above 3 needs growth_mode on every asset"
        )
    listed_after = [
        a.coin
        for i, a in enumerate(assets)
        if not a.unlisted and any(b.unlisted for b in assets[:i])
    ]
    if listed_after:
        raise UniverseError(
            f"dex {name!r}: unlisted assets must come after every listed one (a listing is "
            f"appended to the meta), but {', '.join(listed_after)} follows one"
        )
    if len(assets) > 10000 and index > 0:
        raise UniverseError(f"dex {name!r} has more than 10000 assets: asset ids would overlap")
    return Dex(
        name=name,
        index=index,
        full_name=str(raw.get("full_name", name or "Hyperliquid")),
        deployer=str(raw.get("deployer", default_deployer)).lower(),
        fee_scale=fee_scale,
        assets=assets,
        collateral=TOKENS[collateral],
    )


def _asset_from_spec(dex: str, dex_index: int, position: int, raw: Any) -> Asset:
    where = f"dex {dex!r} assets[{position}]"
    if not isinstance(raw, Mapping):
        raise UniverseError(f"{where} must be a table")
    name = raw.get("name")
    if not isinstance(name, str):
        raise UniverseError(f"{where}.name must be a string")
    if dex and name.startswith(dex + ":"):
        name = name[len(dex) + 1 :]
    if not _ASSET_NAME.match(name):
        raise UniverseError(f"{where}.name {name!r} must be 1-12 upper-case letters or digits")
    sz_decimals = raw.get("sz_decimals")
    if not isinstance(sz_decimals, int) or not 0 <= sz_decimals <= 6:
        raise UniverseError(f"{where}.sz_decimals must be an integer in 0..6")
    max_leverage = raw.get("max_leverage", 10)
    if not isinstance(max_leverage, int) or not 1 <= max_leverage <= 100:
        raise UniverseError(f"{where}.max_leverage must be an integer in 1..100")
    start_px = _decimal(raw.get("start_px"), f"{where}.start_px")
    if start_px <= 0:
        raise UniverseError(f"{where}.start_px must be positive")
    margin_mode = raw.get("margin_mode", "strictIsolated" if dex_index > 0 else None)
    if margin_mode not in (None, "normal", "strictIsolated", "noCross"):
        raise UniverseError(f"{where}.margin_mode {margin_mode!r} is not a known margin mode")
    return Asset(
        coin=f"{dex}:{name}" if dex else name,
        dex=dex,
        dex_index=dex_index,
        index_in_meta=position,
        asset_id=asset_id_for(dex_index, position),
        sz_decimals=sz_decimals,
        max_leverage=max_leverage,
        start_px=start_px,
        margin_mode=None if margin_mode == "normal" else margin_mode,
        growth_mode=_flag(raw, "growth_mode", where),
        delisted=_flag(raw, "delisted", where),
        unlisted=_flag(raw, "unlisted", where),
    )


def _flag(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise UniverseError(f"{where}.{key} must be true or false")
    return value


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UniverseError(f"{what} must be a number or a decimal string")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise UniverseError(f"{what} {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise UniverseError(f"{what} must be finite")
    return result


DEFAULT_SPEC: dict[str, Any] = {
    "dexes": [
        {
            "name": "",
            "assets": [
                {"name": "BTC", "sz_decimals": 5, "max_leverage": 40, "start_px": "60000"},
                {"name": "ETH", "sz_decimals": 4, "max_leverage": 25, "start_px": "3000"},
            ],
        },
        {
            "name": "xyz",
            "full_name": "XYZ builder perps (simulated)",
            "deployer_fee_scale": "1.0",
            "assets": [
                {"name": "AAA", "sz_decimals": 2, "max_leverage": 10, "start_px": "25"},
                {"name": "BBB", "sz_decimals": 1, "max_leverage": 10, "start_px": "180"},
                {
                    "name": "CCC",
                    "sz_decimals": 0,
                    "max_leverage": 5,
                    "start_px": "4.2",
                    "growth_mode": True,
                },
                {"name": "DDD", "sz_decimals": 3, "max_leverage": 20, "start_px": "1500"},
            ],
        },
    ]
}
