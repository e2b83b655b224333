"""Scenarios: TOML files that fix how a simulator run behaves (with `--seed`, reproducibly).

A scenario file (see `hip3/sim/scenarios/default.toml` for a commented example):

    name = "default"
    tick_ms = 100                # feed step: one oracle move and one maker re-quote per market
    account_usdc = "100000"      # funding of the printed test account, per dex
    account_staking_hype = "1000"  # its undelegated staking HYPE (pays priority fees)
    hype_usd = "40"              # HYPE's price for converting priority fees (no spot market)
    account_abstraction = "disabled"  # its userAbstraction: disabled (standard: a balance per
                                 # dex), unifiedAccount or portfolioMargin (one per token)

    [oracle]                     # random walk with occasional jumps, per market
    volatility_bps = 3           # standard deviation of one tick's move, basis points
    jump_probability = 0.02      # chance per tick of a jump
    jump_bps = 60                # typical jump size (exponentially distributed), basis points

    [makers]                     # liquidity that re-quotes around a LAGGED oracle
    count = 2                    # makers per market; maker k lags lag_ms * (1 + k/2)
    lag_ms = 700
    spread_bps = 6               # distance of the first level from the lagged oracle, each side
    depth = 5                    # levels per side per maker
    level_step_bps = 5
    level_notional_usd = 3000

    [markets."xyz:BBB"]          # per-market overrides of any [oracle] / [makers] key
    volatility_bps = 6

    [[dexes]]                    # optional: replace the default markets (Universe.from_spec):
    name = "abc"                 # 2-4 lower-case letters; the first [[dexes]] is name = ""
    collateral = "USDT"          # USDC (default), USDH, USDe or USDT
    deployer_fee_scale = "1.0"   # [0, 3], or [0, 10) when every asset is in growth mode
    [[dexes.assets]]
    name = "AAA"
    sz_decimals = 2
    max_leverage = 10
    start_px = "25"
    margin_mode = "noCross"      # normal (cross allowed), strictIsolated or noCross (HIP-3
                                 # default: strictIsolated)
    growth_mode = true           # fees and volume contributions cut by 90 %
    delisted = false             # listed as isDelisted from the start, in its slot
    unlisted = false             # declared, but listed only by a `list` event (after every
                                 # listed asset of its dex: a listing is appended to the meta)

    [[events]]                   # things that happen at a time after start; repeatable
    at_s = 30
    disable_dex = "abc"          # the deployer's disableDex: orders canceled, positions settled
                                 # at mark, every market delisted; the dex keeps its slot
    # delist = "xyz:BBB"         # or one market delisted at a rediscovery, in its slot
    # list = "xyz:NEW"           # or one `unlisted` market listed: in meta from then on

    [timing]                     # the exchange's timing model (hip3/sim/timing.py), used by
    block_ms = 70                # `hip3 sim` unless --no-timing; the test harness runs
    commit_blocks = 2            # without it unless asked (SimHarness(timing=True))
    order_wait_ms = 360          # IOC/GTC mempool wait without priority (f0; inferred)
    ms_per_bp = 45               # wait bought back per basis point of priority fee
    max_priority_bps = 8         # no further time preference beyond this
    latency_median_ms = 200      # answers' and user events' network delay (log-normal);
    latency_p99_ms = 900         # a median alone keeps the default shape (p99 = 4.5 x median)
    info_latency = true          # info answers wait one network delay too

    [[competitors]]              # a competing taker (hip3/sim/competitors.py); repeatable
    name = "fast"
    reaction_ms = 40             # from seeing a stale quote to sending its IOC
    priority_bps = 8             # its IOCs' priority fee rate
    min_edge_bps = 10            # how far past the oracle a quote must be to take it
    notional_usd = 2000          # the most one take buys or sells
    account_usdc = "10000000"    # its funding, per dex

Unknown keys are errors, so a typo never silently runs the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hip3.sim.accounts import ABSTRACTIONS, STANDARD
from hip3.sim.blocks import MAX_RATE, RATE_PER_BP, MempoolRules
from hip3.sim.latency import LatencySpec, LatencySpecError
from hip3.sim.timing import TimingConfig
from hip3.sim.universe import Universe, UniverseError

SCENARIO_DIR = Path(__file__).with_name("scenarios")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


EVENT_KINDS = ("disable_dex", "delist", "list")


@dataclass(frozen=True)
class ScenarioEvent:
    """Something the scenario makes happen `at_s` seconds after the simulator starts."""

    at_s: Decimal
    kind: str  # one of EVENT_KINDS
    target: str  # the dex (disable_dex) or the coin (delist, list)


@dataclass(frozen=True)
class OracleParams:
    volatility_bps: Decimal = Decimal(3)
    jump_probability: Decimal = Decimal("0.02")
    jump_bps: Decimal = Decimal(60)


@dataclass(frozen=True)
class MakerParams:
    count: int = 2
    lag_ms: int = 700
    spread_bps: Decimal = Decimal(6)
    depth: int = 5
    level_step_bps: Decimal = Decimal(5)
    level_notional_usd: Decimal = Decimal(3000)


@dataclass(frozen=True)
class CompetitorParams:
    """One competing taker (`[[competitors]]`; see hip3/sim/competitors.py)."""

    name: str = "taker"
    reaction_ms: int = 150  # from seeing a stale quote to sending the IOC
    priority_bps: Decimal = Decimal(0)  # the IOC's priority fee rate; 8 bps buys ~360 ms
    min_edge_bps: Decimal = Decimal(10)  # how far past the oracle a quote must be to take it
    notional_usd: Decimal = Decimal(5000)  # the most one take buys or sells
    account_usdc: Decimal = Decimal(10_000_000)  # funding per dex

    @property
    def rate(self) -> int:
        """The priority as the wire's `grouping.p`: 1e-8 of notional, 1 bp = 10000."""
        return int(self.priority_bps * RATE_PER_BP)


_ORACLE_KEYS = {"volatility_bps", "jump_probability", "jump_bps"}
_MAKER_INT_KEYS = {"count", "lag_ms", "depth"}
_MAKER_KEYS = _MAKER_INT_KEYS | {"spread_bps", "level_step_bps", "level_notional_usd"}
_TIMING_INT_KEYS = {"block_ms", "commit_blocks", "max_priority_bps"}
_TIMING_KEYS = _TIMING_INT_KEYS | {
    "order_wait_ms",
    "ms_per_bp",
    "latency_median_ms",
    "latency_p99_ms",
    "info_latency",
}
_COMPETITOR_KEYS = {
    "name",
    "reaction_ms",
    "priority_bps",
    "min_edge_bps",
    "notional_usd",
    "account_usdc",
}
_TOP_KEYS = {
    "account_staking_hype",
    "hype_usd",
    "account_abstraction",
    "events",
    "timing",
    "competitors",
    "name",
    "description",
    "tick_ms",
    "account_usdc",
    "oracle",
    "makers",
    "markets",
    "dexes",
}


@dataclass(frozen=True)
class Scenario:
    name: str = "builtin"
    tick_ms: int = 100
    account_usdc: Decimal = Decimal(100000)
    oracle: OracleParams = field(default_factory=OracleParams)
    makers: MakerParams = field(default_factory=MakerParams)
    overrides: dict[str, tuple[OracleParams, MakerParams]] = field(default_factory=dict)
    markets_spec: dict[str, Any] | None = None
    # Used when timing is on (`hip3 sim` unless --no-timing; SimHarness(timing=True)).
    timing: TimingConfig = field(default_factory=TimingConfig)
    competitors: tuple[CompetitorParams, ...] = ()
    account_staking_hype: Decimal = Decimal(1000)
    hype_usd: Decimal = Decimal(40)
    account_abstraction: str = STANDARD
    events: tuple[ScenarioEvent, ...] = ()

    def universe(self) -> Universe:
        if self.markets_spec is None:
            return Universe.default()
        return Universe.from_spec(self.markets_spec)

    def params_for(self, coin: str) -> tuple[OracleParams, MakerParams]:
        return self.overrides.get(coin, (self.oracle, self.makers))


def load_scenario(source: Scenario | str | Path | None) -> Scenario:
    """A Scenario from an object, a file path, or a bundled name (default, calm, jumpy, contested, many_dexes)."""
    if isinstance(source, Scenario):
        return source
    if source is None:
        source = "default"
    path = Path(source)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{source}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        bundled = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(
            f"cannot read scenario {str(source)!r}: {exc.strerror}; bundled: {bundled}"
        ) from None
    return parse_scenario(text, origin=str(path))


def parse_scenario(text: str, *, origin: str = "<scenario>") -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{origin}: not valid TOML: {exc}") from None
    _no_unknown(raw, _TOP_KEYS, origin, "top level")
    oracle = _oracle(raw.get("oracle", {}), OracleParams(), origin, "[oracle]")
    makers = _makers(raw.get("makers", {}), MakerParams(), origin, "[makers]")
    markets_spec = None
    if "dexes" in raw:
        markets_spec = {"dexes": raw["dexes"]}
        try:
            universe = Universe.from_spec(markets_spec)
        except UniverseError as exc:
            raise ScenarioError(f"{origin}: [[dexes]]: {exc}") from None
    else:
        universe = Universe.default()
    overrides: dict[str, tuple[OracleParams, MakerParams]] = {}
    markets = raw.get("markets", {})
    if not isinstance(markets, dict):
        raise ScenarioError(f"{origin}: 'markets' must be a table of per-coin tables")
    for coin, table in markets.items():
        where = f'[markets."{coin}"]'
        if coin not in universe.by_coin:
            raise ScenarioError(f"{origin}: {where}: unknown coin {coin!r}")
        if not isinstance(table, dict):
            raise ScenarioError(f"{origin}: {where} must be a table")
        _no_unknown(table, _ORACLE_KEYS | _MAKER_KEYS, origin, where)
        overrides[coin] = (
            _oracle({k: v for k, v in table.items() if k in _ORACLE_KEYS}, oracle, origin, where),
            _makers({k: v for k, v in table.items() if k in _MAKER_KEYS}, makers, origin, where),
        )
    name = raw.get("name", Path(origin).stem)
    if not isinstance(name, str):
        raise ScenarioError(f"{origin}: 'name' must be a string")
    tick_ms = _int(raw.get("tick_ms", 100), origin, "tick_ms", minimum=1)
    account_usdc = _decimal(raw.get("account_usdc", "100000"), origin, "account_usdc")
    timing = _timing(raw.get("timing", {}), origin)
    competitors = _competitors(raw.get("competitors", []), origin)
    return Scenario(
        name,
        tick_ms,
        account_usdc,
        oracle,
        makers,
        overrides,
        markets_spec,
        timing=timing,
        competitors=competitors,
        account_staking_hype=_decimal(
            raw.get("account_staking_hype", "1000"), origin, "account_staking_hype"
        ),
        hype_usd=_positive(raw.get("hype_usd", "40"), origin, "hype_usd"),
        account_abstraction=_abstraction(raw.get("account_abstraction", STANDARD), origin),
        events=_events(raw.get("events", []), universe, origin),
    )


def _abstraction(value: Any, origin: str) -> str:
    if value not in ABSTRACTIONS:
        raise ScenarioError(
            f"{origin}: account_abstraction must be one of {', '.join(ABSTRACTIONS)}, got {value!r}"
        )
    return value


def _events(tables: Any, universe: Universe, origin: str) -> tuple[ScenarioEvent, ...]:
    if not isinstance(tables, list):
        raise ScenarioError(f"{origin}: events must be an array of tables [[events]]")
    result = []
    for i, table in enumerate(tables):
        where = f"[[events]] #{i + 1}"
        table = _table(table, origin, where)
        _no_unknown(table, {"at_s", *EVENT_KINDS}, origin, where)
        kinds = [kind for kind in EVENT_KINDS if kind in table]
        if len(kinds) != 1:
            raise ScenarioError(f"{origin}: {where} needs exactly one of {', '.join(EVENT_KINDS)}")
        kind = kinds[0]
        target = table[kind]
        if kind == "disable_dex" and (
            not isinstance(target, str) or not target or target not in universe.by_dex_name
        ):
            raise ScenarioError(f"{origin}: {where} disable_dex {target!r} is not a HIP-3 dex")
        if kind == "delist" and (not isinstance(target, str) or target not in universe.by_coin):
            raise ScenarioError(f"{origin}: {where} delist {target!r} is not a market")
        if kind == "list" and (not isinstance(target, str) or target not in universe.unlisted):
            raise ScenarioError(
                f"{origin}: {where} list {target!r} is not a market declared unlisted = true"
            )
        at_s = _decimal(table.get("at_s"), origin, f"{where} at_s")
        result.append(ScenarioEvent(at_s, kind, target))
    return tuple(sorted(result, key=lambda event: event.at_s))


def _positive(value: Any, origin: str, what: str) -> Decimal:
    number = _decimal(value, origin, what)
    if number <= 0:
        raise ScenarioError(f"{origin}: {what} must be > 0, got {value!r}")
    return number


def _timing(table: Any, origin: str) -> TimingConfig:
    where = "[timing]"
    table = _table(table, origin, where)
    _no_unknown(table, _TIMING_KEYS, origin, where)
    base = TimingConfig()
    numbers: dict[str, Any] = {}
    for key, value in table.items():
        if key == "info_latency":
            if not isinstance(value, bool):
                raise ScenarioError(f"{origin}: {where} info_latency must be true or false")
            continue
        minimum = 1 if key == "block_ms" else 0
        if key in _TIMING_INT_KEYS:
            numbers[key] = _int(value, origin, f"{where} {key}", minimum=minimum)
        else:
            numbers[key] = float(_decimal(value, origin, f"{where} {key}"))
    rules = base.mempool
    mempool = MempoolRules(
        order_wait_ms=numbers.get("order_wait_ms", rules.order_wait_ms),
        ms_per_bp=numbers.get("ms_per_bp", rules.ms_per_bp),
        max_priority_bps=numbers.get("max_priority_bps", rules.max_priority_bps),
    )
    median = numbers.get("latency_median_ms", base.latency.median_ms)
    # A median alone scales the default shape; a p99 alone keeps the default median.
    p99 = numbers.get("latency_p99_ms")
    if p99 is None:
        p99 = median * base.latency.p99_ms / base.latency.median_ms
    try:
        latency = LatencySpec(median, p99)
    except LatencySpecError as exc:
        raise ScenarioError(f"{origin}: {where} {exc}") from None
    return TimingConfig(
        block_ms=numbers.get("block_ms", base.block_ms),
        commit_blocks=numbers.get("commit_blocks", base.commit_blocks),
        mempool=mempool,
        latency=latency,
        info_latency=table.get("info_latency", base.info_latency),
    )


def _competitors(tables: Any, origin: str) -> tuple[CompetitorParams, ...]:
    if not isinstance(tables, list):
        raise ScenarioError(f"{origin}: competitors must be an array of tables [[competitors]]")
    result = []
    for i, table in enumerate(tables):
        where = f"[[competitors]] #{i + 1}"
        table = _table(table, origin, where)
        _no_unknown(table, _COMPETITOR_KEYS, origin, where)
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "name":
                if not isinstance(value, str) or not value:
                    raise ScenarioError(f"{origin}: {where} name must be a non-empty string")
                values[key] = value
            elif key == "reaction_ms":
                values[key] = _int(value, origin, f"{where} {key}", minimum=0)
            else:
                values[key] = _decimal(value, origin, f"{where} {key}")
        params = replace(CompetitorParams(name=f"taker{i + 1}"), **values)
        if params.rate > MAX_RATE:
            raise ScenarioError(f"{origin}: {where} priority_bps must be <= 10000 (100 %)")
        if params.notional_usd <= 0:
            raise ScenarioError(f"{origin}: {where} notional_usd must be > 0")
        result.append(params)
    return tuple(result)


def _oracle(table: Any, base: OracleParams, origin: str, where: str) -> OracleParams:
    table = _table(table, origin, where)
    _no_unknown(table, _ORACLE_KEYS, origin, where)
    values = {key: _decimal(value, origin, f"{where} {key}") for key, value in table.items()}
    if values.get("jump_probability", Decimal(0)) > 1:
        raise ScenarioError(f"{origin}: {where} jump_probability must be <= 1")
    return replace(base, **values)


def _makers(table: Any, base: MakerParams, origin: str, where: str) -> MakerParams:
    table = _table(table, origin, where)
    _no_unknown(table, _MAKER_KEYS, origin, where)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in _MAKER_INT_KEYS:
            minimum = 0 if key == "lag_ms" else 1
            values[key] = _int(value, origin, f"{where} {key}", minimum=minimum)
        else:
            values[key] = _decimal(value, origin, f"{where} {key}")
    return replace(base, **values)


def _table(value: Any, origin: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{origin}: {where} must be a table")
    return value


def _no_unknown(table: dict[str, Any], known: set[str], origin: str, where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScenarioError(
            f"{origin}: {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _int(value: Any, origin: str, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{origin}: {what} must be an integer >= {minimum}, got {value!r}")
    return value


def _decimal(value: Any, origin: str, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ScenarioError(f"{origin}: {what} must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ScenarioError(f"{origin}: {what} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ScenarioError(f"{origin}: {what} must be a finite number >= 0, got {value!r}")
    return number
