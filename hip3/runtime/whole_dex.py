"""Whole dexes in the configuration: `coin = "xyz:*"` becomes every market the dex lists.

The expansion needs the dex's meta, so it happens after discovery, never from a list kept in
the repo. A `[[markets]]` entry naming one of the dex's markets exactly beats the wildcard
(its own settings, its own place in the list); a market the meta lists as `isDelisted` is
left out (it keeps its slot in the meta, so every other asset id stays where it was: ids come
from the meta position, `100000 + dex_index * 10000 + index`, never from this list).

Facts: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals
(meta per dex, `isDelisted`) and .../for-developers/api/asset-ids; see docs/exchange/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hip3.config import MarketConfig


class WholeDexError(ValueError):
    """A whole-dex entry that cannot be expanded (the dex is unknown or lists nothing)."""


def listed_markets(meta: Any) -> list[tuple[str, bool]]:
    """(coin, delisted) for every asset of a meta answer, in meta order."""
    universe = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(universe, list):
        return []
    return [
        (a["name"], bool(a.get("isDelisted")))
        for a in universe
        if isinstance(a, dict) and isinstance(a.get("name"), str)
    ]


def expand_markets(
    markets: tuple[MarketConfig, ...], metas: Mapping[str, Any]
) -> tuple[MarketConfig, ...]:
    """The configured markets with every "dex:*" entry replaced by the dex's listed markets.
    `metas` holds the meta answer of each whole dex (a dex missing from it is not listed)."""
    exact = {m.coin for m in markets if not m.whole_dex}
    out: list[MarketConfig] = []
    seen: set[str] = set()
    for entry in markets:
        if not entry.whole_dex:
            if entry.coin not in seen:
                out.append(entry)
                seen.add(entry.coin)
            continue
        dex = entry.dex
        if dex not in metas:
            raise WholeDexError(
                f"markets: coin = '{entry.coin}': dex {dex!r} is not listed by the exchange"
            )
        live = [c for c, delisted in listed_markets(metas[dex]) if not delisted]
        if not live:
            raise WholeDexError(
                f"markets: coin = '{entry.coin}': dex {dex!r} lists no market that trades"
            )
        for coin in live:
            if coin in exact or coin in seen:
                continue  # an exact entry overrides the wildcard, in its own place
            out.append(market_of(entry, coin))
            seen.add(coin)
    return tuple(out)


def market_of(entry: MarketConfig, coin: str) -> MarketConfig:
    """One market of a whole-dex entry, with every per-market setting the entry gives."""
    return MarketConfig(
        coin=coin,
        threshold_bps=entry.threshold_bps,
        priority_cap_bps=entry.priority_cap_bps,
        leverage=entry.leverage,
        min_liq_buffer_ratio=entry.min_liq_buffer_ratio,
    )


def new_listings(
    entries: tuple[MarketConfig, ...], metas: Mapping[str, Any], known: set[str]
) -> list[MarketConfig]:
    """The markets a rediscovery finds listed on the whole dexes (`entries`, each "dex:*")
    that the run does not know yet (`known`: every traded or retired market), each with its
    entry's settings, in meta order. A dex missing from `metas` adds nothing."""
    out: list[MarketConfig] = []
    for entry in entries:
        meta = metas.get(entry.dex)
        if meta is None:
            continue
        for coin, delisted in listed_markets(meta):
            if not delisted and coin not in known:
                out.append(market_of(entry, coin))
                known = known | {coin}
    return out
