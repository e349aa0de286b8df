"""Settings objects from and to files: one definition of every default.

Every run setting in rayflavor is a frozen dataclass with one set of defaults (the scan's
``ScanSettings`` and ``IslandConfig``, the diffusion chain's settings). They reach a run from
four places, each overriding the one before:

1. the dataclass defaults (the only place a default is written down, with its type, bounds and
   help: :mod:`rayflavor.settings_model`; the click options are generated from it);
2. a named preset (``paper``: the published configuration);
3. ``--config FILE`` -- a TOML or JSON file; a run's stored ``scan.json`` / ``manifest.json``
   is such a file (its ``"settings"`` table is used), so ``--config OUT/scan.json`` repeats a run;
4. options given explicitly on the command line (:func:`rayflavor.cli.options.given`).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     n: int = 3
...     rate: float = 0.5
...     name: str | None = None
>>> from_mapping(Demo, {"n": 4, "rate": 1})
Demo(n=4, rate=1.0, name=None)
>>> to_mapping(replace_from(Demo(), {"name": "x"}))
{'n': 3, 'rate': 0.5, 'name': 'x'}
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from rayflavor.messages import one_line

T = TypeVar("T")


class ConfigError(ValueError):
    """A settings file or value that cannot be used (one line, naming the file or key)."""


def load_config(path: str | Path) -> dict:
    """The settings mapping of a ``.toml`` or ``.json`` file.

    A stored run manifest (``scan.json``, ``manifest.json``) holds its settings under a top-level
    ``"settings"`` table; that table is returned, so the manifest is itself a valid config file.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {p}: cannot be read ({exc})") from None
    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(text, parse_constant=_reject_constant)
        else:
            doc = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"--config {p}: not valid {kind} ({one_line(exc)})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {p}: expected a table of settings")
    settings = doc.get("settings", doc)
    if not isinstance(settings, dict):
        raise ConfigError(f"--config {p}: 'settings' must be a table")
    return settings


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and minimally converted) against the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: a value is required (got null)")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return from_mapping(tp, value, where=key)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: must be one of {', '.join(map(str, typing.get_args(tp)))}, not {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):  # 2.0 and 1e300 are refused, not rounded
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], mapping: dict, *, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``mapping`` (missing keys take the defaults).

    Unknown keys, wrong types and non-finite floats raise :class:`ConfigError` naming the key;
    a ``ValueError`` of the dataclass's own validation becomes a ConfigError too.
    """
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a table, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    hints = _hints(cls)
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where != "config" else k) for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def replace_from(obj: T, overrides: dict) -> T:
    """``dataclasses.replace(obj, **overrides)`` with the checks of :func:`from_mapping`;
    a nested dataclass field may be given as a (partial) mapping."""
    merged = to_mapping(obj)
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = to_mapping(v) if dataclasses.is_dataclass(v) else v
    return from_mapping(type(obj), merged)


def to_mapping(obj) -> dict:
    """A JSON-able mapping of a (nested) settings dataclass; tuples become lists."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"non-finite setting {v!r} cannot be stored")
        return v
    return conv(obj)


def default(cls, name: str):
    """The dataclass default of field ``name`` of ``cls`` (click options use it as theirs)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return f.default_factory()  # type: ignore[misc]
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


__all__ = ["ConfigError", "default", "from_mapping", "load_config", "replace_from", "to_mapping"]
