"""How a run setting is declared: once, as a field of a frozen dataclass, with everything about it.

Every setting of rayflavor (the scan's :class:`~rayflavor.orchestration.scan_settings.ScanSettings`
and :class:`~rayflavor.methods.ga.config.IslandConfig`, the diffusion settings in
:mod:`rayflavor.methods.diffusion.settings`, :class:`~rayflavor.methods.reference.ReferenceSettings`)
is one line::

    islands: int = setting(64, lo=1, hi=10**6, option=True, help="Number of NSGA-III islands.")

which holds its type (the annotation), default, bounds (``lo``/``hi``, open with
``lo_open``/``hi_open``), choices, help text and whether it is a command-line option of the
command that runs that settings class (``option=True``: ``--islands``; a string: that option name;
``None``: reachable through ``--config FILE`` only).  A field holding a nested settings class
takes ``option=True`` to offer the nested class's own options, or a mapping ``{field: option}`` to
offer just those of its fields under those names (``option`` may be ``(name, help)`` to word the
help for the outer command).

:func:`check` (called by every class's ``__post_init__``) enforces the type and bounds, so a value
is refused at the door in the same words whether it came from the library, a ``--config`` file or
the command line; :mod:`rayflavor.cli.options` turns the fields marked as options into click
options.  Adding a setting and offering it on the command line is therefore one line: a field
with ``setting(default, help=..., option=True)`` in its class (the CLI, ``--config`` and
``rayflavor config show`` follow).  Keep each command at 12 options or fewer (a test counts them):
if the command is full, leave ``option`` out and the setting is reachable through ``--config``.

Why dataclasses and not pydantic: importing pydantic 2.14 costs 24-75 ms and building two small
models another ~50 ms, against 5-12 ms for dataclasses (``python -X importtime``, 2026-12-06,
docs/experiments.md#2026-12-06-settings-import), and every ``rayflavor`` command imports the settings.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     n: int = setting(3, lo=1, hi=10, help="a count")
...     def __post_init__(self):
...         check(self)
>>> Demo(n=11)
Traceback (most recent call last):
...
ValueError: n must be an integer in [1, 10], not 11
>>> Demo(n=2.0)
Traceback (most recent call last):
...
ValueError: n must be an integer in [1, 10], not 2.0
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Largest seed of any run (numpy's generators take any non-negative integer; 2**63 - 1 keeps a
#: seed an int64 in Parquet and JSON readers that store integers as int64).
MAX_SEED = 2**63 - 1
#: Upper bound of an integer setting that declares none: large enough for any real run (30 million
#: samples, a million generations), small enough that no count overflows or allocates the machine.
MAX_INT = 10**12
#: Upper bound of a float setting that declares none (finite, far beyond any real value).
MAX_FLOAT = 1e12


@dataclass(frozen=True)
class Spec:
    """What a field's metadata says about it (see the module docstring)."""

    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    option: bool | str | dict[str, str | bool | tuple[str, str]] | None = None
    #: command line text -> value (e.g. a duration "10m" -> 600.0); None: click's own type conversion
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None


def setting(default: Any = dataclasses.MISSING, *, help: str, factory: Callable[[], Any] | None = None,
            lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
            choices: tuple | None = None, option: bool | str | dict | None = None,
            parse: Callable[[str], Any] | None = None, metavar: str | None = None) -> Any:
    """A dataclass field declaring one setting (see the module docstring); ``factory`` instead of
    ``default`` for a nested settings object."""
    spec = Spec(help=help, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices, option=option,
                parse=parse, metavar=metavar)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


def seed_setting(default: int | None = 0, help: str = "Base seed of the run's random streams.") -> Any:
    """The ``seed`` field of every settings class: an integer in [0, :data:`MAX_SEED`]."""
    return setting(default, lo=0, hi=MAX_SEED, help=help, option=True)


@functools.cache
def fields_of(cls: type) -> dict[str, tuple[Spec, Any]]:
    """``{name: (Spec, resolved annotation)}`` of every declared setting of class ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f.metadata["setting"], hints[f.name]) for f in dataclasses.fields(cls)
            if "setting" in f.metadata}


def spec(cls: type, name: str) -> Spec:
    """The :class:`Spec` of field ``name`` of ``cls`` (KeyError naming it otherwise)."""
    try:
        return fields_of(cls)[name][0]
    except KeyError:
        raise KeyError(f"{cls.__name__} declares no setting {name!r}") from None


def base_type(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of an annotation: ``int | None`` -> ``(int, True)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def bounds(s: Spec, tp: Any) -> tuple[float | None, float | None]:
    """The field's (lo, hi), with the default upper bound of its type when it declares none."""
    if tp is int:
        return s.lo, MAX_INT if s.hi is None else s.hi
    if tp is float:
        return s.lo, MAX_FLOAT if s.hi is None else s.hi
    return s.lo, s.hi


def interval(s: Spec, tp: Any) -> str:
    lo, hi = bounds(s, tp)
    left = "(" if s.lo_open or lo is None else "["
    right = ")" if s.hi_open or hi is None else "]"
    fmt = (lambda v: str(v) if isinstance(v, int) else f"{v:g}")
    return f"{left}{'-inf' if lo is None else fmt(lo)}, {'inf' if hi is None else fmt(hi)}{right}"


def _inside(v: float, s: Spec, lo, hi) -> bool:
    if lo is not None and (v <= lo if s.lo_open else v < lo):
        return False
    return not (hi is not None and (v >= hi if s.hi_open else v > hi))


def check_value(name: str, value: Any, s: Spec, tp: Any) -> Any:
    """``value`` of setting ``name`` checked against its spec; returns it (an int as float for a
    float field); ValueError in one line naming the setting and what it accepts."""
    tp, optional = base_type(tp)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} needs a value (got none)")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            raise ValueError(f"{name} must be a {tp.__name__}, not {type(value).__name__}")
        return value
    if s.choices is not None:
        if value not in s.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, s.choices))}, not {value!r}")
        return value
    lo, hi = bounds(s, tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or not _inside(value, s, lo, hi):
            raise ValueError(f"{name} must be an integer in {interval(s, tp)}, not {value!r}")
        return value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not _inside(value, s, lo, hi):
            raise ValueError(f"{name} must be a finite number in {interval(s, tp)}, not {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        return value
    return value


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"`` -> seconds.

    >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("45")
    (600.0, 5400.0, 45.0)
    """
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 2h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def check(obj: Any) -> None:
    """Check every declared setting of the frozen dataclass ``obj`` (its ``__post_init__`` calls
    this); ints given for float fields become floats."""
    for name, (s, tp) in fields_of(type(obj)).items():
        value = check_value(name, getattr(obj, name), s, tp)
        if value is not getattr(obj, name):
            object.__setattr__(obj, name, value)


__all__ = ["MAX_FLOAT", "MAX_INT", "MAX_SEED", "Spec", "base_type", "bounds", "check", "check_value", "fields_of",
           "interval", "parse_duration", "seed_setting", "setting", "spec"]
