"""Competing takers: simulated traders that also take stale quotes.

On a HIP-3 book the oracle moves first and the makers follow late (`hip3.sim.feeds`), so a
stale quote is there for whoever takes it first. Alone on the simulator the bot takes every
one of them and its fill rate means nothing; on the exchange others race for the same quote.

Each competitor watches every market. When the best ask sits at least `min_edge_bps` below
the oracle (or the best bid that far above it), it decides at once and, `reaction_ms` later,
sends a signed IOC that takes every level up to that edge, for at most `notional_usd`, with
priority `priority_bps`. The order goes through the same path as a client's: signature,
nonce, margin and, with the timing model on, the same mempool slot and block ordering
(`hip3.sim.timing`), so a bot with more priority or a faster reaction beats it, and a faster
or richer competitor beats the bot. A competitor has one take in flight per market at a
time. Competitors are ordinary funded accounts (derived from the seed like the test
account), so their fills and positions can be read with info requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import coincurve

from hip3.sim.events import BookChanged, CtxChanged
from hip3.sim.feeds import valid_px
from hip3.sim.scenario import CompetitorParams
from hip3.sim.signatures import L1Verifier, action_hash

log = logging.getLogger(__name__)

_BPS = Decimal("0.0001")
STAKING_HYPE = Decimal(1_000_000)  # a competitor's priority fees never run out


@dataclass(frozen=True, slots=True)
class Opportunity:
    coin: str
    is_buy: bool
    limit_px: Decimal  # the worst price worth taking: the oracle minus (plus) the edge
    size: Decimal


class MarketView:
    """What a competitor reads from the exchange core: oracle and best bid/ask (public calls)."""

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange

    def top(self, coin: str) -> tuple[Decimal, Decimal | None, Decimal | None]:
        bid, ask = self._exchange.bbo(coin)["bbo"]
        oracle = Decimal(self._exchange.asset_ctx(coin)["ctx"]["oraclePx"])
        return (
            oracle,
            Decimal(bid["px"]) if bid else None,
            Decimal(ask["px"]) if ask else None,
        )


def find_opportunity(
    asset: Any,
    oracle: Decimal,
    bid: Decimal | None,
    ask: Decimal | None,
    params: CompetitorParams,
) -> Opportunity | None:
    """A take worth sending, or None: quotes past the oracle by at least the edge."""
    edge = params.min_edge_bps * _BPS
    lot = Decimal(1).scaleb(-asset.sz_decimals)
    if ask is not None and ask <= oracle * (1 - edge):
        limit = valid_px(oracle * (1 - edge), asset.sz_decimals, ROUND_FLOOR)
        is_buy = True
    elif bid is not None and bid >= oracle * (1 + edge):
        limit = valid_px(oracle * (1 + edge), asset.sz_decimals, ROUND_CEILING)
        is_buy = False
    else:
        return None
    if limit <= 0:
        return None
    size = (params.notional_usd / limit).quantize(lot, rounding=ROUND_FLOOR)
    if size <= 0:
        return None
    return Opportunity(asset.coin, is_buy, limit, size)


class Signer:
    """Signs L1 actions for one competitor key, with the exchange's own hashing."""

    def __init__(self, private_key: str, source: str) -> None:
        self._key = coincurve.PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
        self._verifier = L1Verifier(source)
        self._last_nonce = 0

    def sign(self, action: dict[str, Any], now_ms: int) -> dict[str, Any]:
        nonce = max(now_ms, self._last_nonce + 1)
        self._last_nonce = nonce
        digest = self._verifier.digest(action_hash(action, nonce, None, None))
        compact = self._key.sign_recoverable(digest, hasher=None)
        r, s, v = compact[:32], compact[32:64], compact[64]
        signature = {"r": "0x" + r.hex(), "s": "0x" + s.hex(), "v": 27 + v}
        return {"action": action, "nonce": nonce, "signature": signature}


def _wire(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def ioc_action(asset_id: int, opportunity: Opportunity, rate: int) -> dict[str, Any]:
    order = {
        "a": asset_id,
        "b": opportunity.is_buy,
        "p": _wire(opportunity.limit_px),
        "s": _wire(opportunity.size),
        "r": False,
        "t": {"limit": {"tif": "Ioc"}},
    }
    return {"type": "order", "orders": [order], "grouping": {"p": rate} if rate else "na"}


class Competitor:
    def __init__(self, params: CompetitorParams, address: str, signer: Signer) -> None:
        self.params = params
        self.address = address
        self.signer = signer
        self.in_flight: set[str] = set()  # coins with a take sent and not yet executed
        self.sent = 0
        self.answers: list[dict[str, Any]] = []  # the last few answers, for inspection
        self.filled = 0


class CompetingTakers:
    """Every competitor of a run. Collaborators: the exchange core (accounts, market reads),
    `submit(payload, on_answer)` (the path a client's action takes), `now_ms` and
    `call_later(ms, callback)` (time)."""

    MAX_ANSWERS_KEPT = 50

    def __init__(
        self,
        exchange: Any,
        params: list[CompetitorParams],
        *,
        submit: Callable[[dict[str, Any], Callable[[Any], None]], None],
        call_later: Callable[[float, Callable[[], None]], None],
        now_ms: Callable[[], float] = lambda: time.time_ns() / 1e6,
        source: str = "b",
    ) -> None:
        self._view = MarketView(exchange)
        self._universe = exchange.universe
        self._submit = submit
        self._call_later = call_later
        self._now_ms = now_ms
        self._dirty: set[str] = set()
        self._check_scheduled = False
        self._stopped = False
        self.competitors: list[Competitor] = []
        for p in params:
            address, key = exchange.new_account(p.account_usdc, every_dex=True)
            exchange.staking.fund(address, STAKING_HYPE)
            self.competitors.append(Competitor(p, address, Signer(key, source)))

    def stop(self) -> None:
        """No more looks and no more sends (takes already in a block still execute)."""
        self._stopped = True

    def on_event(self, event: object) -> None:
        """Exchange event tap: a book or oracle change is a reason to look (soon, not here:
        this runs inside the exchange call)."""
        if not self.competitors or not isinstance(event, BookChanged | CtxChanged):
            return
        self._dirty.add(event.coin)
        if not self._check_scheduled:
            self._check_scheduled = True
            self._call_later(0, self._check)

    def _check(self) -> None:
        self._check_scheduled = False
        if self._stopped:
            return
        coins, self._dirty = self._dirty, set()
        for coin in sorted(coins):
            asset = self._universe.by_coin.get(coin)
            if asset is None:
                continue
            try:
                oracle, bid, ask = self._view.top(coin)
            except Exception:  # a halted or removed market: nothing to take
                log.debug("cannot read %s", coin, exc_info=True)
                continue
            for competitor in self.competitors:
                if coin in competitor.in_flight:
                    continue
                opportunity = find_opportunity(asset, oracle, bid, ask, competitor.params)
                if opportunity is not None:
                    self._decide(competitor, asset.asset_id, opportunity)

    def _decide(self, competitor: Competitor, asset_id: int, opportunity: Opportunity) -> None:
        coin = opportunity.coin
        competitor.in_flight.add(coin)
        action = ioc_action(asset_id, opportunity, competitor.params.rate)

        def answered(response: Any) -> None:
            competitor.in_flight.discard(coin)
            answers = competitor.answers
            answers.append(response)
            del answers[: -self.MAX_ANSWERS_KEPT]
            statuses = _statuses(response)
            filled = sum(1 for s in statuses if isinstance(s, dict) and "filled" in s)
            competitor.filled += filled
            # After a fill the quote behind may still be stale: look again. After a miss or
            # a refusal, wait for the next book or oracle change instead of retrying at once.
            if filled:
                self._dirty.add(coin)
            if filled and not self._check_scheduled:
                self._check_scheduled = True
                self._call_later(0, self._check)

        def send() -> None:
            if self._stopped:
                return
            payload = competitor.signer.sign(action, int(self._now_ms()))
            competitor.sent += 1
            self._submit(payload, answered)

        self._call_later(competitor.params.reaction_ms, send)


def _statuses(response: Any) -> list[Any]:
    try:
        return list(response["response"]["data"]["statuses"])
    except (KeyError, TypeError):
        return []


__all__ = [
    "CompetingTakers",
    "Competitor",
    "CompetitorParams",
    "MarketView",
    "Opportunity",
    "Signer",
    "find_opportunity",
    "ioc_action",
]
