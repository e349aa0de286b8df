"""Turning named parameter columns into a validated float64 matrix.

Both models take a ``(N, P)`` float64 matrix whose columns follow the model's ``PARAMETERS``.
:func:`to_matrix` builds it from any mapping of column name -> 1-D array (a Parquet table, a
polars frame's columns, a dict) and raises :class:`ParameterError` with one line naming the
problem: a missing column, a non-numeric (or bool) column, a NaN, a non-integer charge, a value outside
its domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np


class ParameterError(ValueError):
    """Input parameters that no model evaluation can accept."""


Domain = tuple[Callable[[np.ndarray], np.ndarray], str]


def to_matrix(
    columns: Mapping[str, object],
    names: Sequence[str],
    *,
    integer: Sequence[str] = (),
    domains: Mapping[str, Domain] | None = None,
) -> np.ndarray:
    """Stack ``columns[name]`` for ``name in names`` into an (N, len(names)) float64 matrix."""
    missing = [n for n in names if n not in columns]
    if missing:
        shown = ", ".join(missing[:6]) + (f" (+{len(missing) - 6} more)" if len(missing) > 6 else "")
        raise ParameterError(f"missing parameter column(s): {shown}")
    integer = set(integer)
    domains = domains or {}
    out = None
    for k, name in enumerate(names):
        col = np.asarray(columns[name])
        if col.ndim != 1:
            raise ParameterError(f"column {name!r} is not one-dimensional")
        if col.dtype.kind == "b":  # True/False are not parameter values, whatever numpy casts them to
            raise ParameterError(f"column {name!r} has type bool, expected a number")
        if col.dtype.kind not in "iuf":
            raise ParameterError(f"column {name!r} has type {col.dtype}, expected a number")
        col = col.astype(np.float64)
        if out is None:
            if col.size == 0:
                raise ParameterError("no rows to evaluate (the input is empty)")
            out = np.empty((col.size, len(names)), dtype=np.float64)
        bad = ~np.isfinite(col)
        if bad.any():
            raise ParameterError(f"column {name!r} has {int(bad.sum())} NaN/infinite value(s), first at row {int(np.argmax(bad))}")
        if name in integer:
            frac = col != np.round(col)
            if frac.any():
                raise ParameterError(f"column {name!r} must hold integers; row {int(np.argmax(frac))} has {col[np.argmax(frac)]}")
        if name in domains:
            ok, text = domains[name]
            fails = ~ok(col)
            if fails.any():
                r = int(np.argmax(fails))
                raise ParameterError(f"column {name!r} out of range at row {r} (value {col[r]:g}; expected {text})")
        out[:, k] = col
    return out
