"""Experimental inputs: versioned TOML data files with their sources.

A data set is a TOML file in the ``rayflavor-data/1`` format (see the shipped
``data/nufit-6.0-sk.toml`` for a commented example).  Shipped data sets are found by
name (:data:`SHIPPED`); any other value is taken as a path to a file of the same format.

Each observable has a best fit ``central``, 1 sigma errors ``plus``/``minus`` and a
3 sigma window ``range3`` (if absent: ``central -/+ 3 minus/plus``).  Files are validated at
load: every number finite, 1 sigma errors > 0, ``range3`` non-empty and holding ``central``,
labels and bounds finite -- a :class:`DataError` names the file and the entry.  Observables live
under an ordering section (``NO`` or ``IO``) or under ``common``; :meth:`DataSet.get`
looks in the ordering section first.

>>> d = load("nufit-6.0+pdg-2024")
>>> d.window("pmns_delta", "NO")
(117.0, 237.0)
>>> d.get("m_t", "NO").central
172.56
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

FORMAT = "rayflavor-data/1"
SHIPPED = ("nufit-6.0-sk", "nufit-6.0+pdg-2024")
ORDERINGS = ("NO", "IO")


class DataError(ValueError):
    """A data file is missing, unreadable or not in the rayflavor-data/1 format."""


@dataclass(frozen=True)
class Observable:
    """One measured quantity: best fit, asymmetric 1 sigma errors and 3 sigma window."""

    name: str
    central: float
    plus: float | None = None
    minus: float | None = None
    range3: tuple[float, float] | None = None
    unit: str = ""
    source: str = ""

    def window3(self) -> tuple[float, float]:
        """The 3 sigma window ``(lo, hi)``."""
        if self.range3 is not None:
            return self.range3
        if self.plus is None or self.minus is None:
            raise DataError(f"observable {self.name!r} has neither range3 nor 1 sigma errors")
        return (self.central - 3.0 * self.minus, self.central + 3.0 * self.plus)

    def sigmas(self) -> tuple[float, float]:
        """1 sigma errors ``(minus, plus)``; from a third of ``range3`` where not given."""
        if self.plus is not None and self.minus is not None:
            return (self.minus, self.plus)
        lo, hi = self.window3()
        return ((self.central - lo) / 3.0, (hi - self.central) / 3.0)


@dataclass(frozen=True)
class DataSet:
    """A parsed data file."""

    name: str
    description: str
    path: str
    sources: dict = field(repr=False)
    observables: dict = field(repr=False)  # {"NO"|"IO"|"common": {name: Observable}}
    labels: dict = field(repr=False)  # {"NO"|"IO": {"dm21", "dm3l", "abs_u"}}
    bounds: dict = field(default_factory=dict, repr=False)  # {name: {"value", "unit", "cl", "source"}}

    def bound(self, name: str) -> float:
        """An upper limit drawn in figures (e.g. ``m_sum``, ``m_bb``), by name."""
        if name not in self.bounds:
            raise DataError(f"data set {self.name!r} has no [bounds.{name}]")
        return self.bounds[name]["value"]

    def get(self, name: str, ordering: str = "NO") -> Observable:
        for section in (ordering, "common"):
            obs = self.observables.get(section, {}).get(name)
            if obs is not None:
                return obs
        raise DataError(f"data set {self.name!r} has no observable {name!r} for ordering {ordering}")

    def window(self, name: str, ordering: str = "NO") -> tuple[float, float]:
        return self.get(name, ordering).window3()

    def has(self, name: str, ordering: str = "NO") -> bool:
        return any(name in self.observables.get(s, {}) for s in (ordering, "common"))

    def require(self, names: list[str] | tuple[str, ...], orderings=ORDERINGS, *, windows=(), positive=()) -> None:
        """Raise :class:`DataError` naming every observable a model needs but the file lacks.

        ``windows``: names that also need a 3 sigma window (``range3`` or both 1 sigma errors);
        ``positive``: names whose ``central`` must be > 0 (a model divides by it)."""
        missing = sorted({n for o in orderings for n in names if not self.has(n, o)})
        if missing:
            raise DataError(f"data set {self.name!r} ({self.path}) lacks observables: {', '.join(missing)}")
        for o in orderings:
            for n in windows:
                obs = self.get(n, o)
                if obs.range3 is None and (obs.plus is None or obs.minus is None):
                    raise DataError(f"{self.path}: observable {n} ({o}) needs range3 or both plus and minus")
            for n in positive:
                if not self.get(n, o).central > 0:
                    raise DataError(f"{self.path}: observable {n} ({o}) needs central > 0, not {self.get(n, o).central}")


def _table(raw: dict, key: str, path: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise DataError(f"{path}: {key} must be a table")
    return value


def _check_observable(obs: Observable, where: str) -> None:
    """One line naming the file and the entry for anything that would make chi2 or a window NaN."""
    values = {"central": obs.central, "plus": obs.plus, "minus": obs.minus}
    if obs.range3 is not None:
        values.update({"range3[0]": obs.range3[0], "range3[1]": obs.range3[1]})
    for key, v in values.items():
        if v is not None and not math.isfinite(v):
            raise DataError(f"{where}: {key} = {v} (must be a finite number)")
    for key in ("plus", "minus"):
        if values[key] is not None and not values[key] > 0:
            raise DataError(f"{where}: {key} = {values[key]} (a 1 sigma error must be > 0)")
    if obs.range3 is not None:
        lo, hi = obs.range3
        if not lo < hi:
            raise DataError(f"{where}: range3 = [{lo}, {hi}] is empty")
        if not lo <= obs.central <= hi:
            raise DataError(f"{where}: central = {obs.central} lies outside range3 = [{lo}, {hi}]")


def _parse(raw: dict, path: str) -> DataSet:
    if raw.get("format") != FORMAT:
        raise DataError(f"{path}: not a {FORMAT} file (format = {raw.get('format')!r})")
    observables: dict[str, dict[str, Observable]] = {}
    for section, entries in _table(raw, "observables", path).items():
        if section not in ("NO", "IO", "common"):
            raise DataError(f"{path}: unknown observables section {section!r} (use NO, IO or common)")
        if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
            raise DataError(f"{path}: observables.{section} must be a table of observable tables")
        observables[section] = {}
        for name, e in entries.items():
            try:
                r3 = e.get("range3")
                obs = Observable(
                    name=name,
                    central=float(e["central"]),
                    plus=None if e.get("plus") is None else float(e["plus"]),
                    minus=None if e.get("minus") is None else float(e["minus"]),
                    range3=None if r3 is None else (float(r3[0]), float(r3[1])),
                    unit=str(e.get("unit", "")),
                    source=str(e.get("source", "")),
                )
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise DataError(f"{path}: observable {section}.{name} is malformed ({exc})") from None
            _check_observable(obs, f"{path}: observable {section}.{name}")
            observables[section][name] = obs
    labels = {}
    for ordering, entry in _table(raw, "labels", path).items():
        try:
            labels[ordering] = {
                "dm21": float(entry["dm21"]),
                "dm3l": float(entry["dm3l"]),
                "abs_u": [[float(x) for x in row] for row in entry["abs_u"]],
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{path}: labels.{ordering} is malformed ({exc})") from None
        lab = labels[ordering]
        if len(lab["abs_u"]) != 3 or any(len(row) != 3 for row in lab["abs_u"]):
            raise DataError(f"{path}: labels.{ordering}.abs_u must be a 3x3 table")
        values = [lab["dm21"], lab["dm3l"], *(v for row in lab["abs_u"] for v in row)]
        if not all(math.isfinite(v) for v in values):
            raise DataError(f"{path}: labels.{ordering} holds a NaN or infinite value")
        if lab["dm21"] <= 0 or lab["dm3l"] == 0 or not all(0.0 <= v <= 1.0 for row in lab["abs_u"] for v in row):
            raise DataError(f"{path}: labels.{ordering} needs dm21 > 0, dm3l != 0 and 0 <= |U| <= 1")
    bounds = {}
    for name, entry in _table(raw, "bounds", path).items():
        try:
            bounds[name] = {**entry, "value": float(entry["value"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: bounds.{name} is malformed ({exc})") from None
        if not (math.isfinite(bounds[name]["value"]) and bounds[name]["value"] > 0):
            raise DataError(f"{path}: bounds.{name} must be a finite positive value, not {bounds[name]['value']}")
    return DataSet(
        name=str(raw.get("name", Path(path).stem)),
        description=str(raw.get("description", "")),
        path=path,
        sources=dict(raw.get("sources", {})),
        observables=observables,
        labels=labels,
        bounds=bounds,
    )


def shipped_text(key: str) -> str:
    """The TOML text of shipped data set ``key``."""
    return resources.files("rayflavor.physics").joinpath("data", f"{key}.toml").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _load_shipped(key: str) -> DataSet:
    """Shipped files are immutable: parse each once per process."""
    return _parse(tomllib.loads(shipped_text(key)), f"<shipped {key}>")


def loads(text: str, where: str) -> DataSet:
    """Parse the text of a ``rayflavor-data/1`` file; ``where`` names it in errors and becomes
    :attr:`DataSet.path` (e.g. the URI of a scan's own copy)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{where}: cannot be read as TOML ({exc})") from None
    return _parse(raw, where)


def load(name_or_path: str | Path) -> DataSet:
    """Load a shipped data set by name, or any ``rayflavor-data/1`` TOML file by path."""
    key = str(name_or_path)
    if key in SHIPPED:
        return _load_shipped(key)
    path = Path(key)
    if not path.is_file():
        raise DataError(f"data set {key!r} is neither a shipped name ({', '.join(SHIPPED)}) nor a readable file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as TOML ({exc})") from None
    return _parse(raw, str(path))
