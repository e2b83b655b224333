"""Scenarios: TOML files that fix how a simulator run behaves (with `--seed`, reproducibly).

A scenario file (see `hip3/sim/scenarios/default.toml` for a commented example):

    name = "default"
    tick_ms = 100                # feed step: one oracle move and one maker re-quote per market
    account_usdc = "100000"      # funding of the printed test account, per dex

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

    [[dexes]]                    # optional: replace the default markets (Universe.from_spec)

Unknown keys are errors, so a typo never silently runs the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hip3.sim.universe import Universe, UniverseError

SCENARIO_DIR = Path(__file__).with_name("scenarios")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


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


_ORACLE_KEYS = {"volatility_bps", "jump_probability", "jump_bps"}
_MAKER_INT_KEYS = {"count", "lag_ms", "depth"}
_MAKER_KEYS = _MAKER_INT_KEYS | {"spread_bps", "level_step_bps", "level_notional_usd"}
_TOP_KEYS = {
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

    def universe(self) -> Universe:
        if self.markets_spec is None:
            return Universe.default()
        return Universe.from_spec(self.markets_spec)

    def params_for(self, coin: str) -> tuple[OracleParams, MakerParams]:
        return self.overrides.get(coin, (self.oracle, self.makers))


def load_scenario(source: Scenario | str | Path | None) -> Scenario:
    """A Scenario from an object, a file path, or a bundled name ("default", "calm", "jumpy")."""
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
    return Scenario(name, tick_ms, account_usdc, oracle, makers, overrides, markets_spec)


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
