"""What the guard does once the bot is gone: cancel, flatten, verify.

Rounds, at most `guard.max_attempts`: read the account on every configured dex (`openOrders`,
`clearinghouseState`); stop when nothing is open (and, without `guard.flatten`, as soon as no
order is); otherwise cancel every open order by oid, then, with `guard.flatten`, send one
reduce-only IOC per position priced through a fresh `l2Book` (`hip3/guard/orders.py`), and
pause `guard.retry_backoff_s`. Cancels go first: they cannot make anything worse, and an order
left resting could fill against the account while it is being closed.

Every outcome is taken from the exchange, never from what was sent: the last step reads the
account again and the result says what that read found (or that it could not read).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.config import GuardConfig, as_decimal
from hip3.guard.link import ExchangeLink, LinkError
from hip3.guard.orders import Market, NoPrice, cancel_actions, flatten_order, markets_from
from hip3.protocol import frames as F
from hip3.protocol.actions import order_action
from hip3.protocol.numbers import PriceError, SizeError
from hip3.runtime import account_check

__all__ = ["AccountState", "Guardian", "Outcome"]

log = logging.getLogger("hip3.guard")


@dataclass(frozen=True)
class AccountState:
    """The exchange's answer for every configured dex."""

    positions: dict[str, Decimal]
    orders: list[dict[str, Any]]

    def clean(self, *, positions_count: bool) -> bool:
        return not self.orders and (not positions_count or not self.positions)

    def describe(self) -> str:
        shown = ", ".join(f"{c} {s}" for c, s in sorted(self.positions.items())) or "none"
        return f"positions {shown}; {len(self.orders)} open order(s)"


@dataclass
class Outcome:
    verified: bool  # the last read of the account succeeded
    state: AccountState | None  # what it found
    rounds: int
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.verified and self.state is not None and self.state.clean(positions_count=True)


class Guardian:
    """Cancels, flattens and verifies one account over the guard's own connection."""

    def __init__(
        self, link: ExchangeLink, *, user: str, dexes: tuple[str, ...], cfg: GuardConfig
    ) -> None:
        self.link = link
        self.user = user
        self.dexes = dexes
        self.cfg = cfg
        self.markets: dict[str, Market] = {}

    async def discover(self) -> dict[str, Market]:
        """Asset ids and lot sizes of every market on the configured dexes, asked afresh (ids
        follow list positions, so they are never trusted from an earlier answer)."""
        perp_dexs = await self.link.info({"type": "perpDexs"})
        metas = {}
        for dex in self.dexes:
            metas[dex] = await self.link.info({"type": "meta", "dex": dex})
        self.markets = markets_from(perp_dexs, metas)
        return self.markets

    async def signer_problem(self, signer: str, now_wall_ms: int) -> str | None:
        """Why the key `signer` may not trade the account (it is neither the account nor an
        approved, unexpired agent of it), or None. The bot's own account check judges the
        answers (`hip3/runtime/account_check.py`); margin is not asked for: a guard must cancel
        orders even on an account that holds none."""
        signer = signer.lower()
        answers = {}
        for key, payload in account_check.requests(signer=signer, user=self.user, dexes=[]).items():
            answers[key] = await self.link.info(payload)
        return account_check.judge(
            signer=signer,
            user=self.user,
            answers=answers,
            now_wall_ms=now_wall_ms,
            expiry_margin_ms=account_check.AGENT_EXPIRY_MARGIN_MS,
        )

    async def read_state(self) -> AccountState:
        positions: dict[str, Decimal] = {}
        orders: list[dict[str, Any]] = []
        for dex in self.dexes:
            state = await self.link.info(
                {"type": "clearinghouseState", "user": self.user, "dex": dex}
            )
            for entry in state.get("assetPositions", []):
                size = Decimal(entry["position"]["szi"])
                if size != 0:
                    positions[entry["position"]["coin"]] = size
            orders.extend(
                await self.link.info({"type": "openOrders", "user": self.user, "dex": dex})
            )
        return AccountState(positions=positions, orders=orders)

    async def run(self) -> Outcome:
        errors: list[str] = []
        await self._rediscover(errors)
        rounds = 0
        for rounds in range(1, self.cfg.max_attempts + 1):
            if not self.markets:  # neither the start-up nor an earlier round found them
                await self._rediscover(errors)
            try:
                state = await self.read_state()
            except LinkError as exc:
                errors.append(f"round {rounds}: {exc}")
                log.error("guard: round %d: cannot read the account: %s", rounds, exc)
                await asyncio.sleep(self.cfg.retry_backoff_s)
                continue
            if state.clean(positions_count=self.cfg.flatten):
                log.info("guard: round %d: %s: nothing to do", rounds, state.describe())
                break
            log.info("guard: round %d: %s", rounds, state.describe())
            if state.orders:
                await self._cancel(state.orders, errors)
            if self.cfg.flatten and state.positions:
                await self._flatten(state.positions, errors)
            await asyncio.sleep(self.cfg.retry_backoff_s)
        try:
            final = await self.read_state()
        except LinkError as exc:
            errors.append(f"verify: {exc}")
            log.error("guard: verify: cannot read the account: %s", exc)
            return Outcome(verified=False, state=None, rounds=rounds, errors=errors)
        log.info(
            "guard: verify: %s (asked the exchange on dexes %s)", final.describe(), self._dexes()
        )
        return Outcome(verified=True, state=final, rounds=rounds, errors=errors)

    async def _rediscover(self, errors: list[str]) -> None:
        try:
            await self.discover()
        except (LinkError, ValueError) as exc:
            errors.append(f"discovery: {exc}")
            known = f"using the {len(self.markets)} known" if self.markets else "none known yet"
            log.error("guard: discovery failed (%s); %s", exc, known)
            return
        log.info("guard: discovered %d markets on dexes %s", len(self.markets), self._dexes())

    def _dexes(self) -> str:
        return ", ".join(repr(d) for d in self.dexes)

    async def _cancel(self, orders: list[dict[str, Any]], errors: list[str]) -> None:
        actions, unknown = cancel_actions(orders, self.markets)
        for order in unknown:
            errors.append(f"cancel: {order['coin']} is not on a configured dex")
            log.error(
                "guard: cannot cancel oid %s: %s is not a known market", order["oid"], order["coin"]
            )
        for action in actions:
            try:
                frame = await self.link.action(action)
            except LinkError as exc:
                errors.append(f"cancel: {exc}")
                log.error("guard: cancel of %d order(s) failed: %s", len(action["cancels"]), exc)
                continue
            statuses = F.order_statuses(frame)
            done = sum(1 for s in statuses if s.kind == "success")
            # "never placed, already canceled, or filled": gone either way; the next read says
            log.info(
                "guard: cancelled %d of %d order(s)%s",
                done,
                len(action["cancels"]),
                "".join(f"; {s.error}" for s in statuses if s.kind != "success"),
            )

    async def _flatten(self, positions: dict[str, Decimal], errors: list[str]) -> None:
        by_dex: dict[str, list[Any]] = {}
        for coin, szi in sorted(positions.items()):
            market = self.markets.get(coin)
            if market is None:
                errors.append(f"flatten: {coin} is not on a configured dex")
                log.error("guard: cannot flatten %s: not a known market", coin)
                continue
            try:
                book = await self.link.info({"type": "l2Book", "coin": coin})
                order = flatten_order(market, szi, book, as_decimal(self.cfg.slippage_bps))
            except (LinkError, NoPrice, PriceError, SizeError) as exc:
                errors.append(f"flatten {coin}: {exc}")
                log.error("guard: cannot price a flatten of %s: %s", coin, exc)
                continue
            by_dex.setdefault(coin.partition(":")[0] if ":" in coin else "", []).append(order)
        for orders in by_dex.values():
            for order in orders:
                log.info("guard: flatten: %s", order.describe())
            try:
                frame = await self.link.action(order_action([o.wire for o in orders]))
            except LinkError as exc:
                errors.append(f"flatten: {exc}")
                log.error("guard: flatten of %d position(s) refused: %s", len(orders), exc)
                continue
            statuses = F.order_statuses(frame)
            for i, order in enumerate(orders):
                status = statuses[i] if i < len(statuses) else None
                if status is None:
                    text = "no status in the answer"
                elif status.kind == "filled":
                    text = f"filled {status.total_sz} @ {status.avg_px}"
                elif status.kind == "error":
                    text = f"error: {status.error}"
                else:
                    text = status.kind
                log.info("guard: flatten %s: %s", order.coin, text)
