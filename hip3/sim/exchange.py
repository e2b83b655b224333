"""The simulated exchange core: the one object the server, feeds, faults and tests hold.

It knows nothing of sockets. The request gateway (`hip3.sim.requests`) hands it /info and
/exchange bodies (already parsed JSON, dict order preserved: the action hash depends on it)
and the server forwards the events it emits. Every public entry point turns bad input into an
error value; nothing raises into a loop.

Each rule has one home, and this class only wires them together:

- `market.Markets`            books, oracle, marks, mids, funding rate, volumes, halts, candles
- `ledger.OrderLedger`        oids, resting orders, status history, orderUpdates
- `margin.Margin`             leverage, equity, used and available margin
- `matching.Matcher`          pre-trade rules, matching, fills and fees, maker quotes, halts
- `triggers.Triggers`         TP/SL trigger orders, checked on every book or mark change
- `agents.AgentRegistry`      users' API wallets, signer resolution, approveAgent
- `scheduled.ScheduledCancels` the dead man's switch
- `funding.Funding`           hourly funding payments and each hour's rates
- `address_budget.AddressBudget` the per-address request budget of actions
- `transfers.Transfers`       collateral moves between spot, perp dexes and users
- `abstraction.AbstractionModes` userSetAbstraction and what a switch does to balances
- `ledger_updates.LedgerUpdates` deposits and transfers as non-funding ledger updates
- `actions.Actions`           the signed /exchange envelope and one handler per action type
- `priority.StakingLedger`    staking balances that pay priority fees, and what they burned
- `info`, `user_views`        /info requests, and the per-user answers feeds share
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eth_account import Account as EthAccount

from hip3.sim import info as info_requests
from hip3.sim.abstraction import AbstractionModes
from hip3.sim.accounts import Account, Leverage
from hip3.sim.actions import Actions
from hip3.sim.address_budget import AddressBudget
from hip3.sim.agents import AgentRegistry
from hip3.sim.book import Book, Order
from hip3.sim.collateral import USDC
from hip3.sim.events import BookChanged, CtxChanged
from hip3.sim.funding import Funding
from hip3.sim.ledger import OrderLedger
from hip3.sim.ledger_updates import LedgerUpdates
from hip3.sim.margin import Margin
from hip3.sim.market import Markets
from hip3.sim.matching import DEFAULT_REJECT_MESSAGE, Matcher
from hip3.sim.order_wires import open_order_wire
from hip3.sim.priority import StakingLedger
from hip3.sim.scheduled import MIN_VOLUME_USD, ScheduledCancels
from hip3.sim.signatures import L1Verifier
from hip3.sim.transfers import SPOT, Transfers
from hip3.sim.triggers import Triggers
from hip3.sim.universe import Asset, Universe
from hip3.sim.user_signed import UserSignedEnvelope
from hip3.sim.wire import ActionError, address

InfoError = info_requests.InfoError
_MARK_EVENTS = (BookChanged, CtxChanged)  # what can move a mark price


class Exchange:
    def __init__(
        self,
        universe: Universe,
        *,
        clock_ms: Callable[[], int],
        emit: Callable[[object], None],
        seed: int = 7,
        source: str = "b",
        funding: bool = True,
        schedule_cancel_min_volume: Decimal = MIN_VOLUME_USD,
    ) -> None:
        if source not in ("a", "b"):
            raise ValueError('source must be "a" (mainnet-like) or "b" (testnet-like)')
        self.universe = universe
        self.seed = seed
        self.network = "Mainnet" if source == "a" else "Testnet"
        self._clock = clock_ms
        self._sink = emit
        # Every collaborator emits through the watch: a book or mark change of a coin with
        # waiting trigger orders is checked against them before anything else happens.
        emit = self._emit_watched
        self._emit = emit
        self._accounts_made = 0
        self.accounts: dict[str, Account] = {}
        self.markets = Markets(universe, clock_ms=clock_ms, emit=emit)
        # A market listed as delisted keeps its slot (and asset id) and never trades.
        self.markets.halted.update(a.coin for a in universe.assets if a.delisted)
        self.ledger = OrderLedger(universe, self.markets)
        self.margin = Margin(universe, self.markets)
        self.matcher = Matcher(
            universe,
            self.markets,
            self.accounts,
            self.ledger,
            self.margin,
            emit=emit,
            clock_ms=clock_ms,
        )
        self.triggers = Triggers(
            universe, self.markets, self.ledger, self.matcher, emit=emit, clock_ms=clock_ms
        )
        self.agent_registry = AgentRegistry(self.accounts, network=self.network)
        self.scheduled = ScheduledCancels(
            self.accounts,
            self.ledger,
            emit=emit,
            min_volume_usd=Decimal(schedule_cancel_min_volume),
        )
        self.request_budget = AddressBudget()
        self.funding = Funding(self.markets, self.accounts, emit=emit, enabled=funding)
        self.staking = StakingLedger()  # undelegated HYPE that pays priority fees
        self.ledger_updates = LedgerUpdates(clock_ms=clock_ms, emit=emit)
        envelope = UserSignedEnvelope(self.accounts, network=self.network)
        self.transfers = Transfers(
            universe,
            self.accounts,
            withdrawable=self.margin.available,
            envelope=envelope,
            on_ledger=self.ledger_updates.record,
        )
        self.abstraction = AbstractionModes(universe, envelope)
        self.actions = Actions(
            universe,
            verifier=L1Verifier(source),
            agents=self.agent_registry,
            ledger=self.ledger,
            margin=self.margin,
            matcher=self.matcher,
            scheduled=self.scheduled,
            budget=self.request_budget,
            clock_ms=clock_ms,
            emit=emit,
            staking=self.staking,
            transfers=self.transfers,
            triggers=self.triggers,
            abstraction=self.abstraction,
        )
        # The same objects the collaborators hold, under the names info and tests read.
        markets = self.markets
        self.books: dict[str, Book] = markets.books
        self.oracle: dict[str, Decimal] = markets.oracle
        self.prev_day_px: dict[str, Decimal] = markets.prev_day_px
        self.last_trade_px: dict[str, Decimal] = markets.last_trade_px
        self.open_interest: dict[str, Decimal] = markets.open_interest
        self.day_ntl_vlm: dict[str, Decimal] = markets.day_ntl_vlm
        self.day_base_vlm: dict[str, Decimal] = markets.day_base_vlm
        self.halted: set[str] = markets.halted
        self.agents: dict[str, tuple[str, str, int | None]] = self.agent_registry.agents
        self.disabled_dexes: set[str] = set()
        self._scheduled: dict[str, int] = self.scheduled.deadlines

    # ----------------------------------------------------------------- entry points

    def _emit_watched(self, event: object) -> None:
        self._sink(event)
        if type(event) in _MARK_EVENTS:
            coin = event.coin  # type: ignore[attr-defined]
            if self.triggers.watches(coin):
                self.triggers.check(coin)

    def info(self, payload: dict[str, Any]) -> object:
        """The bare /info result; raises InfoError for a bad request."""
        return info_requests.handle(self, payload)

    def action(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The /exchange answer `{"status": "ok"|"err", "response": ...}`; never raises."""
        return self.actions.handle(payload)

    def tick(self, now_ms: int) -> None:
        """Fire due scheduleCancel deadlines and pay funding on the hour."""
        self.scheduled.tick(now_ms)
        self.funding.tick(now_ms)

    def now_ms(self) -> int:
        return self._clock()

    @property
    def funding_enabled(self) -> bool:
        return self.funding.enabled

    # ----------------------------------------------------------------- accounts and control

    def fund(self, user: str, usdc: Decimal, dex: str = "") -> None:
        """Deposit straight onto one perp dex, in its collateral token (a test's shortcut;
        on the exchange only the first dex is reached by deposits, see `fund_every_dex`)."""
        user = address(user, "user")
        collateral = self.universe.dex(dex).collateral
        amount = self._deposit_amount(user, usdc)
        self.transfers.deposit(user, collateral, amount, dex)

    def fund_every_dex(self, user: str, amount: Decimal) -> None:
        """Give `user` `amount` on every perp dex the way an account gets it on the exchange:
        USDC deposited onto the first dex and sent on to the USDC dexes, other collateral
        deposited on spot and sent from there (sendAsset moves, collateral rules checked)."""
        user = address(user, "user")
        amount = self._deposit_amount(user, amount)
        account = self.transfers.deposit(user, USDC, amount)
        for dex in self.universe.dexes[1:]:
            token = dex.collateral
            source = "" if token == USDC else SPOT
            self.transfers.deposit(user, token, amount, source)
            self.transfers.move(account, account, source, dex.name, token, amount)

    def _deposit_amount(self, user: str, amount: Decimal) -> Decimal:
        amount = Decimal(amount)
        if not amount.is_finite() or amount < 0:
            raise ValueError("funding amount must be a non-negative finite decimal")
        if self.agent_registry.is_agent(user):
            raise ValueError(f"{user} is an API wallet and cannot hold funds")
        return amount

    def new_account(self, usdc: Decimal, *, every_dex: bool = False) -> tuple[str, str]:
        """An account whose key derives from the seed (same seed, same accounts), funded as
        on the exchange on the first perp dex only, or on every dex by transfers."""
        self._accounts_made += 1
        material = f"hip3-sim-account:{self.seed}:{self._accounts_made}".encode()
        private_key = "0x" + hashlib.sha256(material).hexdigest()
        user = EthAccount.from_key(private_key).address.lower()
        if every_dex:
            self.fund_every_dex(user, usdc)
        else:
            self.fund(user, usdc)
        return user, private_key

    def credit_traded_volume(self, user: str, usd: Decimal) -> None:
        """Count `usd` of volume as traded by `user` (an account with a trading history)."""
        amount = Decimal(usd)
        if not amount.is_finite() or amount < 0:
            raise ValueError("traded volume must be a non-negative finite amount")
        account = self.accounts.get(address(user, "user"))
        if account is None or account.internal:
            raise ValueError(f"{user} is not a funded user account")
        account.volume += amount
        account.budget_volume += amount

    def reject_next_orders(self, n: int, message: str = DEFAULT_REJECT_MESSAGE) -> None:
        self.matcher.reject_next_orders(n, message)

    def positions(self, user: str) -> dict[str, Decimal]:
        account = self.accounts.get(user.lower())
        if account is None:
            return {}
        return {coin: p.szi for coin, p in account.positions.items()}

    def open_orders(self, user: str) -> list[dict[str, Any]]:
        account = self.accounts.get(user.lower())
        if account is None:
            return []
        return [open_order_wire(o) for o in account.open_orders.values()]

    def user_fills(self, user: str, limit: int = 2000) -> list[dict[str, Any]]:
        """Most recent fills, newest first (as info userFills)."""
        account = self.accounts.get(user.lower())
        if account is None:
            return []
        fills = list(account.fills)
        fills.reverse()
        return fills[: max(0, limit)]

    def order_status(self, user: str, oid: int | str) -> tuple[Order, str, int] | None:
        return self.ledger.status(user, oid)

    # ----------------------------------------------------------------- market data

    def set_oracle(self, coin: str, px: Decimal) -> None:
        self.markets.set_oracle(coin, px)

    def replace_maker_quotes(
        self,
        coin: str,
        maker: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
        *,
        now_ms: int | None = None,
    ) -> None:
        """Swap all of `maker`'s quotes on `coin` for new ones; crossing quotes trade. With
        `now_ms`, the quotes carry that time instead of the clock's (a re-quote applied late
        that nothing could have seen in between: a backtest's recorded book)."""
        self.matcher.replace_quotes(coin, maker, bids, asks, now_ms)

    def skip_order_ids(self, n: int) -> None:
        """Hand the next `n` order ids to nobody: the ids of maker quotes that would have been
        placed and replaced before anything could see them (see `replace_maker_quotes`)."""
        self.ledger.skip_ids(n)

    def mark_px(self, coin: str) -> Decimal:
        return self.markets.mark_px(coin)

    def mid_px(self, coin: str) -> Decimal | None:
        return self.markets.mid_px(coin)

    def funding_rate(self, coin: str) -> tuple[Decimal, Decimal]:
        return self.markets.funding_rate(coin)

    def bbo(self, coin: str) -> dict[str, Any]:
        return self.markets.bbo(coin)

    def l2_book(self, coin: str, depth: int = 20) -> dict[str, Any]:
        return self.markets.l2_book(coin, depth)

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        return self.markets.asset_ctx(coin)

    def halt_market(self, coin: str) -> None:
        """Deployer halt: cancel every order on `coin`, settle positions at mark, refuse orders."""
        self.matcher.halt(coin)

    def disable_dex(self, name: str) -> None:
        """The deployer's disableDex. The docs say nothing of its effects; here every market of
        the dex is halted (orders canceled, positions settled at mark, orders refused, meta
        lists it isDelisted) and the dex keeps its perpDexs slot, so no asset id shifts."""
        dex = self.universe.dex(name)
        if not dex.index:
            raise ValueError("the first perp dex cannot be disabled")
        for asset in dex.assets:
            if asset.coin not in self.halted:
                self.matcher.halt(asset.coin)
        self.disabled_dexes.add(name)

    def list_market(self, coin: str) -> None:
        """A new market on its dex: from now on its meta lists it (after every market listed
        before it, so no asset id moves), clients may subscribe to it and trade it. Its book
        and oracle ran from the start, unseen."""
        self.universe.list_market(coin)
        self._emit(CtxChanged(coin))

    def set_abstraction(self, user: str, mode: str) -> None:
        """Switch `user`'s account abstraction (a scenario's `account_abstraction`)."""
        account = self.accounts.get(address(user, "user"))
        if account is None or account.internal:
            raise ValueError(f"{user} is not a user account")
        try:
            self.abstraction.switch(account, mode)
        except ActionError as error:
            raise ValueError(str(error)) from None

    def resume_market(self, coin: str) -> None:
        self.universe.asset(coin)
        self.halted.discard(coin)
        self._emit(CtxChanged(coin))

    # ----------------------------------------------------------------- margin (read by info)

    def leverage_of(self, account: Account, asset: Asset) -> Leverage:
        return self.margin.leverage_of(account, asset)

    def equity(self, account: Account, dex: str) -> Decimal:
        return self.margin.equity(account, dex)

    def position_margin(self, account: Account, dex: str) -> Decimal:
        return self.margin.position_margin(account, dex)

    def available_margin(self, account: Account, dex: str) -> Decimal:
        return self.margin.available(account, dex)
