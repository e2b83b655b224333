"""Configuration: defaults file, example files, errors that name path and value, overrides."""

from __future__ import annotations

import math
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.config import (
    MAINNET_WS_URL,
    TESTNET_WS_URL,
    Config,
    ConfigError,
    Endpoints,
    as_decimal,
    endpoints,
    load_config,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_TOML = CONFIG_DIR / "default.toml"


# --- the defaults file and the Struct defaults agree --------------------------------------------


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


def _none_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of None defaults; TOML cannot write them, so the file comments them out."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{prefix}.{k}" if prefix else k
            if v is None:
                out.append(here)
            else:
                out.extend(_none_paths(v, here))
    elif isinstance(value, list | tuple) and value:
        # One commented example per array of tables is enough (the first entry).
        out.extend(_none_paths(value[0], prefix))
    return out


def _commented_keys(text: str) -> set[str]:
    """`# key = value` lines, qualified by the table they sit in."""
    found: set[str] = set()
    table = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", line.strip())
        if header:
            table = header[1]
            continue
        commented = re.fullmatch(r"#\s*([a-z_]+)\s*=.*", line.strip())
        if commented:
            found.add(f"{table}.{commented[1]}" if table else commented[1])
    return found


def test_default_file_equals_struct_defaults_key_for_key():
    from_file = tomllib.loads(DEFAULT_TOML.read_text())
    from_structs = msgspec.to_builtins(Config())
    assert from_file == _without_none(from_structs)


def test_default_file_shows_every_optional_key_commented_out():
    missing = set(_none_paths(msgspec.to_builtins(Config()))) - _commented_keys(
        DEFAULT_TOML.read_text()
    )
    assert not missing, f"optional keys without a commented example: {sorted(missing)}"


def test_every_key_in_default_file_has_a_comment_line_above_it():
    lines = DEFAULT_TOML.read_text().splitlines()
    uncommented = [
        line
        for i, line in enumerate(lines)
        if re.match(r"[a-z_]+\s*=", line) and not lines[i - 1].startswith("#")
    ]
    assert not uncommented


def test_load_without_path_is_the_default_file():
    assert load_config() == load_config(DEFAULT_TOML) == Config()


def test_default_is_simulator_trading_on_the_four_xyz_markets():
    cfg = load_config()
    assert cfg.network == "sim" and cfg.mode == "trading"
    assert cfg.coins == ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD")
    assert cfg.dexes == ("xyz",)
    assert cfg.account.key_env == "HIP3_PRIVATE_KEY"
    assert cfg.endpoints == Endpoints(ws_url=None, mainnet_signing=False)


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.mode = "observation"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.risk.loss_limit_usd = 1e9  # type: ignore[misc]


# --- example files ------------------------------------------------------------------------------


def test_testnet_example_loads_for_xyz_on_testnet():
    cfg = load_config(CONFIG_DIR / "testnet.toml")
    assert cfg.network == "testnet"
    assert cfg.dexes == ("xyz",)
    assert all(c.startswith("xyz:") for c in cfg.coins)
    assert cfg.endpoints == Endpoints(ws_url=TESTNET_WS_URL, mainnet_signing=False)


def test_mainnet_example_observes_by_default_and_says_trading_needs_a_flag():
    path = CONFIG_DIR / "mainnet.toml"
    cfg = load_config(path)
    assert cfg.network == "mainnet" and cfg.mode == "observation"
    assert cfg.confirm_mainnet is False
    assert cfg.endpoints == Endpoints(ws_url=MAINNET_WS_URL, mainnet_signing=True)
    assert "confirm" in path.read_text()


def test_mainnet_trading_is_refused_without_confirmation():
    path = CONFIG_DIR / "mainnet.toml"
    with pytest.raises(ConfigError, match="confirm_mainnet = true"):
        load_config(path, {"mode": "trading"})
    cfg = load_config(path, {"mode": "trading", "confirm_mainnet": True})
    assert cfg.mode == "trading"


# --- endpoints and signing source ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "ws_url", "source", "chain"),
    [
        ({}, None, "b", "Testnet"),
        ({"ws_url": "ws://127.0.0.1:8765/ws"}, "ws://127.0.0.1:8765/ws", "b", "Testnet"),
        ({"network": "testnet"}, TESTNET_WS_URL, "b", "Testnet"),
        ({"network": "mainnet", "mode": "observation"}, MAINNET_WS_URL, "a", "Mainnet"),
        (
            {"network": "testnet", "ws_url": "ws://10.0.0.5:9000/ws"},
            "ws://10.0.0.5:9000/ws",
            "b",
            "Testnet",
        ),
    ],
)
def test_endpoints_follow_network(overrides, ws_url, source, chain):
    cfg = load_config(overrides=overrides)
    ep = endpoints(cfg)
    assert ep.ws_url == ws_url
    assert ep.source == source
    assert ep.mainnet_signing is (source == "a")
    assert ep.hyperliquid_chain == chain


def test_official_url_of_another_network_is_refused():
    with pytest.raises(ConfigError, match=r"ws_url = .* is the mainnet endpoint"):
        load_config(overrides={"network": "testnet", "ws_url": MAINNET_WS_URL})
    with pytest.raises(ConfigError, match=r"is the testnet endpoint"):
        load_config(overrides={"network": "sim", "ws_url": TESTNET_WS_URL})


# --- errors name path, value and expectation ----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"risk": {"max_los_usd": 3}}, "unknown key 'risk.max_los_usd'"),
        ({"websocket": {"ping_after_s": -3}}, "websocket.ping_after_s = -3: expected a number > 0"),
        ({"websocket": {"ping_after_s": "45"}}, "websocket.ping_after_s = '45': expected a number"),
        ({"network": "simnet"}, "network = 'simnet': expected one of"),
        ({"mode": "paper"}, "mode = 'paper': expected one of"),
        ({"confirm_mainnet": 1}, "confirm_mainnet = 1: expected true or false"),
        ({"outbound": {"messages_per_minute": 5000}}, "outbound.messages_per_minute = 5000"),
        ({"outbound": {"max_inflight_posts": 0}}, "expected an integer >= 1 and <= 100"),
        ({"risk": {"max_concurrent_positions": 2.5}}, "risk.max_concurrent_positions = 2.5"),
        ({"risk": {"max_concurrent_positions": True}}, "risk.max_concurrent_positions = true"),
        ({"detector": {"size_fraction": 1.5}}, "expected a number > 0 and <= 1"),
        ({"detector": {"min_order_notional_usd": 5.0}}, "min_order_notional_usd = 5.0"),
        ({"detector": {"taker_fee_bps": math.inf}}, "taker_fee_bps = inf: expected a finite"),
        ({"detector": {"slippage_bps": math.nan}}, "detector.slippage_bps = nan"),
        (
            {"dead_mans_switch": {"lead_s": 3}},
            "dead_mans_switch.lead_s = 3: expected a number >= 5",
        ),
        ({"metrics": {"port": 70000}}, "metrics.port = 70000"),
        ({"journal": {"path": ""}}, "journal.path = '': expected a non-empty string"),
        ({"websocket": 3}, "websocket = 3: expected a table"),
        ({"markets": [{"threshold_bps": 3.0}]}, "markets[0].coin is missing"),
        ({"markets": [{"coin": "xyz:AAA", "threshold_bps": -1}]}, "markets[0].threshold_bps = -1"),
        ({"markets": [{"coin": "xyz:AAA", "size": 1}]}, "unknown key 'markets[0].size'"),
        ({"markets": [{"coin": "xyz/AAA"}]}, "markets[0].coin = 'xyz/AAA': expected 'dex:NAME'"),
        ({"markets": [{"coin": "BTC"}, {"coin": "BTC"}]}, "markets[1].coin = 'BTC'"),
        ({"markets": []}, "expected at least one [[markets]] entry"),
        ({"account": {"user": "0x1234"}}, "account.user = '0x1234': expected an address"),
        ({"account": {"signer": "vitalik.eth"}}, "account.signer = 'vitalik.eth'"),
        ({"account": {"key_env": "MY-KEY"}}, "account.key_env = 'MY-KEY'"),
        ({"ws_url": "http://localhost/ws"}, "ws_url = 'http://localhost/ws': expected a ws://"),
        (
            {"websocket": {"backoff_min_s": 90.0}},
            "websocket.backoff_min_s = 90: expected a value <= websocket.backoff_max_s (60)",
        ),
        (
            {"risk": {"max_notional_per_market_usd": 500.0}},
            "risk.max_notional_per_market_usd = 500",
        ),
        ({"detector": {"min_order_notional_usd": 60.0}}, "detector.min_order_notional_usd = 60"),
        ({"flatten": {"retry_backoff_s": 10.0}}, "flatten.retry_backoff_s = 10"),
        ({"dead_mans_switch": {"interval_s": 60.0}}, "dead_mans_switch.interval_s = 60"),
    ],
)
def test_bad_values_are_rejected_with_path_value_and_expectation(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_key_suggests_the_near_miss():
    with pytest.raises(ConfigError, match=r"did you mean 'websocket.ping_after_s'"):
        load_config(overrides={"websocket": {"ping_afer_s": 4.0}})


def test_all_semantic_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config(
            overrides={
                "account": {"user": "0x12"},
                "websocket": {"backoff_min_s": 100.0},
                "markets": [{"coin": "bad coin"}],
            }
        )
    assert len(info.value.problems) == 3
    message = str(info.value)
    for path in ("account.user", "websocket.backoff_min_s", "markets[0].coin"):
        assert path in message


def test_every_type_problem_in_a_file_is_reported_at_once(tmp_path):
    """A file with several wrong types and unknown keys lists them all in one error, so it
    is fixed in one pass instead of one run per mistake."""
    path = tmp_path / "bot.toml"
    path.write_text(
        'mode = "tradin"\n'
        "[websocket]\n"
        'ping_after_s = "x"\n'
        "bogus = 1\n"
        "[risk]\n"
        "loss_limit_usd = -5\n"
        'max_consecutive_rejections = "five"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 5, info.value.problems
    message = str(info.value)
    for named in (
        "mode = 'tradin'",
        "websocket.ping_after_s = 'x'",
        "unknown key 'websocket.bogus'",
        "risk.loss_limit_usd = -5",
        "risk.max_consecutive_rejections = 'five'",
    ):
        assert named in message


def test_a_wrong_type_and_a_semantic_problem_are_reported_together():
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"websocket": {"backoff_min_s": 100.0, "ping_after_s": "soon"}})
    message = str(info.value)
    assert "websocket.ping_after_s = 'soon'" in message
    assert "websocket.backoff_min_s" in message


def test_file_errors_name_the_file_and_the_dotted_path(tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text(
        'network = "testnet"\n[[markets]]\ncoin = "xyz:AAA"\n\n[risk]\nmax_los_usd = 1\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "unknown key 'risk.max_los_usd'" in str(info.value)


def test_unknown_table_is_rejected(tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text("[riks]\nloss_limit_usd = 1.0\n")
    with pytest.raises(ConfigError, match=r"unknown key 'riks'"):
        load_config(path)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('network = "sim"\nmode = \n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_key_shaped_values_are_not_echoed_in_errors():
    secret_like = "0x" + "5c" * 32
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"account": {"user": secret_like}})
    assert secret_like[2:] not in str(info.value).lower()
    assert "account.user" in str(info.value)


def test_a_key_pasted_as_key_env_is_refused_without_echo():
    secret_like = "ab" * 32  # a valid identifier, so only the shape check can catch it
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"account": {"key_env": secret_like}})
    assert "account.key_env" in str(info.value)
    assert "not the key itself" in str(info.value)
    assert secret_like not in str(info.value)


def test_a_private_key_entry_is_rejected_without_echo_and_points_to_the_right_source():
    secret_like = "ab" * 32
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"account": {"private_key": secret_like}})
    message = str(info.value)
    assert "unknown key 'account.private_key'" in message
    assert "account.key_env" in message
    assert secret_like not in message


# --- overrides ----------------------------------------------------------------------------------


def test_nested_overrides_merge_over_the_file_key_by_key(tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text("[websocket]\nping_after_s = 20.0\npong_timeout_s = 4.0\n")
    cfg = load_config(path, {"websocket": {"ping_after_s": 7.5}})
    assert cfg.websocket.ping_after_s == 7.5
    assert cfg.websocket.pong_timeout_s == 4.0
    assert cfg.websocket.backoff_max_s == 60.0


def test_dotted_overrides_and_none_values(tmp_path):
    cfg = load_config(
        overrides={
            "websocket.ping_after_s": 3.0,
            "mode": None,
            "sim": {"seed": None, "fund_usdc": 500.0},
        }
    )
    assert cfg.websocket.ping_after_s == 3.0
    assert cfg.mode == "trading"
    assert cfg.sim.seed == 7 and cfg.sim.fund_usdc == 500.0


def test_markets_override_replaces_the_list():
    cfg = load_config(
        overrides={"markets": [{"coin": "BTC"}, {"coin": "abc:X1", "threshold_bps": 9}]}
    )
    assert cfg.coins == ("BTC", "abc:X1")
    assert cfg.dexes == ("", "abc")
    assert cfg.market("abc:X1").threshold_bps == 9.0
    with pytest.raises(KeyError):
        cfg.market("xyz:AAA")


def test_override_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        load_config(overrides=[("mode", "trading")])  # type: ignore[arg-type]


def test_addresses_are_normalised_to_lowercase():
    user = "0x" + "AbCdEf0123" * 4
    cfg = load_config(
        overrides={"account": {"user": user, "signer": user.upper().replace("0X", "0x")}}
    )
    assert cfg.account.user == user.lower()
    assert cfg.account.signer == user.lower()


# --- a property: every scalar key either takes the value or the error names it ------------------


def _scalar_paths() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(t: mi.Type, prefix: tuple[str, ...]) -> None:
        if isinstance(t, mi.StructType):
            for f in t.fields:
                walk(f.type, (*prefix, f.name))
        elif not isinstance(t, mi.VarTupleType):
            out.append(prefix)

    walk(mi.type_info(Config), ())
    return out


SCALAR_PATHS = _scalar_paths()
ANY_TOML_SCALAR = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


@given(path=st.sampled_from(SCALAR_PATHS), value=ANY_TOML_SCALAR)
def test_any_scalar_value_is_taken_or_rejected_naming_its_path(path, value):
    overrides: dict[str, Any] = {".".join(path): value}
    # Mainnet trading needs the confirmation; grant it so `network` values are judged alone.
    overrides.setdefault("confirm_mainnet", True)
    try:
        cfg = load_config(overrides=overrides)
    except ConfigError as exc:
        assert ".".join(path) in str(exc)
        return
    node: Any = cfg
    for part in path:
        node = getattr(node, part)
    if isinstance(value, str) and path[-1] in ("user", "signer"):
        assert node == value.lower()
    else:
        assert node == value
        assert type(node) is type(value) or (isinstance(node, float) and type(value) is int)


# --- as_decimal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.1, "0.1"), (4.5, "4.5"), (11.0, "11.0"), (100000.0, "100000.0"), (3, "3")],
)
def test_as_decimal_keeps_the_written_digits(x, expected):
    assert as_decimal(x) == Decimal(expected)
    assert str(as_decimal(x)) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_as_decimal_round_trips_every_finite_float(x):
    assert float(as_decimal(x)) == x


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_as_decimal_refuses_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        as_decimal(bad)


@pytest.mark.parametrize("bad", [True, "1.0", None])
def test_as_decimal_refuses_non_numbers(bad):
    with pytest.raises(TypeError):
        as_decimal(bad)
