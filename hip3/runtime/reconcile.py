"""One epoch's reconciliation: discovery, positions, open orders and recent fills.

After every (re)connect the bot asks the exchange what is true — markets (perpDexs + meta),
positions and open orders per dex (HIP-3 state is invisible without `dex`), recent fills —
and only then may READY-TRADING hold. Requests go out together over the same socket right
after the subscriptions, so the websocket's ordering makes the answers consistent with the
streams: a fill streamed before an answer is included in it, one streamed after is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.market.state import MarketSpec
from hip3.protocol.ids import perp_asset_id, split_coin


class DiscoveryError(RuntimeError):
    """A configured market does not exist on the exchange: trading must not start."""


@dataclass
class ReconcilePlan:
    """The requests of one epoch and which are still unanswered."""

    epoch: int
    outstanding: dict[str, dict] = field(default_factory=dict)  # part key -> info payload
    done: set[str] = field(default_factory=set)

    def complete(self) -> bool:
        return not self.outstanding


def plan_requests(epoch: int, *, user: str | None, dexes: list[str]) -> ReconcilePlan:
    plan = ReconcilePlan(epoch)
    plan.outstanding["perpDexs"] = {"type": "perpDexs"}
    for dex in dexes:
        plan.outstanding[f"meta:{dex}"] = {"type": "meta", "dex": dex}
    if user is not None:
        for dex in dexes:
            plan.outstanding[f"positions:{dex}"] = {
                "type": "clearinghouseState",
                "user": user,
                "dex": dex,
            }
            plan.outstanding[f"open_orders:{dex}"] = {
                "type": "openOrders",
                "user": user,
                "dex": dex,
            }
        plan.outstanding["fills"] = {"type": "userFills", "user": user}
        plan.outstanding["fees"] = {"type": "userFees", "user": user}
    return plan


def dexes_of(coins: list[str]) -> list[str]:
    return sorted({split_coin(c)[0] for c in coins})


def build_specs(perp_dexs: Any, metas: dict[str, Any], wanted: list[str]) -> dict[str, MarketSpec]:
    """Asset ids and precision for every asset of the traded dexes; fails on a missing market."""
    if not isinstance(perp_dexs, list) or not perp_dexs or perp_dexs[0] is not None:
        raise DiscoveryError(
            f"perpDexs response is not a list starting with null: {str(perp_dexs)[:120]}"
        )
    dex_index: dict[str, int] = {"": 0}
    fee_scale: dict[str, Decimal] = {"": Decimal(1)}
    for i, d in enumerate(perp_dexs[1:], start=1):
        if isinstance(d, dict) and isinstance(d.get("name"), str):
            dex_index[d["name"]] = i
            fee_scale[d["name"]] = Decimal(str(d.get("deployerFeeScale", "1")))
    specs: dict[str, MarketSpec] = {}
    for dex, meta in metas.items():
        if dex not in dex_index:
            raise DiscoveryError(f"dex {dex!r} is not listed by perpDexs")
        universe = meta.get("universe") if isinstance(meta, dict) else None
        if not isinstance(universe, list):
            raise DiscoveryError(f"meta for dex {dex!r} has no universe")
        for idx, a in enumerate(universe):
            name = a["name"]
            specs[name] = MarketSpec(
                coin=name,
                dex=dex,
                asset=perp_asset_id(dex_index[dex], idx),
                sz_decimals=int(a["szDecimals"]),
                max_leverage=int(a.get("maxLeverage", 1)),
                margin_mode=str(a.get("marginMode", "")),
                growth_mode=a.get("growthMode") == "enabled",
                deployer_fee_scale=fee_scale[dex],
            )
    missing = [c for c in wanted if c not in specs]
    if missing:
        raise DiscoveryError(
            f"configured market(s) not found on the exchange: {', '.join(missing)}"
        )
    return specs


def positions_from_state(state: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """clearinghouseState -> coin -> (signed size, entry price)."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for ap in state.get("assetPositions", []) if isinstance(state, dict) else []:
        pos = ap.get("position", {})
        coin = pos.get("coin")
        if coin is None:
            continue
        entry = pos.get("entryPx")
        out[coin] = (
            Decimal(pos.get("szi", "0")),
            Decimal(entry) if entry is not None else Decimal(0),
        )
    return out
