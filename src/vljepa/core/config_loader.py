"""Checked loading of dataclass configs: every value converted to its field's type hint, or a `ConfigError`.

The rules, applied recursively with the key path in every message (`stages.0.lr: expected float, got 'abc'`):
- float: an int, a float or a str that parses as one (`"1e-3"`); NaN and infinities are refused;
- int: an int, or an integral float or numeric str (`1e3` -> 1000; `1.5` is refused);
- bool: only true or false; str: only a str (a number is not a path or a name); Path: a str or a Path;
- `X | None`, other unions (the first member that accepts the value), `list[X]`, `tuple[X, Y]` and
  `tuple[X, ...]` (from YAML or JSON lists), `dict[K, V]`, nested dataclasses (from mappings; unknown keys
  are refused, listing the known ones);
- `Annotated[T, constraint, ...]`: the value of type T must also pass each constraint (`Bound(">=", 1)`,
  `OneOf(...)`); a `Normalise(function)` instead hands the raw value to a function that checks and
  normalises it (e.g. the `bf16` setting).
`CheckedConfig.__post_init__` applies the same conversion, so a config built in Python is checked too.

YAML is read with YAML 1.2's core rules for plain scalars (PyYAML implements YAML 1.1, where `1e-3` is a
string and `yes`/`no`/`on`/`off` are booleans): `1e-3` is a float, only `true`/`false` are booleans.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError


def auto_or_bool(value, key: str, auto_means: str) -> bool | str:
    """A three-way setting as True, False or "auto" (the strings true/false/auto in any case are accepted)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        value = value.strip().lower()
        return value if value == "auto" else value == "true"
    raise ValueError(f"{key}={value!r}: use auto ({auto_means}), true or false")


# ---------------------------------------------------------------------------------------------------- YAML


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars: decimal ints, floats with or without a dot
    (`1e-3`, `.5`, `.nan`, `.inf`), booleans only `true`/`false`; no sexagesimal numbers or timestamps."""


_YAML_11_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp", "value")}
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_11_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node)))
Yaml12Loader.add_constructor(
    "tag:yaml.org,2002:float",
    lambda loader, node: float(loader.construct_scalar(node).lower().replace(".inf", "inf").replace(".nan", "nan")),
)


def parse_yaml(text: str, source: str):
    """`text` parsed as YAML 1.2; `source` (a file, an override) names it in the error."""
    try:
        return yaml.load(text, Loader=Yaml12Loader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(error).split())})") from error


# -------------------------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Bound:
    """`value <op> limit`, e.g. `Bound(">=", 1)`."""

    op: str
    limit: float

    def __call__(self, value, key: str):
        compare = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}[self.op]
        if not compare(value, self.limit):
            raise ConfigError(f"{key}: must be {self.op} {self.limit}, got {value!r}")
        return value


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def __call__(self, value, key: str):
        if value not in self.choices:
            raise ConfigError(f"{key}: must be one of {', '.join(self.choices)}; got {value!r}")
        return value


@dataclass(frozen=True)
class Normalise:
    """The raw value goes to `function(value, key)`, which returns it normalised or raises ValueError."""

    function: Callable

    def __call__(self, value, key: str):
        try:
            return self.function(value, key)
        except ValueError as error:
            raise ConfigError(str(error)) from error


PositiveInt = typing.Annotated[int, Bound(">=", 1)]
NonNegativeInt = typing.Annotated[int, Bound(">=", 0)]
PositiveFloat = typing.Annotated[float, Bound(">", 0)]
NonNegativeFloat = typing.Annotated[float, Bound(">=", 0)]
Fraction = typing.Annotated[float, Bound(">", 0), Bound("<=", 1)]  # in (0, 1]
UnitInterval = typing.Annotated[float, Bound(">=", 0), Bound("<=", 1)]  # in [0, 1]

# ------------------------------------------------------------------------------------------- conversion


@contextmanager
def inside(key: str | int) -> Iterator[None]:
    """Prefix the key path of a ConfigError raised within with `key.`: messages start with their key path."""
    try:
        yield
    except ConfigError as error:
        error.args = (f"{key}.{error}",)
        raise


@functools.cache
def field_hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _describe(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arm is type(None) else _describe(arm) for arm in args)
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} fields"
    if origin is tuple:
        return f"a list of {len(args)} values" if Ellipsis not in args else "a list"
    if origin is list or hint is list:
        return "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _refuse(hint, value, key: str) -> ConfigError:
    return ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")


def _to_float(value, key: str) -> float:
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _refuse(float, value, key) from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(float, value, key)
    if not math.isfinite(number):
        raise ConfigError(f"{key}: expected a finite float, got {value!r}")
    return float(number)


def _to_int(value, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    try:
        number = _to_float(value, key)
    except ConfigError:
        raise _refuse(int, value, key) from None
    if not number.is_integer():
        raise ConfigError(f"{key}: expected int, got {value!r} (not a whole number)")
    return int(number)


def convert(hint, value, key: str):
    """`value` as the type `hint` describes (see the module docstring), or a ConfigError naming `key`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        checks = args[1:]
        if not any(isinstance(check, Normalise) for check in checks):
            value = convert(args[0], value, key)
        for check in checks:
            value = check(value, key)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [arm for arm in args if arm is not type(None)]
        if len(arms) == 1:
            return convert(arms[0], value, key)
        for arm in arms:
            try:
                return convert(arm, value, key)
            except ConfigError:
                continue
        raise _refuse(hint, value, key)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _refuse(hint, value, key)
        with inside(key):
            return from_dict(hint, value)
    if hint is float:
        return _to_float(value, key)
    if hint is int:
        return _to_int(value, key)
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise _refuse(hint, value, key)
        return value
    if hint is Path:
        if not isinstance(value, str | Path):
            raise _refuse(hint, value, key)
        return Path(value)
    if origin in (list, tuple) or hint in (list, tuple):
        return _convert_sequence(hint, value, key)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _refuse(hint, value, key)
        key_hint, value_hint = args or (typing.Any, typing.Any)
        return {convert(key_hint, k, f"{key}.{k}"): convert(value_hint, v, f"{key}.{k}") for k, v in value.items()}
    if hint is typing.Any:
        return value
    raise TypeError(f"{key}: the config loader does not handle the type {hint!r}")


def _convert_sequence(hint, value, key: str):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _refuse(hint, value, key)
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin is list:
        item_hints = [args[0] if args else typing.Any] * len(value)
    elif not args or args[-1] is Ellipsis:
        item_hints = [args[0] if args else typing.Any] * len(value)
    elif len(value) != len(args):
        raise ConfigError(f"{key}: expected a list of {len(args)} values, got {len(value)}: {list(value)!r}")
    else:
        item_hints = list(args)
    return origin(convert(item, v, f"{key}.{i}") for i, (item, v) in enumerate(zip(item_hints, value)))


def from_dict(cls: type, data: Mapping):
    """Build the dataclass `cls` (nested ones too) from a mapping: unknown keys refused, every value converted."""
    hints = field_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for name in data:
        if name not in names:
            raise ConfigError(f"{name}: unknown config key; known keys: {', '.join(names)}")
    return cls(**{name: convert(hints[name], value, name) for name, value in data.items()})


class CheckedConfig:
    """Base of the configs: on construction each field is converted and checked against its type hint (so a
    config built in Python is held to the rules a loaded one is), then `check` runs the checks across fields."""

    def __post_init__(self) -> None:
        hints = field_hints(type(self))
        for f in dataclasses.fields(self):  # object.__setattr__: frozen configs are converted too
            object.__setattr__(self, f.name, convert(hints[f.name], getattr(self, f.name), f.name))
        self.check()

    def check(self) -> None:
        """Checks relating several fields (each field alone is checked by its type hint); raise ConfigError."""


# ----------------------------------------------------------------------------------------- merging, loading


def _section(hint) -> type | None:
    """The dataclass a field holds (through Annotated and `| None`), or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _section(args[0])
    if origin in (typing.Union, types.UnionType):
        sections = [s for s in map(_section, args) if s is not None]
        return sections[0] if len(sections) == 1 else None
    return hint if dataclasses.is_dataclass(hint) else None


def merge(cls: type, base: dict, update: Mapping) -> None:
    """Lay `update` over `base`, the plain-dict form of a `cls`: a field holding a dataclass merges key by key,
    every other value (a number, a list of stages, a mapping such as a mixture) is replaced whole."""
    hints = field_hints(cls)
    for key, value in update.items():
        if key not in hints:
            raise ConfigError(f"{key}: unknown config key; known keys: {', '.join(hints)}")
        section = _section(hints[key])
        if section is not None and isinstance(value, Mapping) and isinstance(base.get(key), dict):
            with inside(key):
                merge(section, base[key], value)
        else:
            base[key] = value


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML 1.2) to a nested dict; `stages.1.steps=5` indexes
    a list, which must already have that item."""
    for item in overrides:
        key, separator, raw = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. stages.0.steps=100)")
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts):
            here = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not (part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node)):
                    raise ConfigError(
                        f"{here}: no such item; {'.'.join(parts[:depth]) or 'the list'} has "
                        f"{len(node)} item{'s' if len(node) != 1 else ''} (0..{len(node) - 1})"
                    )
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"{here}: {'.'.join(parts[:depth])} is a value ({node!r}), not a section")
            if depth == len(parts) - 1:
                node[part] = parse_yaml(raw, f"override {item!r}")
            else:
                node = node[part] if isinstance(node, list) else node.setdefault(part, {})
    return data


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file's top-level mapping (empty file: {})."""
    data = parse_yaml(Path(path).read_text(), str(path))
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type, path: str | Path | None = None, overrides: Sequence[str] = ()):
    """Defaults of the dataclass `cls` <- YAML file <- `key=value` overrides, checked into a `cls`."""
    data = dataclasses.asdict(cls())
    if path is not None:
        merge(cls, data, read_yaml_mapping(path))
    return from_dict(cls, apply_overrides(data, list(overrides)))
