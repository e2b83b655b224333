"""Finding a strategy by name and checking its parameters.

A strategy is named `package.module:Class` (imported) or `path/to/file.py:Class` (loaded from
that file). Its `[strategy.params]` table is converted to the class's `Params` (a dataclass or
msgspec Struct): a missing, unknown or mistyped key is one `StrategyError` line naming
`strategy.params.<key>`, like every other configuration error.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from hip3.strategy.api import Strategy

__all__ = ["BUILTIN", "StrategyError", "load_strategy_class", "strategy_params"]

BUILTIN = "hip3.strategy.taker:DislocationTaker"

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


class StrategyError(ValueError):
    """The strategy cannot be loaded, or its parameters do not fit it (one line)."""


def load_strategy_class(name: str) -> type[Strategy]:
    module_name, sep, attr = name.rpartition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise StrategyError(
            f"strategy.name = {name!r}: expected 'package.module:Class' or 'path/file.py:Class'"
        )
    try:
        if module_name.endswith(".py"):
            module = _load_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except StrategyError:
        raise
    except Exception as exc:  # an import error of any kind is the user's module's
        raise StrategyError(
            f"strategy.name = {name!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise StrategyError(f"strategy.name = {name!r}: {module_name} has no {attr}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(
            f"strategy.name = {name!r}: {attr} is not a subclass of hip3.strategy.api.Strategy"
        )
    return cls


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise StrategyError(f"strategy.name: no such file {str(path)!r}")
    module_name = "hip3_strategy_" + re.sub(r"\W", "_", str(path.resolve()))
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy.name: cannot load {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def strategy_params(cls: type[Strategy], raw: Mapping[str, Any] | None) -> Any:
    """`raw` converted to `cls.Params`, or None for a strategy without parameters."""
    params_type = cls.Params
    raw = dict(raw or {})
    if params_type is None:
        if raw:
            key = sorted(raw)[0]
            raise StrategyError(
                f"unknown key 'strategy.params.{key}': {cls.__name__} takes no parameters"
            )
        return None
    known = getattr(params_type, "__struct_fields__", None)
    if known is None:
        known = tuple(getattr(params_type, "__dataclass_fields__", ()))
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise StrategyError(f"unknown key 'strategy.params.{unknown[0]}'")
    try:
        return msgspec.convert(raw, params_type, strict=False)
    except msgspec.ValidationError as exc:
        raise StrategyError(_one_line(exc, raw)) from None
    except (TypeError, ValueError) as exc:  # a Params __post_init__ refusing a value
        raise StrategyError(f"strategy.params: {exc}") from None


def _one_line(exc: msgspec.ValidationError, raw: Mapping[str, Any]) -> str:
    match = _AT.match(str(exc))
    assert match is not None
    text, path = match["msg"], match["path"] or ""
    unknown = re.fullmatch(r"Object contains unknown field `(?P<f>[^`]*)`", text)
    if unknown:
        return f"unknown key 'strategy.params{path}.{unknown['f']}'"
    missing = re.fullmatch(r"Object missing required field `(?P<f>[^`]*)`", text)
    if missing:
        return f"strategy.params{path}.{missing['f']} is missing"
    key = path.lstrip(".")
    value = raw.get(key, "(missing)") if key and "." not in key else "(given)"
    return f"strategy.params{path} = {value!r}: {text[0].lower()}{text[1:]}"
