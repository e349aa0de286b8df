"""Summary tables of FN scans and diffusion runs, computed lazily with polars."""

from __future__ import annotations

import polars as pl

from rayflavor.analysis.fidelity import KIND_COLUMNS
from rayflavor.physics import fn
from rayflavor.physics.data import DataSet

FN_PREDICTIONS = ("m_lightest", "m_ee", "m_sum", "pmns_delta", "pmns_alpha1", "pmns_alpha2", "j_ckm", "max_mass_error")
SEESAW_PREDICTIONS = ("m_sum", "m_bb", "m_beta", "delta_cp", "alpha21", "alpha31", "j_cp", "chi2")


def fn_columns(frame: pl.LazyFrame, data: DataSet) -> pl.LazyFrame:
    """Add ``regime`` (up/down-leading) and ``max_mass_error`` (max_i |m_i/m_i0 - 1|)."""
    err = pl.max_horizontal([(pl.col(m) / data.get(m).central - 1.0).abs() for m in fn.MASSES])
    regime = pl.when(pl.col("eps_u_abs") > pl.col("eps_d_abs")).then(pl.lit("up")).otherwise(pl.lit("down"))
    return frame.with_columns(max_mass_error=err, regime=regime)


def counts(frame: pl.LazyFrame, by: str) -> pl.DataFrame:
    return frame.group_by(by).agg(pl.len().alias("models")).sort(by).collect()


def quantiles(frame: pl.LazyFrame, columns: tuple[str, ...], by: str | list[str] | None = None) -> pl.DataFrame:
    """25%, 50% and 75% quantiles of each column: one row per column, or per (``by`` values, column)."""
    qs = (0.25, 0.5, 0.75)
    keys = [by] if isinstance(by, str) else list(by or [])
    exprs = [pl.col(c).quantile(q, "linear").alias(f"{c}|{q}") for c in columns for q in qs]
    stats = (frame.group_by(keys).agg(exprs).sort(keys) if keys else frame.select(exprs)).collect()
    rows = [{**{k: r[k] for k in keys}, "prediction": c, **{f"q{int(q * 100)}": r[f"{c}|{q}"] for q in qs}}
            for r in stats.iter_rows(named=True) for c in columns]
    return pl.DataFrame(rows)


def significant(df: pl.DataFrame, digits: int = 4) -> pl.DataFrame:
    """``df`` with every float column as text with ``digits`` significant figures (``g`` format),
    so that small quantities (``j_ckm`` ~ 3e-5) do not print as 0.0000; null/NaN stay visible."""
    def fmt(v):
        return None if v is None else f"{v:.{digits}g}"

    return df.with_columns(
        pl.col(c).map_elements(fmt, return_dtype=pl.String) for c, t in df.schema.items() if t.is_float()
    )


def summarize(kind: str, frame: pl.LazyFrame, data: DataSet) -> dict[str, pl.DataFrame]:
    """Named tables: model counts by category and quartiles of the predictions."""
    if kind == "fn":
        frame = fn_columns(frame, data)
        return {
            "by ordering": counts(frame, "ordering"),
            "by regime": counts(frame, "regime"),
            "by maximal exponent": counts(frame, "max_exponent"),
            "predictions (quartiles)": quantiles(frame, FN_PREDICTIONS),
        }
    names = frame.collect_schema().names()
    if "ordering" not in names:  # a solutions file not collected since parts carry it
        frame = frame.with_columns(ordering=pl.lit(None, pl.String))
    if "physics_guidance" not in names:  # likewise: unknown, shown as null
        frame = frame.with_columns(physics_guidance=pl.lit(None, pl.Int32))
    for later in KIND_COLUMNS[1:]:  # sample sets drawn before these existed had none; other tables: unknown
        if later not in names:
            frame = frame.with_columns(pl.lit(0 if "physics_guidance" in names else None, pl.Int32).alias(later))
    # physics-guidance and projection steps and orbit sweeps of the sample set; all 0 = the network alone
    keys = ["ordering", *KIND_COLUMNS]
    by_ordering = frame.group_by(keys).agg(pl.len().alias("solutions")).sort(keys).collect()
    return {
        "solutions": by_ordering,
        # the network's own solutions and the physics-guided ones are different samples: never pooled
        "predictions (quartiles) by physics guidance, projection and orbits": quantiles(
            frame, SEESAW_PREDICTIONS, by=list(KIND_COLUMNS)),
    }
