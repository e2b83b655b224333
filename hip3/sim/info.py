"""/info requests of the simulated exchange and the wire shapes they share with the feeds.

HIP-3 state is per dex: positions, orders and mids of a builder dex are returned only when
the request names that dex (default "" = the validator dex), as on the exchange.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hip3.sim import rules, triggers, user_views
from hip3.sim.book import Order
from hip3.sim.candles import INTERVALS
from hip3.sim.collateral import TOKENS
from hip3.sim.market import aggregate_book
from hip3.sim.order_wires import open_order_wire
from hip3.sim.universe import Asset

if TYPE_CHECKING:
    from hip3.sim.exchange import Exchange

_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_SIG_DIGITS = Decimal("1e-10")


class InfoError(ValueError):
    """A bad /info request; the server answers it with an error response naming the problem."""


class InfoServerError(InfoError):
    """A request the live server fails on with HTTP 500 rather than refusing it (422)."""


def handle(ex: Exchange, payload: Any) -> object:
    if not isinstance(payload, dict):
        raise InfoError("info request must be an object with a 'type' field")
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise InfoError("info request is missing the string field 'type'")
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise InfoError(f"Unknown info request type {kind!r}")
    return handler(ex, payload)


# ------------------------------------------------------------------------ request fields


def _user(payload: dict[str, Any]) -> str:
    # As on the exchange, /info takes addresses with or without 0x, in any case.
    user = payload.get("user")
    if not isinstance(user, str) or not _ADDRESS.match(user):
        raise InfoError(f"info {payload['type']}: 'user' must be a 40-hex-digit address")
    return "0x" + user.lower().removeprefix("0x")


def _dex(ex: Exchange, payload: dict[str, Any]) -> str:
    dex = payload.get("dex", "")
    if dex is None:
        dex = ""
    if not isinstance(dex, str):
        raise InfoError(f"info {payload['type']}: 'dex' must be a string")
    if dex not in ex.universe.by_dex_name:
        raise InfoError(f"info {payload['type']}: unknown perp dex {dex!r}")
    return dex


def _coin(ex: Exchange, payload: dict[str, Any]) -> Asset:
    coin = payload.get("coin")
    if not isinstance(coin, str):
        raise InfoError(f"info {payload['type']}: 'coin' must be a string")
    if not ex.universe.is_listed(coin):  # a market not listed yet is unknown to clients
        raise InfoError(f"info {payload['type']}: unknown coin {coin!r}")
    return ex.universe.asset(coin)


# ------------------------------------------------------------------------ shared wire shapes


def frontend_order_wire(order: Order) -> dict[str, Any]:
    wire = {
        "coin": order.coin,
        "side": order.side,
        "limitPx": rules.wire(order.limit_px),
        "sz": rules.wire(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "triggerCondition": "N/A",
        "isTrigger": False,
        "triggerPx": "0.0",
        "children": [],
        "isPositionTpsl": False,
        "reduceOnly": order.reduce_only,
        "orderType": "Limit",
        "origSz": rules.wire(order.orig_sz),
        "tif": order.tif,
        "cloid": order.cloid,
    }
    if order.trigger is not None:  # the trigger fields are described in hip3.sim.triggers
        wire["isTrigger"] = True
        wire["triggerPx"] = rules.wire(order.trigger.trigger_px)
        wire["triggerCondition"] = triggers.trigger_condition(order)
        wire["isPositionTpsl"] = order.position_tpsl
        wire["orderType"] = triggers.order_type_name(order)
        if not order.triggered:
            wire["tif"] = None
    return wire


def _meta(ex: Exchange, dex: str) -> dict[str, Any]:
    universe = []
    for asset in ex.universe.listed_assets(dex):
        entry: dict[str, Any] = {
            "szDecimals": asset.sz_decimals,
            "name": asset.coin,
            "maxLeverage": asset.max_leverage,
            "marginTableId": asset.max_leverage,
        }
        if asset.isolated_only:
            entry["onlyIsolated"] = True
            entry["marginMode"] = asset.margin_mode
        if asset.growth_mode:
            entry["growthMode"] = "enabled"
            entry["lastGrowthModeChangeTime"] = "2026-01-01T00:00:00"
        if asset.coin in ex.halted:
            entry["isDelisted"] = True
        universe.append(entry)
    tables = sorted({a.max_leverage for a in ex.universe.listed_assets(dex)})
    return {
        "universe": universe,
        "marginTables": [
            [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
            for lev in tables
        ],
        "collateralToken": ex.universe.dex(dex).collateral.index,
    }


def _approx(value: Decimal) -> str:
    """Derived quantities (entry price, PnL ratios) rounded so the strings stay short."""
    return rules.wire(value.quantize(_SIG_DIGITS)) if value else "0.0"


# ------------------------------------------------------------------------ handlers


def _perp_dexs(ex: Exchange, payload: dict[str, Any]) -> list[Any]:
    result: list[Any] = [None]
    for dex in ex.universe.dexes[1:]:
        coins = [a.coin for a in ex.universe.listed_assets(dex.name)]
        result.append(
            {
                "name": dex.name,
                "fullName": dex.full_name,
                "deployer": dex.deployer,
                "oracleUpdater": None,
                "feeRecipient": None,
                "assetToStreamingOiCap": [[c, "1000000.0"] for c in coins],
                "assetToFundingMultiplier": [[c, "1.0"] for c in coins],
                "subDeployers": [],
                "deployerFeeScale": rules.wire(dex.fee_scale)
                if dex.fee_scale % 1
                else f"{dex.fee_scale:.1f}",
                "lastDeployerFeeScaleChangeTime": "2026-01-01T00:00:00",
                "assetToFundingInterestRate": [[c, "0.0"] for c in coins],
            }
        )
    return result


def _meta_handler(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    return _meta(ex, _dex(ex, payload))


def _all_perp_metas(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dex's meta in perpDexs order (a disabled dex keeps its place)."""
    return [_meta(ex, dex.name) for dex in ex.universe.dexes]


def _meta_and_ctxs(ex: Exchange, payload: dict[str, Any]) -> list[Any]:
    dex = _dex(ex, payload)
    return [_meta(ex, dex), [ex.markets.perp_ctx(a.coin) for a in ex.universe.listed_assets(dex)]]


def _all_mids(ex: Exchange, payload: dict[str, Any]) -> dict[str, str]:
    dex = _dex(ex, payload)
    mids = {}
    for asset in ex.universe.listed_assets(dex):
        mid = ex.mid_px(asset.coin)
        if mid is None:
            mid = ex.last_trade_px.get(asset.coin, ex.mark_px(asset.coin))
        mids[asset.coin] = rules.wire(mid)
    return mids


def _perp_dex_limits(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any] | None:
    dex_name = _dex(ex, payload)
    if not dex_name:
        return None
    dex = ex.universe.dex(dex_name)
    return {
        "totalOiCap": f"{dex.total_oi_cap:.1f}",
        "oiSzCapPerPerp": f"{dex.oi_sz_cap_per_perp:.1f}",
        "maxTransferNtl": f"{dex.max_transfer_ntl:.1f}",
        "coinToOiCap": [[a.coin, "1000000.0"] for a in ex.universe.listed_assets(dex.name)],
    }


def _perps_at_oi_cap(ex: Exchange, payload: dict[str, Any]) -> list[str]:
    """Coins of the dex at their open-interest cap. The simulator does not model OI growth;
    tests and scenarios mark coins capped through `Exchange.oi_capped`."""
    dex = ex.universe.dex(_dex(ex, payload))
    capped = getattr(ex, "oi_capped", set())
    return sorted(a.coin for a in dex.assets if a.coin in capped)


def _clearinghouse_state(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    user = _user(payload)
    dex = _dex(ex, payload)
    account = ex.accounts.get(user)
    positions = []
    total_ntl = Decimal(0)
    margin_used = Decimal(0)
    cross_maintenance = Decimal(0)
    balance = Decimal(0)
    account_value = Decimal(0)
    # In unified and portfolio-margin modes per-dex states "are not meaningful" (the docs send
    # readers to spotClearinghouseState): positions are listed, balances read zero.
    pooled = account is not None and account.abstraction != "disabled"
    if account is not None:
        if not pooled:
            balance = account.balance(dex)
            account_value = ex.equity(account, dex)
        for position in account.positions.values():
            if position.dex != dex:
                continue
            asset = ex.universe.by_coin[position.coin]
            leverage = ex.leverage_of(account, asset)
            mark = ex.mark_px(position.coin)
            value = abs(position.szi) * mark
            used = value / leverage.value
            lev_wire: dict[str, Any] = {"type": "cross", "value": leverage.value}
            if leverage.is_cross:
                cross_maintenance += ex.margin.maintenance_margin(position)
            else:
                # the position's own margin with its PnL, rawUsd + szi * mark (the docs' example
                # has marginUsed equal to that sum)
                used = ex.margin.isolated_margin(account, position)
                lev_wire = {
                    "type": "isolated",
                    "value": leverage.value,
                    "rawUsd": _approx(used - position.szi * mark),
                }
            pnl = position.szi * (mark - position.entry_px)
            total_ntl += value
            margin_used += used
            liquidation = ex.margin.liquidation_px(account, position)
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": position.coin,
                        "szi": rules.wire(position.szi),
                        "entryPx": _approx(position.entry_px),
                        "positionValue": _approx(value),
                        "unrealizedPnl": _approx(pnl),
                        "returnOnEquity": _approx(pnl / used) if used else "0.0",
                        "liquidationPx": None if liquidation is None else _approx(liquidation),
                        "marginUsed": _approx(used),
                        "maxLeverage": asset.max_leverage,
                        "leverage": lev_wire,
                        "cumFunding": {
                            "allTime": _approx(position.cum_funding_all_time),
                            "sinceOpen": _approx(position.cum_funding_since_open),
                            "sinceChange": _approx(position.cum_funding_since_open),
                        },
                    },
                }
            )
    summary = {
        "accountValue": _approx(account_value),
        "totalNtlPos": _approx(total_ntl),
        "totalRawUsd": _approx(balance),
        "totalMarginUsed": _approx(margin_used),
    }
    withdrawable = Decimal(0)
    if account is not None and not pooled:
        withdrawable = max(Decimal(0), ex.available_margin(account, dex))
    return {
        "assetPositions": positions,
        "marginSummary": summary,
        "crossMarginSummary": dict(summary),
        "crossMaintenanceMarginUsed": _approx(cross_maintenance),
        "withdrawable": _approx(withdrawable),
        "time": ex.now_ms(),
    }


def _orders_on_dex(ex: Exchange, payload: dict[str, Any]) -> list[Order]:
    user = _user(payload)
    dex = _dex(ex, payload)
    account = ex.accounts.get(user)
    if account is None:
        return []
    orders = [o for o in account.open_orders.values() if ex.universe.by_coin[o.coin].dex == dex]
    orders.sort(key=lambda o: o.oid, reverse=True)  # newest first, as the exchange lists them
    return orders


def _open_orders(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [open_order_wire(o) for o in _orders_on_dex(ex, payload)]


def _frontend_open_orders(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [frontend_order_wire(o) for o in _orders_on_dex(ex, payload)]


def _order_status(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    user = _user(payload)
    oid = payload.get("oid")
    if isinstance(oid, bool) or not isinstance(oid, int | str):
        raise InfoError("info orderStatus: 'oid' must be an integer oid or a cloid string")
    if isinstance(oid, str) and not _CLOID.match(oid):
        raise InfoError("info orderStatus: a string 'oid' must be a cloid (0x + 32 hex digits)")
    entry = ex.order_status(user, oid)
    if entry is None:
        return {"status": "unknownOid"}
    order, status, timestamp = entry
    return {
        "status": "order",
        "order": {
            "order": frontend_order_wire(order),
            "status": status,
            "statusTimestamp": timestamp,
        },
    }


def _user_fills(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return ex.user_fills(_user(payload))


def _user_fees(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    _user(payload)
    taker, maker = rules.wire(rules.BASE_TAKER_RATE), rules.wire(rules.BASE_MAKER_RATE)
    return {
        "dailyUserVlm": [],
        "feeSchedule": {
            "cross": taker,
            "add": maker,
            "spotCross": "0.0007",
            "spotAdd": "0.0004",
            "tiers": {"vip": [], "mm": []},
            "referralDiscount": "0.04",
            "stakingDiscountTiers": [],
        },
        "userCrossRate": taker,
        "userAddRate": maker,
        "userSpotCrossRate": "0.0007",
        "userSpotAddRate": "0.0004",
        "activeReferralDiscount": "0.0",
        "trial": None,
        "feeTrialReward": "0.0",
        "nextTrialAvailableTimestamp": None,
        "stakingLink": None,
        "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"},
    }


L2_SIG_FIGS = (2, 3, 4, 5)
L2_MANTISSAS = (2, 5)  # the live server fails on mantissa 1 too, though its docs allow it


def _l2_book(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any] | None:
    coin = payload.get("coin")
    if not isinstance(coin, str):
        raise InfoError("info l2Book: 'coin' must be a string")
    if not ex.universe.is_listed(coin):
        return None  # the live server answers an unknown coin with null, not an error
    n_sig_figs = payload.get("nSigFigs")
    mantissa = payload.get("mantissa")
    for name, value in (("nSigFigs", n_sig_figs), ("mantissa", mantissa)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InfoError(f"info l2Book: {name!r} must be null or an integer")
    # Out-of-set values are not refused by the live server: it fails (HTTP 500, null).
    if n_sig_figs is not None and n_sig_figs not in L2_SIG_FIGS:
        raise InfoServerError(f"info l2Book: nSigFigs {n_sig_figs} is not one of 2, 3, 4, 5")
    if mantissa is not None and (mantissa not in L2_MANTISSAS or n_sig_figs != 5):
        raise InfoServerError(
            f"info l2Book: mantissa {mantissa} needs nSigFigs 5 and must be 2 or 5"
        )
    book = ex.l2_book(coin)
    if n_sig_figs is None:
        return book
    return aggregate_book(book, n_sig_figs, mantissa)


def _spot_meta(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    """The collateral tokens of the simulated dexes and no spot pairs: spot is not traded."""
    return {"tokens": [token.spot_meta_entry() for token in TOKENS.values()], "universe": []}


def _user_abstraction(ex: Exchange, payload: dict[str, Any]) -> str:
    account = ex.accounts.get(_user(payload))
    return account.abstraction if account is not None else "disabled"


def _spot_clearinghouse_state(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    """Spot balances: collateral moved to spot (usdClassTransfer, sendAsset), or in a unified
    or portfolio-margin account each token's one balance, with what margin holds of it."""
    account = ex.accounts.get(_user(payload))
    balances = []
    if account is not None:
        pooled = account.abstraction != "disabled"
        for token in TOKENS.values():
            total = account.spot.get(token.name, Decimal(0))
            hold = Decimal(0)
            dexes = [d for d in ex.universe.dexes if d.collateral == token]
            if pooled and dexes:
                dexes_pooled, total = ex.margin.pool(account, dexes[0].name)
                free = ex.available_margin(account, dexes_pooled[0])
                hold = total - max(Decimal(0), min(total, free))
            if total:
                balances.append(
                    {
                        "coin": token.name,
                        "token": token.index,
                        "hold": rules.wire(hold) if hold else "0.0",
                        "total": rules.wire(total),
                        "entryNtl": "0.0",
                    }
                )
    return {"balances": balances}


def _delegator_summary(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    # Only the undelegated balance exists here: it is what pays priority fees.
    undelegated = ex.staking.balance(_user(payload))
    return {
        "delegated": "0.0",
        "undelegated": rules.wire(undelegated),
        "totalPendingWithdrawal": "0.0",
        "nPendingWithdrawals": 0,
    }


MAX_FILLS_PER_ANSWER = 2000


def _time_field(payload: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InfoError(f"info {payload['type']}: '{key}' must be a non-negative integer (ms)")
    return value


def _user_fills_by_time(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Fills from startTime to endTime (inclusive), oldest first, at most 2000: the next page
    starts after the last fill's time. Only the 10,000 most recent fills are kept."""
    user = _user(payload)
    start = _time_field(payload, "startTime", required=True)
    end = _time_field(payload, "endTime", required=False)
    if payload.get("aggregateByTime") not in (None, False):
        raise InfoError("info userFillsByTime: aggregateByTime is not simulated")
    account = ex.accounts.get(user)
    if account is None:
        return []
    found = []
    for fill in account.fills:  # oldest first
        time = fill["time"]
        if time < start:  # type: ignore[operator]
            continue
        if end is not None and time > end:
            break
        found.append(fill)
        if len(found) == MAX_FILLS_PER_ANSWER:
            break
    return found


def _historical_orders(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The user's most recent orders (at most 2000) with their latest status, newest first."""
    user = _user(payload)
    return [
        {"order": frontend_order_wire(order), "status": status, "statusTimestamp": timestamp}
        for order, status, timestamp in ex.ledger.history(user)
    ]


def _user_rate_limit(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    user = _user(payload)
    account = ex.accounts.get(user)
    budget = ex.request_budget
    if account is None:
        return {
            "cumVlm": "0.0",
            "nRequestsUsed": 0,
            "nRequestsCap": budget.base,
            "nRequestsSurplus": 0,
        }
    return {
        "cumVlm": rules.wire(rules.usdc(account.budget_volume)),
        "nRequestsUsed": account.requests_used,
        "nRequestsCap": budget.cap(account),
        "nRequestsSurplus": 0,  # reserveRequestWeight is not simulated
    }


def _user_role(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    return ex.agent_registry.role(_user(payload), ex.now_ms())


def _extra_agents(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return ex.agent_registry.extra_agents(_user(payload), ex.now_ms())


def _candle_snapshot(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Candles from the trades the simulator executed (hip3.sim.candles)."""
    req = payload.get("req")
    if not isinstance(req, dict):
        raise InfoError("info candleSnapshot: 'req' must be an object {coin, interval, startTime}")
    fields = {"type": "candleSnapshot", **req}
    coin = _coin(ex, fields).coin
    interval = req.get("interval")
    if interval not in INTERVALS:
        raise InfoError(
            f"info candleSnapshot: 'interval' must be one of {', '.join(INTERVALS)}, "
            f"got {interval!r}"
        )
    start = _time_field(fields, "startTime", required=True)
    end = _time_field(fields, "endTime", required=False)
    assert start is not None
    return ex.markets.candles.snapshot(coin, interval, start, ex.now_ms() if end is None else end)


def _funding_history(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    coin = _coin(ex, payload).coin
    start = _time_field(payload, "startTime", required=True)
    assert start is not None
    return user_views.funding_history(
        ex, coin, start, _time_field(payload, "endTime", required=False)
    )


def _user_funding(ex: Exchange, payload: dict[str, Any]) -> list[dict[str, Any]]:
    account = ex.accounts.get(_user(payload))
    start = _time_field(payload, "startTime", required=True)
    assert start is not None
    end = _time_field(payload, "endTime", required=False)
    return user_views.user_funding(account, start, end)


def _user_non_funding_ledger_updates(ex: Exchange, payload: dict[str, Any]) -> list[Any]:
    account = ex.accounts.get(_user(payload))
    start = _time_field(payload, "startTime", required=True)
    assert start is not None
    end = _time_field(payload, "endTime", required=False)
    return user_views.ledger_updates(account, start, end)


def _active_asset_data(ex: Exchange, payload: dict[str, Any]) -> dict[str, Any]:
    user = _user(payload)
    return user_views.active_asset_data(ex, user, _coin(ex, payload))


_HANDLERS = {
    "candleSnapshot": _candle_snapshot,
    "fundingHistory": _funding_history,
    "userFunding": _user_funding,
    "userNonFundingLedgerUpdates": _user_non_funding_ledger_updates,
    "activeAssetData": _active_asset_data,
    "userFillsByTime": _user_fills_by_time,
    "historicalOrders": _historical_orders,
    "userRateLimit": _user_rate_limit,
    "spotMeta": _spot_meta,
    "spotClearinghouseState": _spot_clearinghouse_state,
    "userAbstraction": _user_abstraction,
    "delegatorSummary": _delegator_summary,
    "perpDexs": _perp_dexs,
    "meta": _meta_handler,
    "allPerpMetas": _all_perp_metas,
    "metaAndAssetCtxs": _meta_and_ctxs,
    "allMids": _all_mids,
    "perpDexLimits": _perp_dex_limits,
    "perpsAtOpenInterestCap": _perps_at_oi_cap,
    "clearinghouseState": _clearinghouse_state,
    "openOrders": _open_orders,
    "frontendOpenOrders": _frontend_open_orders,
    "orderStatus": _order_status,
    "userFills": _user_fills,
    "userFees": _user_fees,
    "l2Book": _l2_book,
    "userRole": _user_role,
    "extraAgents": _extra_agents,
}
