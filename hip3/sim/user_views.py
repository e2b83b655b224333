"""Per-user views the info endpoint and the state feeds share: activeAssetData, webData3,
funding payments and ledger updates in a time range, and a coin's funding history.

Shapes follow the exchange's docs (https://hyperliquid.gitbook.io/hyperliquid-docs/
for-developers/api/info-endpoint/perpetuals and .../api/websocket/subscriptions).

activeAssetData: `availableToTrade` is the margin (USD) free on the coin's dex and
`maxTradeSzs` the size that margin buys at the mark and the coin's leverage, per side
[buy, sell]; a side that would reduce the position can also close it. The docs' example
has the two related that way (available * leverage / mark); the per-side reading is the
simulator's (the docs do not say which element is which side).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from hip3.sim import rules
from hip3.sim.accounts import STANDARD, ZERO, Account
from hip3.sim.universe import Asset

if TYPE_CHECKING:
    from hip3.sim.exchange import Exchange

MAX_PER_ANSWER = 500  # time-range answers carry at most 500 elements (docs: pagination)
ZERO_HASH = "0x" + "00" * 32  # funding payments have no transaction of their own


def leverage_wire(ex: Exchange, account: Account | None, asset: Asset) -> dict[str, Any]:
    leverage = ex.margin.leverage_of(account or Account(address=""), asset)
    if leverage.is_cross:
        return {"type": "cross", "value": leverage.value}
    raw_usd = ZERO
    position = account.positions.get(asset.coin) if account is not None else None
    if position is not None and position.szi:
        raw_usd = ex.margin.isolated_margin(account, position) - position.szi * ex.mark_px(
            asset.coin
        )
    return {"type": "isolated", "value": leverage.value, "rawUsd": _money(raw_usd)}


def active_asset_data(ex: Exchange, user: str, asset: Asset) -> dict[str, Any]:
    account = ex.accounts.get(user)
    mark = ex.mark_px(asset.coin)
    leverage = ex.margin.leverage_of(account or Account(address=""), asset)
    available = ZERO
    position = ZERO
    if account is not None:
        available = max(ZERO, ex.available_margin(account, asset.dex))
        position = account.position(asset.coin)
    opening = available * leverage.value / mark
    lot = Decimal(1).scaleb(-asset.sz_decimals)
    buy = opening + (-position if position < 0 else ZERO)
    sell = opening + (position if position > 0 else ZERO)
    return {
        "user": user,
        "coin": asset.coin,
        "leverage": leverage_wire(ex, account, asset),
        "maxTradeSzs": [_size(buy, lot), _size(sell, lot)],
        "availableToTrade": [_money(available), _money(available)],
        "markPx": rules.wire(mark),
    }


def web_data3(ex: Exchange, user: str) -> dict[str, Any]:
    """The `webData3` state: the user's agent and ledger total, and each dex's OI-capped coins.

    `agentAddress` is the user's unnamed agent (the one a frontend approves), if any;
    `cumLedger` is the sum of the user's deposits and transfers (ledger updates)."""
    now = ex.now_ms()
    agent_address = None
    agent_until = None
    for agent, (master, name, until) in ex.agents.items():
        if master == user and not name and (until is None or until > now):
            agent_address, agent_until = agent, until
    account = ex.accounts.get(user)
    cum_ledger = ZERO
    if account is not None:
        for update in account.ledger_updates:
            cum_ledger += Decimal(update["delta"].get("usdc", "0"))
    capped = getattr(ex, "oi_capped", set())
    return {
        "userState": {
            "agentAddress": agent_address,
            "agentValidUntil": agent_until,
            "serverTime": now,
            "cumLedger": _money(cum_ledger),
            "isVault": False,
            "user": user,
            "abstraction": account.abstraction if account is not None else STANDARD,
        },
        "perpDexStates": [
            {
                "totalVaultEquity": "0.0",
                "perpsAtOpenInterestCap": sorted(a.coin for a in dex.assets if a.coin in capped),
                "leadingVaults": [],
            }
            for dex in ex.universe.dexes
        ],
    }


def user_funding(account: Account | None, start: int, end: int | None) -> list[dict[str, Any]]:
    """info userFunding: the user's funding payments in [start, end], oldest first."""
    if account is None:
        return []
    return [
        {
            "time": payment["time"],
            "hash": ZERO_HASH,
            "delta": {
                "type": "funding",
                "coin": payment["coin"],
                "usdc": payment["usdc"],
                "szi": payment["szi"],
                "fundingRate": payment["fundingRate"],
                "nSamples": payment["nSamples"],
            },
        }
        for payment in _in_range(account.fundings, start, end)
    ]


def ledger_updates(account: Account | None, start: int, end: int | None) -> list[dict[str, Any]]:
    """info userNonFundingLedgerUpdates: deposits and transfers in [start, end]."""
    if account is None:
        return []
    return _in_range(account.ledger_updates, start, end)


def funding_history(ex: Exchange, coin: str, start: int, end: int | None) -> list[dict[str, Any]]:
    """info fundingHistory: the rate and premium of each hour paid in [start, end]."""
    found = []
    for time, rate, premium in ex.funding.history.get(coin, ()):
        if time < start:
            continue
        if end is not None and time > end:
            break
        found.append(
            {
                "coin": coin,
                "fundingRate": rules.wire(rate),
                "premium": rules.wire(premium),
                "time": time,
            }
        )
        if len(found) == MAX_PER_ANSWER:
            break
    return found


def _in_range(items: Iterable[dict[str, Any]], start: int, end: int | None) -> list[Any]:
    found = []
    for item in items:  # oldest first
        time = item["time"]
        if time < start:
            continue
        if end is not None and time > end:
            break
        found.append(item)
        if len(found) == MAX_PER_ANSWER:
            break
    return found


def _money(value: Decimal) -> str:
    return rules.wire(rules.usdc(value))


def _size(value: Decimal, lot: Decimal) -> str:
    return rules.wire(max(ZERO, value).quantize(lot, rounding=ROUND_DOWN))
