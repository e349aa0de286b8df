"""What the summaries and figures may read from an output file: column types and row values.

A file is refused (:class:`~rayflavor.analysis.load.AnalysisInputError`, one line) when a column
the model's outputs define has another kind of type than the model writes -- a ``valid`` column
of strings, a list-typed ``m_ee``: numbers must be integer or floating point, flags boolean (or
integer 0/1), ``ordering`` text.  Columns the model does not define are never looked at.

Rows are then checked, never silently drawn:

* FN rows whose ``ordering`` is not one the model writes (``NO``, ``IO``, ``none``), or missing, are left out of every
  table and figure, with a warning naming the value(s) and the row count;
* a non-finite prediction (NaN, inf) is left out of that prediction's quartiles and figures
  (it becomes missing there, the row's other predictions still count), with a warning naming
  the column, the row count and the kind of value.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

#: The values ``fn.evaluate`` writes (``none``: m1 < m3 < m2, never valid).
ORDERINGS = ("NO", "IO", "none")


def _kind_of(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_dictionary(t):
        return _kind_of(t.value_type)
    if pa.types.is_timestamp(t):
        return "time"
    return str(t)


@lru_cache(maxsize=2)
def expected_kinds(kind: str) -> dict[str, str]:
    """{column: "number" | "boolean" | "text" | "time"} of what the ``kind`` model writes."""
    if kind == "fn":
        from rayflavor.storage.parquet import empty_table

        return {f.name: _kind_of(f.type) for f in empty_table().schema}
    from rayflavor.physics import seesaw

    out = {name: "number" for name in seesaw.PARAMETERS}
    for name, v in seesaw.evaluate(np.empty((0, len(seesaw.PARAMETERS)))).items():
        out[name] = "boolean" if np.asarray(v).dtype == bool else "number"
    out["ordering"] = "text"
    return out


def type_problem(kind: str, schema: pa.Schema, flag: str | None) -> str | None:
    """Why ``schema`` cannot be analysed as ``kind`` output (None: it can); module docstring."""
    expected = expected_kinds(kind)
    for f in schema:
        want = expected.get(f.name)
        if want is None:
            continue
        got = _kind_of(f.type)
        if got == want or (f.name == flag and got == "number"):
            continue
        if want == "time":
            continue  # found_at is never read by the analysis
        words = {"number": "numbers", "boolean": "true/false flags", "text": "text"}
        raise_type = f"column {f.name!r} is {f.type}, expected {words.get(want, want)}"
        return raise_type
    return None


def check_rows(kind: str, frame: pl.LazyFrame, predictions: tuple[str, ...]) -> tuple[pl.LazyFrame, list[str]]:
    """``frame`` with unusable rows and values left out (module docstring), and the warnings."""
    names = frame.collect_schema().names()
    preds = [c for c in predictions if c in names]
    exprs = [(~pl.col(c).cast(pl.Float64).is_finite()).sum().alias(f"bad|{c}") for c in preds]
    exprs += [pl.col(c).cast(pl.Float64).is_infinite().sum().alias(f"inf|{c}") for c in preds]
    check_ordering = kind == "fn" and "ordering" in names
    if check_ordering:
        odd = ~pl.col("ordering").cast(pl.String).is_in(ORDERINGS).fill_null(False)
        exprs += [odd.sum().alias("odd"),
                  pl.col("ordering").cast(pl.String).filter(odd).unique().sort().head(3).implode().alias("odd_values")]
    if not exprs:
        return frame, []
    stats = frame.select(exprs).collect().row(0, named=True)
    warnings = []
    if check_ordering and stats["odd"]:
        values = ", ".join(repr(v) for v in stats["odd_values"])
        warnings.append(f"ordering: {stats['odd']} row(s) neither NO, IO nor none ({values}); left out of every table and figure")
        frame = frame.filter(pl.col("ordering").cast(pl.String).is_in(ORDERINGS).fill_null(False))
    fix = []
    for c in preds:
        n = stats[f"bad|{c}"]
        if n:
            what = "inf" if stats[f"inf|{c}"] == n else "NaN or missing" if not stats[f"inf|{c}"] else "inf or NaN"
            warnings.append(f"{c}: {n} row(s) not finite ({what}); left out of {c}'s quartiles and figures")
            fix.append(pl.when(pl.col(c).cast(pl.Float64).is_finite()).then(pl.col(c)).otherwise(None).alias(c))
    if fix:
        frame = frame.with_columns(fix)
    return frame, warnings


__all__ = ["ORDERINGS", "check_rows", "expected_kinds", "type_problem"]
