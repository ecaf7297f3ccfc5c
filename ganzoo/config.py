"""Typed configs and how user overrides (``--set key=value``) reach them.

A run has three dataclasses: the plugin's model config, the engine's ``TrainConfig`` and the
``DataConfig``. Keys are flat (``--set loss=hinge``, ``--set ngf=32``); a key may be prefixed
(``model.ngf``, ``train.loss``) where a name exists in two. Precedence, lowest first: dataclass
defaults, the plugin's ``train_defaults``, the chosen preset, explicit overrides. ``None`` overrides
are ignored, so callers can pass optional CLI flags straight through.

Values are checked when read: a field declared with ``setting(default, gt=0)`` (or ``ge``, ``le``,
``lt``, ``choices``) refuses anything outside its range with the valid range in the message, and no
float setting may be NaN or infinite.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ganzoo.errors import UserError


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take; None bounds are open."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None

    def allows(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        low = f">= {self.ge:g}" if self.ge is not None else f"> {self.gt:g}" if self.gt is not None else None
        high = f"<= {self.le:g}" if self.le is not None else f"< {self.lt:g}" if self.lt is not None else None
        return " and ".join(bound for bound in (low, high) if bound)


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **bounds: Any) -> Any:
    """A config field with a checked range: ``lr: float = setting(2e-4, gt=0)``.

    ``bounds`` are those of ``Range`` (ge, gt, le, lt, choices); None values of an optional field
    are always allowed."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"range": Range(**bounds)})


def check_ranges(config: Any, section: str = "") -> None:
    """Refuse values outside the ranges declared with ``setting()``."""
    for f in dataclasses.fields(config):
        bounds = f.metadata.get("range")
        value = getattr(config, f.name)
        if bounds is not None and value is not None and not bounds.allows(value):
            where = f" ({section})" if section else ""
            raise UserError(f"{f.name}={value!r}{where} is out of range: it must be {bounds.describe()}")


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turn a CLI string (or a JSON value from a saved config) into the annotated type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return coerce(value, args[0], key)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise UserError(f"{key}={value!r} is not allowed: choose one of {', '.join(map(str, choices))}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        args = typing.get_args(annotation)
        item = args[0] if args else str
        return origin(coerce(v.strip() if isinstance(v, str) else v, item, key) for v in value)
    if origin is dict or annotation is dict:
        return json.loads(value) if isinstance(value, str) else dict(value)
    try:
        if annotation is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if annotation is int:
            if isinstance(value, str):
                value = value.replace("_", "")
                number = float(value)  # allows "1e5"
                if number != int(number):
                    raise ValueError
                return int(number)
            return int(value)
        if annotation is float:
            number = float(value)
            if not math.isfinite(number):
                raise UserError(f"{key}={value!r} is not allowed: settings must be finite numbers")
            return number
        if annotation is str:
            return str(value)
    except ValueError:
        name = getattr(annotation, "__name__", str(annotation))
        raise UserError(f"{key}={value!r} is not a valid {name}") from None
    return value


def build(cls: type, values: Mapping[str, Any], section: str = "") -> Any:
    types_ = field_types(cls)
    unknown = set(values) - set(types_)
    if unknown:
        raise UserError(_unknown_message(sorted(unknown)[0], list(types_), section))
    config = cls(**{k: coerce(v, types_[k], k) for k, v in values.items()})
    check_ranges(config, section)
    return config


def _unknown_message(key: str, known: list[str], section: str) -> str:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see `ganzoo plugins info PLUGIN` for the keys"
    where = f" for {section}" if section else ""
    return f"unknown setting '{key}'{where}: {hint}"


def split_overrides(
    overrides: Mapping[str, Any], sections: Mapping[str, type]
) -> dict[str, dict[str, Any]]:
    """Route flat or prefixed (``model.ngf``) keys to the section whose dataclass has that field."""
    known = {name: set(field_types(cls)) for name, cls in sections.items()}
    routed: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in overrides.items():
        if value is None:
            continue
        prefix, _, bare = key.rpartition(".")
        if prefix:
            if prefix not in known:
                raise UserError(f"unknown section '{prefix}' in '{key}': use one of {', '.join(known)}")
            owners = [prefix]
        else:
            owners = [name for name, fields in known.items() if bare in fields]
        if not owners:
            everything = sorted(set().union(*known.values()))
            raise UserError(_unknown_message(bare, everything, prefix))
        if bare not in known[owners[0]]:
            raise UserError(_unknown_message(bare, sorted(known[owners[0]]), owners[0]))
        routed[owners[0]][bare] = value
    return routed


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` with a one-line error for malformed items."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        result[key.strip()] = value.strip()
    return result


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
