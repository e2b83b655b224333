"""/exchange actions: the signed envelope, signer and nonce checks, and one handler per type.

Order of checks, as on the exchange: the body's structure (malformed bodies never reach
recovery), then the signer recovered from the hash of the action exactly as sent, then the
vault, expiry and nonce, and only then the action itself. Each handler is a pair: `parse`
validates the action's fields before the signature is looked at, `apply` runs it for the
resolved account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from hip3.sim import texts
from hip3.sim.abstraction import AbstractionModes
from hip3.sim.accounts import Account
from hip3.sim.address_budget import EXPIRED_COST, AddressBudget, requests_of
from hip3.sim.agents import AgentRegistry
from hip3.sim.events import AccountChanged, PendingEvents
from hip3.sim.ledger import OrderLedger
from hip3.sim.margin import Margin
from hip3.sim.matching import Matcher
from hip3.sim.priority import (
    StakingLedger,
    check_eligible,
    parse_grouping,
    prioritized_notional,
)
from hip3.sim.scheduled import ScheduledCancels
from hip3.sim.signatures import L1Verifier, SignatureError, action_hash
from hip3.sim.transfers import Transfers
from hip3.sim.triggers import Triggers, is_trigger
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import (
    ActionError,
    OrderWire,
    SchemaError,
    address,
    batch,
    malformed,
    optional_address,
    order_wire,
    require,
    require_int,
)
from hip3.sim.wire import cloid as parse_cloid

log = logging.getLogger(__name__)

_CANCEL_KEYS = frozenset({"a", "o"})
_CANCEL_BY_CLOID_KEYS = frozenset({"asset", "cloid"})
_Target = TypeVar("_Target")
_MODIFY_KEYS = frozenset({"oid", "order"})

INTERNAL_ERROR = texts.INTERNAL_ERROR
MAX_NTLI = 1 << 62  # updateIsolatedMargin's signed micro-USD amount
ENVELOPE_KEYS = frozenset({"action", "nonce", "signature", "vaultAddress", "expiresAfter"})
# The fields each action type may carry; anything else does not deserialize on the exchange.
ACTION_KEYS = {
    "order": frozenset({"type", "orders", "grouping", "builder"}),
    "cancel": frozenset({"type", "cancels", "f"}),
    "cancelByCloid": frozenset({"type", "cancels", "f"}),
    "batchModify": frozenset({"type", "modifies", "a"}),
    "modify": frozenset({"type", "oid", "order", "a"}),
    "scheduleCancel": frozenset({"type", "time"}),
    "updateLeverage": frozenset({"type", "asset", "isCross", "leverage"}),
    "updateIsolatedMargin": frozenset({"type", "asset", "isBuy", "ntli"}),
    "noop": frozenset({"type"}),
    "approveAgent": frozenset(
        {"type", "signatureChainId", "hyperliquidChain", "agentAddress", "agentName", "nonce"}
    ),
    "usdClassTransfer": frozenset(
        {"type", "signatureChainId", "hyperliquidChain", "amount", "toPerp", "nonce"}
    ),
    "userSetAbstraction": frozenset(
        {"type", "signatureChainId", "hyperliquidChain", "user", "abstraction", "nonce"}
    ),
    "sendAsset": frozenset(
        {
            "type",
            "signatureChainId",
            "hyperliquidChain",
            "destination",
            "sourceDex",
            "destinationDex",
            "token",
            "amount",
            "fromSubAccount",
            "nonce",
        }
    ),
}
_USER_SIGNED = frozenset({"usdClassTransfer", "sendAsset", "userSetAbstraction"})


class Actions:
    def __init__(
        self,
        universe: Universe,
        *,
        verifier: L1Verifier,
        agents: AgentRegistry,
        ledger: OrderLedger,
        margin: Margin,
        matcher: Matcher,
        scheduled: ScheduledCancels,
        budget: AddressBudget,
        clock_ms: Callable[[], int],
        emit: Callable[[object], None],
        staking: StakingLedger | None = None,
        transfers: Transfers | None = None,
        triggers: Triggers,
        abstraction: AbstractionModes | None = None,
    ) -> None:
        self._triggers = triggers
        self._universe = universe
        self._transfers = transfers
        self._abstraction = abstraction
        self._staking = staking if staking is not None else StakingLedger()
        self._verifier = verifier
        self._agents = agents
        self._ledger = ledger
        self._margin = margin
        self._matcher = matcher
        self._scheduled = scheduled
        self._budget = budget
        self._clock = clock_ms
        self._emit = emit
        self._handlers: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[..., Any]]] = {
            "order": (self._parse_order, self._order),
            "cancel": (self._parse_cancel, self._cancel),
            "cancelByCloid": (self._parse_cancel_by_cloid, self._cancel_by_cloid),
            "batchModify": (self._parse_batch_modify, self._modify),
            "modify": (self._parse_modify, self._modify_one),
            "scheduleCancel": (_parse_schedule_cancel, self._schedule_cancel),
            "updateLeverage": (self._parse_update_leverage, self._update_leverage),
            "updateIsolatedMargin": (
                self._parse_update_isolated_margin,
                self._update_isolated_margin,
            ),
            "noop": (_parse_noop, _noop),
        }

    def handle(self, payload: Any) -> dict[str, Any]:
        """The /exchange answer to `payload`; never raises."""
        return self.answer(payload)[1]

    def answer(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, answer): 422 for a body that does not fit the schema, 500 for a bug
        in the simulator, 200 for everything the exchange itself accepts or refuses."""
        try:
            return 200, self._handle(payload)
        except SchemaError as error:
            return 422, {"status": "err", "response": str(error)}
        except ActionError as error:
            return 200, {"status": "err", "response": str(error)}
        except Exception:  # a bug here must not take the server loop down
            log.exception("simulator failed on an action")
            return 500, {"status": "err", "response": INTERNAL_ERROR}

    def _handle(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise malformed("body", "must be an object {action, nonce, signature}")
        action = require(payload, "action", dict, "body")
        kind = require(action, "type", str, "action")
        nonce = require_int(payload, "nonce", "body")
        signature = require(payload, "signature", dict, "body")
        vault = optional_address(payload.get("vaultAddress"), "body.vaultAddress")
        expires_after = payload.get("expiresAfter")
        if expires_after is not None:
            expires_after = require_int(payload, "expiresAfter", "body")
        _no_unknown_fields(payload, ENVELOPE_KEYS, "body")
        allowed = ACTION_KEYS.get(kind)
        if allowed is None:
            raise malformed("action.type", f"{kind!r} is not an action this exchange supports")
        _no_unknown_fields(action, allowed, "action")
        now = self._clock()
        if kind == "approveAgent":
            return self._agents.approve(action, nonce, signature, expires_after, vault, now)
        if kind in _USER_SIGNED and self._transfers and self._abstraction:
            if expires_after is not None:
                raise ActionError(texts.EXPIRES_AFTER_USER_SIGNED)
            if vault is not None:
                raise ActionError(texts.VAULT_UNKNOWN.format(vault=vault))
            if kind == "sendAsset":
                return self._transfers.send_asset(action, nonce, signature, now)
            if kind == "userSetAbstraction":
                return self._abstraction.user_set_abstraction(action, nonce, signature, now)
            return self._transfers.usd_class_transfer(action, nonce, signature, now)
        handler = self._handlers[kind]
        parsed = handler[0](action)
        connection_id = action_hash(action, nonce, vault, expires_after)
        try:
            signer = self._verifier.recover(connection_id, signature)
        except SignatureError as error:
            raise ActionError(str(error)) from None
        account, nonces = self._agents.resolve(signer, now)
        if vault is not None:
            raise ActionError(texts.VAULT_UNKNOWN.format(vault=vault))
        self._budget.admit(account, kind, now)
        problem = nonces.check(nonce, now)
        if problem:
            raise ActionError(problem)
        nonces.use(nonce)
        # Checked after the nonce is taken: an expired action still consumes its nonce.
        if expires_after is not None and expires_after < now:
            self._budget.charge(account, EXPIRED_COST)
            raise ActionError(texts.ACTION_EXPIRED)
        pending = PendingEvents()
        try:
            result = handler[1](account, parsed, now, pending, "0x" + connection_id.hex())
        finally:
            pending.flush(self._emit)
        self._budget.charge(account, requests_of(action))
        return result

    # --- order

    def _parse_order(self, action: dict[str, Any]) -> tuple[list[OrderWire], int | str | None]:
        orders = [
            order_wire(raw, f"action.orders[{i}]") for i, raw in enumerate(batch(action, "orders"))
        ]
        grouping = action.get("grouping", "na")
        rate: int | str | None
        if grouping in ("normalTpsl", "positionTpsl"):
            rate = grouping  # TP/SL groupings (hip3.sim.triggers); whole-action checks there
        else:
            rate = parse_grouping(grouping)
            if rate is not None:
                check_eligible(orders)
        if "builder" in action:
            builder = require(action, "builder", dict, "action")
            address(require(builder, "b", str, "action.builder"), "action.builder.b")
            require_int(builder, "f", "action.builder")
        return orders, rate

    def _order(
        self,
        account: Account,
        parsed: tuple[list[OrderWire], int | str | None],
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> dict[str, Any]:
        orders, rate = parsed
        problem = self._matcher.reference_price_problem(orders)
        if problem:
            raise ActionError(problem)
        place = self._matcher.place
        if isinstance(rate, str):
            statuses = self._triggers.place_orders(account, orders, rate, now, pending, tx_hash)
        elif not rate:
            statuses = self._triggers.place_orders(account, orders, "na", now, pending, tx_hash)
        else:  # paid from the staking balance, order by order, as each fills or rests
            staking, user = self._staking, account.address
            staking.require(user, rate, orders)
            statuses = []
            for wire in orders:
                status = place(account, wire, now, pending, tx_hash, rate)
                fills = pending.fills.get(user, ())
                staking.charge(user, rate, prioritized_notional(status, wire, fills))
                statuses.append(status)
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    # --- cancel, cancelByCloid

    def _parse_cancel(self, action: dict[str, Any]) -> tuple[list[tuple[int, int]], bool]:
        def entry(raw: dict[str, Any], where: str) -> tuple[int, int]:
            return require_int(raw, "a", where), require_int(raw, "o", where)

        return _parse_cancels(action, _CANCEL_KEYS, "{a, o}", entry)

    def _parse_cancel_by_cloid(self, action: dict[str, Any]) -> tuple[list[tuple[int, str]], bool]:
        def entry(raw: dict[str, Any], where: str) -> tuple[int, str]:
            asset = require_int(raw, "asset", where)
            return asset, parse_cloid(require(raw, "cloid", str, where), f"{where}.cloid")

        return _parse_cancels(action, _CANCEL_BY_CLOID_KEYS, "{asset, cloid}", entry)

    def _cancel(
        self,
        account: Account,
        parsed: tuple[list[tuple[int, int]], bool],
        now: int,
        pending: PendingEvents,
        _hash: str,
    ) -> dict[str, Any]:
        cancels, fast = parsed
        statuses = [
            self._cancel_one(account, a, account.open_orders.get(o), now, pending, fast)
            for a, o in cancels
        ]
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _cancel_by_cloid(
        self,
        account: Account,
        parsed: tuple[list[tuple[int, str]], bool],
        now: int,
        pending: PendingEvents,
        _hash: str,
    ) -> dict[str, Any]:
        cancels, fast = parsed
        statuses = []
        for asset_id, order_cloid in cancels:
            oid = account.open_cloids.get(order_cloid)
            order = account.open_orders.get(oid) if oid is not None else None
            statuses.append(self._cancel_one(account, asset_id, order, now, pending, fast))
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _cancel_one(
        self,
        account: Account,
        asset_id: int,
        order: Any,
        now: int,
        pending: PendingEvents,
        fast: bool = False,
    ) -> str | dict[str, str]:
        asset = self._universe.listed_asset(asset_id)
        if asset is None:
            return {"error": texts.UNKNOWN_ASSET.format(asset=asset_id)}
        if order is None or order.coin != asset.coin:
            return {"error": texts.with_asset(texts.CANCEL_MISSING, asset_id)}
        if fast and is_trigger(order):  # documented: fast cancels may not touch triggers
            return {"error": texts.FAST_CANCEL_TRIGGER}
        self._ledger.cancel(account, order, "canceled", now, pending)
        return "success"

    # --- batchModify, modify

    def _parse_batch_modify(self, action: dict[str, Any]) -> list[tuple[int | str, OrderWire]]:
        items = batch(action, "modifies")
        parsed = []
        for i, raw in enumerate(items):
            where = f"action.modifies[{i}]"
            if not isinstance(raw, dict):
                raise malformed(where, "must be an object {oid, order}")
            _no_unknown_fields(raw, _MODIFY_KEYS, where)
            parsed.append(_modify_entry(raw, where))
        _check_fast_flag(action, "a")
        return parsed

    def _parse_modify(self, action: dict[str, Any]) -> list[tuple[int | str, OrderWire]]:
        _check_fast_flag(action, "a")
        return [_modify_entry(action, "action")]

    def _modify(
        self,
        account: Account,
        modifies: list[tuple[int | str, OrderWire]],
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> dict[str, Any]:
        statuses = []
        for target, wire in modifies:
            oid = account.open_cloids.get(target) if isinstance(target, str) else target
            order = account.open_orders.get(oid) if oid is not None else None
            if order is None:
                statuses.append({"error": texts.MODIFY_GONE})
                continue
            self._ledger.cancel(account, order, "canceled", now, pending)
            statuses.append(self._triggers.place_one(account, wire, now, pending, tx_hash))
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _modify_one(
        self,
        account: Account,
        modifies: list[tuple[int | str, OrderWire]],
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> dict[str, Any]:
        """A single `modify` answers `default` on success; a failure is the whole action's."""
        result = self._modify(account, modifies, now, pending, tx_hash)
        status = result["response"]["data"]["statuses"][0]
        if "error" in status:
            raise ActionError(status["error"])
        return default_ok()

    # --- scheduleCancel, updateLeverage

    def _schedule_cancel(
        self,
        account: Account,
        deadline: int | None,
        now: int,
        pending: PendingEvents,
        _hash: str,
    ) -> dict[str, Any]:
        self._scheduled.set(account, deadline, now)
        return default_ok()

    def _parse_update_leverage(self, action: dict[str, Any]) -> tuple[Asset, bool, int]:
        asset_id = require_int(action, "asset", "action")
        is_cross = require(action, "isCross", bool, "action")
        leverage = require_int(action, "leverage", "action")
        asset = self._universe.listed_asset(asset_id)
        if asset is None:
            raise ActionError(texts.UNKNOWN_ASSET.format(asset=asset_id))
        if not 1 <= leverage <= asset.max_leverage:
            raise ActionError(
                texts.LEVERAGE_OUT_OF_RANGE.format(
                    leverage=leverage, coin=asset.coin, max=asset.max_leverage
                )
            )
        if is_cross and asset.isolated_only:
            raise ActionError(texts.CROSS_NOT_ALLOWED.format(coin=asset.coin))
        return asset, is_cross, leverage

    def _update_leverage(
        self,
        account: Account,
        parsed: tuple[Asset, bool, int],
        now: int,
        pending: PendingEvents,
        _hash: str,
    ) -> dict[str, Any]:
        asset, is_cross, value = parsed
        self._margin.update_leverage(account, asset, is_cross, value)
        self._emit(AccountChanged(account.address))
        return default_ok()

    # --- updateIsolatedMargin

    def _parse_update_isolated_margin(self, action: dict[str, Any]) -> tuple[Asset, Decimal]:
        asset_id = require_int(action, "asset", "action")
        # isBuy is carried for a future hedge mode and has no effect (exchange docs).
        require(action, "isBuy", bool, "action")
        ntli = require_int(action, "ntli", "action", minimum=-MAX_NTLI)
        if ntli > MAX_NTLI:
            raise malformed("action.ntli", f"must be at most {MAX_NTLI}")
        if ntli == 0:
            raise malformed("action.ntli", "must not be 0")
        asset = self._universe.listed_asset(asset_id)
        if asset is None:
            raise ActionError(texts.UNKNOWN_ASSET.format(asset=asset_id))
        return asset, Decimal(ntli).scaleb(-6)  # ntli is USD * 1e6

    def _update_isolated_margin(
        self,
        account: Account,
        parsed: tuple[Asset, Decimal],
        now: int,
        pending: PendingEvents,
        _hash: str,
    ) -> dict[str, Any]:
        asset, amount = parsed
        self._margin.update_isolated_margin(account, asset, amount)
        self._emit(AccountChanged(account.address))
        return default_ok()


def _no_unknown_fields(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        raise malformed(where, f"has unknown field(s) {sorted(unknown)}")


def _parse_schedule_cancel(action: dict[str, Any]) -> int | None:
    if "time" not in action or action["time"] is None:
        return None
    return require_int(action, "time", "action")


def _parse_noop(action: dict[str, Any]) -> None:
    return None


def _noop(
    account: Account, _parsed: None, now: int, pending: PendingEvents, _hash: str
) -> dict[str, Any]:
    return default_ok()


def _modify_entry(raw: dict[str, Any], where: str) -> tuple[int | str, OrderWire]:
    if "oid" not in raw:
        raise malformed(where, "is missing field 'oid'")
    target = raw["oid"]
    if isinstance(target, str):
        target = parse_cloid(target, f"{where}.oid")
    elif isinstance(target, bool) or not isinstance(target, int):
        raise malformed(f"{where}.oid", "must be an integer oid or a cloid string")
    return target, order_wire(require(raw, "order", dict, where), f"{where}.order")


def _check_fast_flag(action: dict[str, Any], key: str) -> None:
    # A fast-cancel or always-place flag must be omitted when false: the exchange documents
    # that actions hashed with a false flag are rejected.
    if key in action and action[key] is not True:
        raise malformed(f"action.{key}", "must be omitted or true")


def default_ok() -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "default"}}


def _parse_cancels(
    action: dict[str, Any],
    keys: frozenset[str],
    shape: str,
    entry: Callable[[dict[str, Any], str], _Target],
) -> tuple[list[_Target], bool]:
    """The entries of a cancel or cancelByCloid action and whether it asks for a fast cancel."""
    parsed = []
    for i, raw in enumerate(batch(action, "cancels")):
        where = f"action.cancels[{i}]"
        if not isinstance(raw, dict):
            raise malformed(where, f"must be an object {shape}")
        _no_unknown_fields(raw, keys, where)
        parsed.append(entry(raw, where))
    _check_fast_flag(action, "f")
    return parsed, "f" in action
