"""Targets on FN predictions: ``m_ee<1e-4`` asks a scan for a corner of model space.

A target is ``NAME OP VALUE`` with ``OP`` one of ``<``, ``<=``, ``>``, ``>=`` and ``NAME`` one of
:data:`OBSERVABLES` -- the predictions ``rayflavor analyze`` summarises for FN models, in their
units: ``m_ee``, ``m_lightest``, ``m_sum`` [eV]; ``pmns_delta``, ``pmns_alpha1``,
``pmns_alpha2`` [deg]; ``j_ckm`` (Jarlskog invariant); ``max_mass_error`` (``max_i |m_i/m_i0 - 1|``
over the nine charged masses, relative); ``max_exponent`` (largest FN exponent, an integer).
:func:`parse` is the one place target text is read (the ``--target`` option, ``[island] targets``
in a ``--config`` file, a stored ``scan.json``): it raises :class:`ValueError` in one line naming
the known observables, and :attr:`Target.text` is the canonical spelling stored in scan.json.

Whether a model meets a target is the plain comparison (:meth:`Target.met`); a non-finite value
meets none.  The scan's extra objective is the *shaped residual* (:meth:`Target.residual`), 0
exactly where the target is met and positive elsewhere, with a slope towards it:

* positive observables (``m_ee``, ``m_lightest``, ``m_sum``, ``max_mass_error``): the log
  distance ``ln(O/V)`` (``<``) or ``ln(V/O)`` (``>``); the value must be > 0;
* the others: the distance in units of a natural scale, ``(O - V)/s`` or ``(V - O)/s`` with
  ``s`` = 10 deg for the phases, 1e-5 for ``j_ckm``, 1 for ``max_exponent``;

at least :data:`EDGE` off the target (a strict ``<`` at ``O = V`` is not met), :data:`MISSING`
for a non-finite value or a non-positive one of a positive observable below a ``>`` target.

>>> t = parse(" m_ee < 1e-4 ")
>>> t.text, t.unit
('m_ee<0.0001', 'eV')
>>> import numpy as np
>>> o = np.array([5e-5, 1e-4, 1e-3, np.nan])
>>> t.met(o).tolist(), np.round(t.residual(o), 3).tolist()
([True, False, False, False], [0.0, 0.0, 2.303, 50.0])
>>> parse("m_bb<1")
Traceback (most recent call last):
...
ValueError: target 'm_bb<1': unknown observable 'm_bb' (use j_ckm, m_ee, m_lightest, m_sum, max_exponent, max_mass_error, pmns_alpha1, pmns_alpha2, pmns_delta)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rayflavor.physics.fn_kernel import MASSES


@dataclass(frozen=True)
class Observable:
    """A prediction a target may name: its unit, whether it is positive (log distance) and the
    scale of its linear distance otherwise."""

    unit: str
    positive: bool
    scale: float = 1.0


#: name -> what a target on it means (module docstring)
OBSERVABLES: dict[str, Observable] = {
    "j_ckm": Observable("", False, 1e-5),
    "m_ee": Observable("eV", True),
    "m_lightest": Observable("eV", True),
    "m_sum": Observable("eV", True),
    "max_exponent": Observable("", False, 1.0),
    "max_mass_error": Observable("", True),
    "pmns_alpha1": Observable("deg", False, 10.0),
    "pmns_alpha2": Observable("deg", False, 10.0),
    "pmns_delta": Observable("deg", False, 10.0),
}
OPERATORS = ("<", "<=", ">", ">=")
MISSING = 50.0  # residual of a non-finite value (as the shaped residuals' missing mass)
EDGE = 1e-9  # smallest residual off the target
_GRAMMAR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*", re.ASCII)


def _number(v: float) -> str:
    """The shortest text that reads back as ``v`` (``1e-4`` -> ``0.0001``)."""
    short = format(v, "g")
    return short if float(short) == v else repr(v)


@dataclass(frozen=True)
class Target:
    """One target ``name op value`` (build with :func:`parse`)."""

    name: str
    op: str
    value: float

    @property
    def text(self) -> str:
        """Canonical spelling, e.g. ``m_ee<0.0001`` (what scan.json stores and reports name)."""
        return f"{self.name}{self.op}{_number(self.value)}"

    @property
    def unit(self) -> str:
        return OBSERVABLES[self.name].unit

    def met(self, values: np.ndarray) -> np.ndarray:
        """Boolean per value: the comparison holds (a non-finite value, NaN or inf: never)."""
        o = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            held = {"<": o < self.value, "<=": o <= self.value, ">": o > self.value, ">=": o >= self.value}[self.op]
        return held & np.isfinite(o)

    def residual(self, values: np.ndarray) -> np.ndarray:
        """Shaped residual per value: 0 exactly where :meth:`met`, positive elsewhere (module docstring)."""
        o = np.asarray(values, dtype=np.float64)
        obs = OBSERVABLES[self.name]
        below = self.op in ("<", "<=")
        with np.errstate(all="ignore"):
            if obs.positive:
                d = np.log(o / self.value) if below else np.log(self.value / o)
                d = np.where(below | (o > 0), d, MISSING)
            else:
                d = (o - self.value) / obs.scale if below else (self.value - o) / obs.scale
            r = np.where(self.met(o), 0.0, np.maximum(d, EDGE))
        return np.where(np.isfinite(o) & np.isfinite(r), r, MISSING)


def parse(text: object) -> Target:
    """The target written as ``text`` (module docstring); ValueError in one line otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a target is text like m_ee<1e-4, not {text!r}")
    m = _GRAMMAR.fullmatch(text)
    names = ", ".join(OBSERVABLES)
    if m is None:
        raise ValueError(f"target {text!r}: not NAME<VALUE, NAME<=VALUE, NAME>VALUE or NAME>=VALUE "
                         f"(NAME one of {names})")
    name, op, number = m.groups()
    if name not in OBSERVABLES:
        raise ValueError(f"target {text!r}: unknown observable {name!r} (use {names})")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"target {text!r}: {number!r} is not a finite number")
    obs = OBSERVABLES[name]
    if obs.positive and value <= 0:
        raise ValueError(f"target {text!r}: {name} is positive{f' [{obs.unit}]' if obs.unit else ''}, "
                         f"the value must be > 0")
    return Target(name, op, value)


def parse_all(texts: Sequence[str]) -> tuple[Target, ...]:
    """Every target of ``texts``, each once (first spelling kept), in order."""
    out: dict[str, Target] = {}
    for t in texts:
        target = parse(t)
        out.setdefault(target.text, target)
    return tuple(out.values())


def canonical(text: str) -> str:
    """``parse(text).text`` (a click/settings parse hook)."""
    return parse(text).text


def values(columns: Mapping[str, np.ndarray], name: str, m0: Mapping[str, float] | None = None) -> np.ndarray:
    """The observable ``name`` of FN rows given as columns (an :func:`fn.evaluate` result or a
    model table); ``max_mass_error`` needs the central charged masses ``m0`` [GeV]."""
    if name == "max_mass_error":
        if m0 is None:
            raise ValueError("max_mass_error needs the central charged masses")
        err = np.stack([np.abs(np.asarray(columns[m], dtype=np.float64) / m0[m] - 1.0) for m in MASSES], axis=1)
        return err.max(axis=1)
    return np.asarray(columns[name], dtype=np.float64)


def met_line(text: str, n: int) -> str:
    """How a report says that ``n`` distinct models meet target ``text`` (or that none does)."""
    return f"{n} distinct models meet {text}" if n else f"no model meets {text}"


def needed_columns(targets: Sequence[Target]) -> list[str]:
    """The model columns :func:`values` reads for ``targets``."""
    cols: list[str] = []
    for t in targets:
        for c in (MASSES if t.name == "max_mass_error" else (t.name,)):
            if c not in cols:
                cols.append(c)
    return cols


__all__ = ["EDGE", "MISSING", "OBSERVABLES", "OPERATORS", "Observable", "Target", "canonical", "met_line",
           "needed_columns", "parse", "parse_all", "values"]
