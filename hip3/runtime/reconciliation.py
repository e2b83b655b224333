"""The reconciler: one epoch's reconciliation plan (discovery, positions, open orders, recent
fills, fee rates), the open-interest caps, and every other question the bot asks the exchange
about its orders and positions (an order left unknown, a position it cannot vouch for, an
order of the account it does not know).

After every (re)connect the bot asks the exchange what is true — markets (perpDexs + meta),
positions and open orders per dex (HIP-3 state is invisible without `dex`), recent fills —
and only then may READY-TRADING hold. Requests go out together over the same socket right
after the subscriptions, so the websocket's ordering makes the answers consistent with the
streams: a fill streamed before an answer is included in it, one streamed after is not.

Commands it executes: StartReconciliation (with the account check's requests, which join the
plan), ReconcileOrder. Every info request goes out through `ask` with an owner (`InfoQuery`)
that hands its answer back here; a failed plan request is asked again after a backoff. What an
answer changes: the market specs and their ParamChange gates, fee rates, positions (through
the position tracker's reconcile), the order registry (adopted orders, settled outcomes), the
OI-cap gates; the epoch (`ConnectionEpoch`) is told when each READY-TRADING part is settled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec

from hip3.execution.orders import OrderInfo, classify_update_status
from hip3.market.state import MarketSpec
from hip3.protocol import frames as F
from hip3.protocol.ids import perp_asset_id, split_coin
from hip3.protocol.info_answers import BadAnswer
from hip3.runtime.common import FatalError, log
from hip3.runtime.post_owners import AnswerHandler, FailureHandler, InfoQuery
from hip3.strategy.sizing import account_value_of

OI_CAP_POLL_MS = 30_000
# A failed reconciliation request (refused, timed out, or answered with something its schema
# refuses) is asked again after a delay that doubles from the first bound to the second: an
# answer that is always refused must not become a flood that spends the connection's message
# budget, and the longest delay still leaves several tries inside the handshake deadline.
INFO_RETRY_MIN_MS = 250
INFO_RETRY_MAX_MS = 2_000


def info_retry_delay_ms(failures: int) -> int:
    """The wait before asking again after the `failures`-th failure in a row (1, 2, ...)."""
    return min(INFO_RETRY_MAX_MS, INFO_RETRY_MIN_MS << min(failures - 1, 16))


class DiscoveryError(RuntimeError):
    """A configured market does not exist on the exchange: trading must not start."""


@dataclass
class ReconcilePlan:
    """The requests of one epoch, which are still unanswered, and what each answer is for."""

    epoch: int
    outstanding: dict[str, dict] = field(default_factory=dict)  # request key -> info payload
    # request key -> the READY-TRADING part it settles (positions, open_orders, fills)
    parts: dict[str, str] = field(default_factory=dict)
    handlers: dict[str, AnswerHandler] = field(default_factory=dict)  # key -> its continuation
    failures: dict[str, int] = field(default_factory=dict)  # request key -> failures in a row
    retry_at: dict[str, int] = field(default_factory=dict)  # request key -> when to ask again

    def add(
        self, key: str, payload: dict, handler: AnswerHandler | None = None, part: str = ""
    ) -> None:
        self.outstanding[key] = payload
        if handler is not None:
            self.handlers[key] = handler
        if part:
            self.parts[key] = part

    def complete(self) -> bool:
        return not self.outstanding

    def part_done(self, part: str) -> bool:
        """Every request that settles `part` is answered."""
        return all(self.parts.get(k) != part for k in self.outstanding)

    def schedule_retry(self, key: str, now_ms: int) -> None:
        n = self.failures[key] = self.failures.get(key, 0) + 1
        self.retry_at[key] = now_ms + info_retry_delay_ms(n)

    def due_retries(self, now_ms: int) -> list[str]:
        """Keys whose backoff has passed and that are still unanswered (taken off the list)."""
        due = [k for k, at in self.retry_at.items() if at <= now_ms]
        for k in due:
            del self.retry_at[k]
        return [k for k in due if k in self.outstanding]


def plan_requests(epoch: int, *, user: str | None, dexes: list[str]) -> ReconcilePlan:
    """The epoch's requests without their continuations (the dispatcher adds them)."""
    plan = ReconcilePlan(epoch)
    plan.add("perpDexs", {"type": "perpDexs"})
    plan.add("spotMeta", {"type": "spotMeta"})  # names each dex's collateral token
    for dex in dexes:
        plan.add(f"meta:{dex}", {"type": "meta", "dex": dex})
    if user is not None:
        for dex in dexes:
            plan.add(
                f"positions:{dex}",
                {"type": "clearinghouseState", "user": user, "dex": dex},
                part="positions",
            )
            plan.add(
                f"open_orders:{dex}",
                {"type": "openOrders", "user": user, "dex": dex},
                part="open_orders",
            )
        plan.add("fills", {"type": "userFills", "user": user}, part="fills")
        plan.add("fees", {"type": "userFees", "user": user})
    return plan


# An order adopted from openOrders without a cloid is tracked under this prefix and its oid.
ADOPTED_BY_OID = "oid:"


def has_cloid(info: OrderInfo) -> bool:
    """The order is tracked under a real cloid (not one adopted by its oid alone)."""
    return not info.cloid.startswith(ADOPTED_BY_OID)


def order_status_key(cloid: str) -> str:
    return f"orderStatus:{cloid}"


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
                delisted=bool(a.get("isDelisted")),
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


def _listed_sizes(row: dict) -> tuple[Decimal, Decimal] | None:
    """(original size, remaining size) of an openOrders row, or None when the row does not
    say (an order of unknown size cannot be adopted: cancelling it needs only its oid, but
    counting its fills needs its size)."""
    try:
        remaining = Decimal(str(row["sz"]))
        orig = Decimal(str(row.get("origSz", row["sz"])))
    except (KeyError, ArithmeticError, ValueError):
        return None
    if not (remaining.is_finite() and orig.is_finite()) or remaining <= 0 or orig < remaining:
        return None
    return orig, remaining


class Reconciler:
    """The info posts of an epoch and what their answers change."""

    def __init__(
        self,
        *,
        conn: Any,
        wire: Any,
        epoch: Any,
        orders: Any,
        positions: Any,
        fills: Any,
        specs: dict[str, MarketSpec],
        gates: dict[str, Any],
        fees: Any,
        coins: list[str],
        retired: set[str],
        dexes: list[str],
        user: str | None,
        trading: bool,
        clock: Any,
        counters: Any,
        decode_errors: Any,
        account_value: Callable[[str, Decimal | None], None],
        margin_state: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.conn = conn
        self.wire = wire
        self.epoch = epoch  # the ConnectionEpoch: told how the plan progresses
        self.orders = orders
        self.positions = positions
        self.fills = fills  # applies the recent fills the plan asks for
        self.specs = specs
        self.gates = gates
        self.fees = fees
        self.coins = coins
        # traded markets the meta lists as delisted: they never trade again and READY no
        # longer waits for their data (shared with Ready and the epoch)
        self.retired = retired
        self.dexes = dexes
        self.user = user
        self.trading = trading
        self.clock = clock
        self.counters = counters
        self.decode_errors = decode_errors
        # where each dex's account value from a clearinghouseState answer goes (dynamic sizing)
        self.account_value = account_value
        # where each dex's whole clearinghouseState answer goes (the liquidation-buffer gate)
        self.margin_state = margin_state
        self.plan: ReconcilePlan | None = None
        self._metas: dict[str, Any] = {}
        self._perp_dexs: Any = None
        # dex -> {"token": collateral name, "account_value", "available"} (summary, status)
        self.collateral: dict[str, dict[str, str]] = {}
        self._collateral_index: dict[str, int] = {}
        self._token_names: dict[int, str] = {}
        self.oi_next_ms = 0  # when the OI caps are asked next
        # dexes whose open-order list must be read again once the read in flight answers: a
        # stranger's order that appeared after that read went out is not in its answer
        self._open_orders_reask: set[str] = set()

    # ------------------------------------------------------------------------------------
    # the epoch's plan

    def start(self, cmd: Any) -> None:
        """StartReconciliation: ask everything the epoch must know before it goes live."""
        epoch = cmd.epoch
        plan = plan_requests(epoch, user=self.user if self.trading else None, dexes=self.dexes)
        self.plan, self._metas, self._perp_dexs = plan, {}, None
        for key, payload in list(plan.outstanding.items()):
            plan.handlers[key] = self._plan_handler(payload)
            self._ask_plan_part(plan, key)
        for info, m in self.orders.unknown_orders():
            self.query_order(info, m.oid)

    def add_to_plan(self, key: str, payload: dict, handler: AnswerHandler) -> None:
        """A request of another component (the account check) that the epoch's plan waits
        for like its own."""
        plan = self.plan
        if plan is None:
            return
        plan.add(key, payload, handler)
        self._ask_plan_part(plan, key)

    def end_epoch(self) -> None:
        self.plan = None

    def _plan_handler(self, payload: dict) -> AnswerHandler:
        """What the answer to one of the plan's own requests changes, by its info type."""
        typ = payload["type"]
        if typ == "perpDexs":
            return self._set_perp_dexs
        if typ == "spotMeta":
            return self._set_spot_tokens
        if typ == "meta":
            return partial(self._set_meta, payload["dex"])
        if typ == "clearinghouseState":
            return partial(self._on_positions, f"positions:{payload['dex']}", payload["dex"])
        if typ == "openOrders":
            return partial(self._open_orders_answer, payload["dex"])
        if typ == "userFills":
            return self._fills_answer
        if typ == "userFees":
            return self._fees_answer
        raise ValueError(f"no handler for reconciliation request {typ!r}")

    def _ask_plan_part(self, plan: ReconcilePlan, key: str) -> None:
        sent = self.ask(
            plan.outstanding[key],
            key,
            on_answer=partial(self._plan_answer, plan.epoch, key),
            on_failure=partial(self._plan_part_failed, plan.epoch, key),
        )
        if not sent:  # no room on the wire: ask again after the backoff, like a failed answer
            plan.schedule_retry(key, self.clock.now_ms())

    def _plan_answer(self, epoch: int, key: str, data: Any, now: int) -> None:
        """An answer to one of the epoch plan's requests: applied once, in its own epoch."""
        plan = self.plan
        if plan is None or epoch != plan.epoch or key not in plan.outstanding:
            self.counters["stale_info"] += 1
            return
        payload = plan.outstanding.pop(key)
        plan.handlers[key](data, now)
        if payload["type"] in ("perpDexs", "meta"):
            self._after_discovery()
        self.epoch.reconciliation_progress(plan, now)

    def _set_perp_dexs(self, data: Any, now: int) -> None:
        self._perp_dexs = data

    def _set_meta(self, dex: str, data: Any, now: int) -> None:
        self._metas[dex] = data
        self._collateral_index[dex] = int(data.get("collateralToken", 0))
        self._name_collateral()

    def _set_spot_tokens(self, data: Any, now: int) -> None:
        self._token_names = {t["index"]: t["name"] for t in data.get("tokens", [])}
        self._name_collateral()

    def _name_collateral(self) -> None:
        """Each traded dex's collateral token by name, once spotMeta and its meta are in."""
        for dex, index in self._collateral_index.items():
            name = self._token_names.get(index)
            if name is not None:
                self.collateral.setdefault(dex, {})["token"] = name

    def _open_orders_answer(self, dex: str, data: Any, now: int) -> None:
        self.reconcile_open_orders(data or [], dex)

    def _fills_answer(self, data: Any, now: int) -> None:
        self.fills.apply(msgspec.convert(data or [], list[F.WsFill]), snapshot=True)
        if self.positions.needs_state:
            self.read_positions_again()

    def _fees_answer(self, data: Any, now: int) -> None:
        if isinstance(data, dict) and data.get("userCrossRate") is not None:
            add = data.get("userAddRate")
            self.fees.set_user_rates(
                Decimal(str(data["userCrossRate"])),
                Decimal(str(data.get("activeReferralDiscount") or "0")),
                None if add is None else Decimal(str(add)),
            )

    def _on_positions(self, key: str, dex: str, data: Any, now: int) -> None:
        """A clearinghouseState answer for one dex: the exchange's sizes, unless the answer is
        behind fills that reached the bot while it was out (see hip3.execution.positions)."""
        self._note_margin(dex, data)
        sizes = positions_from_state(data)
        scope = {c for c, s in self.specs.items() if s.dex == dex} | {
            c for c in self.coins if dexes_of([c]) == [dex]
        }
        for d in self.positions.reconcile(sizes, scope | set(sizes), request_key=key):
            log.warning("position reconciled to exchange: %s", d)
        self.account_value(dex, account_value_of(data))  # for dynamic sizing
        if self.margin_state is not None:
            self.margin_state(dex, data)

    def _note_margin(self, dex: str, state: Any) -> None:
        """The dex's account value and what may be withdrawn (the margin free for new
        positions), in the dex's collateral token, as the last state answer says."""
        entry = self.collateral.setdefault(dex, {})
        summary = state.get("marginSummary") if isinstance(state, dict) else None
        if isinstance(summary, dict) and summary.get("accountValue") is not None:
            entry["account_value"] = str(summary["accountValue"])
        if isinstance(state, dict) and state.get("withdrawable") is not None:
            entry["available"] = str(state["withdrawable"])

    def _after_discovery(self) -> None:
        if self._perp_dexs is not None and len(self._metas) == len(self.dexes):
            try:
                fresh = build_specs(self._perp_dexs, self._metas, self.coins)
            except DiscoveryError as exc:
                raise FatalError(str(exc)) from exc
            self.apply_specs(fresh)

    def apply_specs(self, fresh: dict[str, MarketSpec]) -> None:
        """Discovery of this epoch. A changed spec of a traded market trips its ParamChange gate,
        which stays closed until an operator accepts the new parameters."""
        for coin, spec in fresh.items():
            self.fees.set_spec(spec)
            gate = self.gates.get(coin)
            if gate is not None:
                gate.on_params(spec)
                gate.set_delisted(spec.delisted)
                if spec.delisted and coin not in self.retired:
                    self.retired.add(coin)
                    self.epoch.market_retired(coin, "delisted")
                    self.counters["markets_delisted"] += 1
                    log.warning(
                        "%s is delisted (asset %d keeps its id): no more entries, and READY "
                        "no longer waits for its data",
                        coin,
                        spec.asset,
                    )
        self.specs.clear()
        self.specs.update(fresh)
        # orders adopted before discovery answered (openOrders can come first) get their asset
        # id now: a cancel needs it
        for info, _m in self.orders.live_orders():
            if info.asset < 0 and info.coin in fresh:
                info.asset = fresh[info.coin].asset

    def _plan_part_failed(self, epoch: int, key: str, reason: str, now: int) -> None:
        plan = self.plan
        if plan is not None and epoch == plan.epoch == self.conn.epoch and key in plan.outstanding:
            plan.schedule_retry(key, now)  # asked again by `retry_due` after the backoff

    def retry_due(self, now: int) -> None:
        """Ask again the reconciliation requests whose backoff has passed (on every tick)."""
        plan = self.plan
        if plan is None or not plan.retry_at or plan.epoch != self.conn.epoch:
            return
        for key in plan.due_retries(now):
            self.counters["info_retries"] += 1
            self._ask_plan_part(plan, key)

    def resync(self) -> None:
        """On every tick of a live connection: ask about orders left unknown, about positions
        the bot cannot vouch for, and for open-order lists that failed or went stale."""
        if not (self.orders.machines or self.positions.needs_state or self._open_orders_reask):
            return  # the usual tick: nothing is in doubt (cheaper than the connection's state)
        if self.conn.state != "live":
            return
        for info, m in self.orders.unknown_orders():
            if not self.asking(order_status_key(info.cloid)):
                self.query_order(info, m.oid)
        if self.positions.needs_state:
            self.read_positions_again()
        if self._open_orders_reask:
            self.reask_open_orders()

    # ------------------------------------------------------------------------------------
    # info requests

    def ask(
        self,
        payload: dict,
        key: str,
        *,
        on_answer: AnswerHandler,
        on_failure: FailureHandler | None = None,
    ) -> bool:
        """Send one info request whose answer goes to `on_answer` once its schema accepts it;
        a failed or malformed answer goes to `on_failure` (None: nothing to undo). False when
        the wire refused to send it (the caller decides whether to ask again)."""
        if payload.get("type") == "clearinghouseState":
            self.positions.state_requested(key)
        query = InfoQuery(
            key,
            payload["type"],
            self.conn.epoch,
            on_answer=on_answer,
            on_failure=on_failure,
            report_bad=self._bad_info_answer,
        )
        if self.wire.post_info(payload, kind=f"info:{key}", owner=query) is None:
            self.counters["info_refused"] += 1
            return False
        return True

    def asking(self, key: str) -> bool:
        """An info request named `key` is in flight."""
        return any(
            isinstance(q.owner, InfoQuery) and q.owner.key == key for q in self.wire.posts.pending()
        )

    def _bad_info_answer(self, query: InfoQuery, bad: BadAnswer) -> None:
        """Counted and logged sparsely like a bad frame, never adopted: the request fails as
        if its post had failed (reconciliation asks again) and never trips the HardStop."""
        n = self.decode_errors["bad_answer"] = self.decode_errors["bad_answer"] + 1
        if n & (n - 1) == 0:
            log.warning("bad info answer #%d to %s: %s", n, query.key, bad.reason)

    # ------------------------------------------------------------------------------------
    # positions and orders the bot cannot vouch for

    def read_positions_again(self) -> None:
        """Ask the exchange for the positions of every dex holding a coin whose size the bot
        cannot vouch for (a fill of an unknown order, a divergence); one request per dex."""
        if self.user is None:
            return
        dexes = {dexes_of([c])[0] for c in self.positions.needs_state}
        plan = self.plan
        for dex in sorted(dexes):
            key = f"positions_again:{dex}"
            if self.asking(key) or (plan is not None and f"positions:{dex}" in plan.outstanding):
                continue
            self.counters["positions_read_again"] += 1
            self.ask(
                {"type": "clearinghouseState", "user": self.user, "dex": dex},
                key,
                # on failure the coins stay unsettled; the next fill or tick asks again
                on_answer=partial(self._on_positions, key, dex),
            )

    def read_margin(self, dex: str) -> None:
        """Ask for one dex's clearinghouseState because the liquidation-buffer gate has none or
        its last one is behind the tracked positions (the bot's own fills do not trigger a
        read); one in flight per dex, none while another read of the dex is out."""
        if self.user is None or self.conn.state != "live":
            return
        key, plan = f"margin:{dex}", self.plan
        if (
            self.asking(key)
            or self.asking(f"positions_again:{dex}")
            or (plan is not None and f"positions:{dex}" in plan.outstanding)
        ):
            return
        self.counters["margin_read"] += 1
        self.ask(
            {"type": "clearinghouseState", "user": self.user, "dex": dex},
            key,
            on_answer=partial(self._on_positions, key, dex),
        )

    def reconcile_order(self, cmd: Any) -> None:
        """ReconcileOrder: an order's outcome became unknown: ask the exchange now if the
        connection is live (otherwise the next epoch's reconciliation asks)."""
        cloid = cmd.cloid
        info = self.orders.info.get(cloid)
        if info is None or self.conn.state != "live":
            return
        if self.asking(order_status_key(cloid)):
            return  # already asked
        self.query_order(info, cmd.oid)

    def query_order(self, info: OrderInfo, oid: int | None) -> None:
        payload = {
            "type": "orderStatus",
            "user": self.user,
            "oid": oid if oid is not None else info.cloid,
        }
        # on failure the order stays unknown; the next epoch's reconciliation asks again
        self.ask(
            payload,
            order_status_key(info.cloid),
            on_answer=partial(self._resolve_order_status, info.cloid),
        )

    def read_open_orders_again(self, coin: str) -> None:
        """An order of this account the bot does not know: list the dex's open orders, so it
        is adopted from the exchange's own record (and cancel-all covers it)."""
        if self.user is None:
            return
        self._ask_open_orders(dexes_of([coin])[0])

    def _ask_open_orders(self, dex: str) -> None:
        key = f"open_orders_again:{dex}"
        if self.asking(key):
            # the answer in flight may predate the order: read once more when it arrives
            self._open_orders_reask.add(dex)
            return
        self._open_orders_reask.discard(dex)
        self.counters["open_orders_read_again"] += 1
        self.ask(
            {"type": "openOrders", "user": self.user, "dex": dex},
            key,
            on_answer=partial(self._open_orders_again_answer, dex),
            on_failure=partial(self._open_orders_again_failed, dex),
        )

    def _open_orders_again_answer(self, dex: str, data: Any, now: int) -> None:
        self.reconcile_open_orders(data or [], dex)
        if dex in self._open_orders_reask:
            self._ask_open_orders(dex)

    def _open_orders_again_failed(self, dex: str, reason: str, now: int) -> None:
        self._open_orders_reask.add(dex)  # asked again on a tick while the connection is live

    def reask_open_orders(self) -> None:
        """Ask again for the open-order lists that failed or went stale (on a live tick)."""
        for dex in sorted(self._open_orders_reask):
            if not self.asking(f"open_orders_again:{dex}"):
                self._ask_open_orders(dex)

    def reconcile_open_orders(self, rows: list, dex: str | None = None) -> None:
        """Adopt what the exchange lists and settle what it no longer lists (of `dex` only,
        when the list is one dex's)."""
        listed: set[str] = set()
        for row in rows:
            oid, cloid = row.get("oid"), row.get("cloid")
            known = self.orders.cloid_for(oid, cloid)
            if known is None:
                # resting on the exchange but not ours this session: adopt it so cancel-all covers
                # it, with the sizes the exchange lists (never made up)
                key = cloid or f"{ADOPTED_BY_OID}{oid}"
                sizes = _listed_sizes(row)
                if sizes is None:
                    self.counters["adopt_refused_no_size"] += 1
                    log.warning("open order without a usable size not adopted: %s", row)
                    continue
                orig, remaining = sizes
                info = OrderInfo(
                    cloid=key,
                    coin=row.get("coin", "?"),
                    asset=self.specs[row["coin"]].asset if row.get("coin") in self.specs else -1,
                    is_buy=row.get("side") == "B",
                    size=orig,
                    px=str(row.get("limitPx", "0")),
                    reduce_only=bool(row.get("reduceOnly")),
                    purpose="adopted",
                    created_ms=self.clock.now_ms(),
                )
                if not self.orders.is_live(key) and self.orders.was_terminal(key) is None:
                    self.orders.add(info)
                    self.orders.send(key, "adopt", oid=oid, filled_sz=str(orig - remaining))
                    self.counters["adopted_orders"] += 1
                listed.add(key)
            else:
                listed.add(known)
                m = self.orders.machines.get(known)
                if m is not None and m.state == "unknown":
                    self.orders.send(known, "resolve", outcome="resting", oid=oid)
        # live orders the exchange no longer lists are filled or cancelled: ask about each
        for info, m in self.orders.live_orders():
            if dex is not None and dexes_of([info.coin]) != [dex]:
                continue  # another dex's list says nothing about it
            if info.cloid not in listed and m.state in ("resting", "partially_filled", "unknown"):
                self.query_order(info, m.oid)

    def _resolve_order_status(self, cloid: str, data: Any, now: int) -> None:
        m = self.orders.machines.get(cloid)
        if m is None:
            return
        if not isinstance(data, dict) or data.get("status") != "order":
            outcome, oid = "absent", None
        else:
            inner = data.get("order", {})
            kind = classify_update_status(str(inner.get("status", "")))
            oid = inner.get("order", {}).get("oid")
            outcome = {
                "open": "resting",
                "filled": "filled",
                "cancelled": "cancelled",
                "rejected": "rejected",
            }.get(kind, "absent")
        if m.state != "unknown":
            # resting orders the exchange no longer lists: settle from the status
            if outcome == "filled":
                self.orders.send(
                    cloid,
                    "filled_at_post",
                    oid=oid or m.oid,
                    total_sz=str(self.orders.info[cloid].size),
                )
            elif outcome in ("cancelled", "absent"):
                self.orders.send(cloid, "cancelled", status=outcome)
            return
        self.orders.send(cloid, "resolve", outcome=outcome, oid=oid)

    # ------------------------------------------------------------------------------------
    # open-interest caps

    def poll_oi_caps(self, now: int) -> None:
        """Which traded coins sit at their open-interest cap: asked when an epoch goes live and
        every 30 s; the answer opens or closes each market's OI-cap gate."""
        if now < self.oi_next_ms or self.conn.state != "live":
            return  # the clock first: it is the cheaper question
        self.oi_next_ms = now + OI_CAP_POLL_MS
        for dex in self.dexes:
            if dex:  # caps are a HIP-3 dex facility
                self.ask(
                    {"type": "perpsAtOpenInterestCap", "dex": dex},
                    f"oi_cap:{dex}",
                    on_answer=partial(self._on_oi_caps, dex),
                    on_failure=self._oi_caps_failed,
                )

    def _oi_caps_failed(self, reason: str, now: int) -> None:
        self.counters["oi_cap_query_failed"] += 1  # the gates keep the last known state; the
        # next poll asks again

    def _on_oi_caps(self, dex: str, data: Any, now: int) -> None:
        if not isinstance(data, list):
            self.counters["oi_cap_bad_answer"] += 1
            return
        capped = {c for c in data if isinstance(c, str)}
        for coin, gate in self.gates.items():
            if split_coin(coin)[0] == dex:
                gate.set_oi_capped(coin in capped)
