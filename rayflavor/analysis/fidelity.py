"""Fidelity of a sampler's solutions against a reference of the solution set, as numbers.

Per prediction, a two-sample distance between the run's solutions and the reference
(:mod:`rayflavor.methods.reference`):

* linear quantities (Sigma m, m_bb, m_beta, |M1|/M3, |M2|/M3, log10 M3): the two-sample
  **Kolmogorov-Smirnov** statistic ``D = max_x |F_run(x) - F_ref(x)|`` (0: identical
  distributions, 1: disjoint);
* circular quantities (delta_CP, alpha21, alpha31 [rad]): **Kuiper's** statistic
  ``V = max_x (F_run - F_ref) + max_x (F_ref - F_run)``, which unlike D does not depend on where
  the circle is cut (a distribution straddling 0 = 2 pi is not split in two).

Both are in [0, 1] and read the same way; the goal of the diffusion issue is <= 0.1 on each.
Also the fraction of points within 1% of a face of the prior box, for the run and the reference:
a sampler collapsed onto a face shows more there than the reference has.

>>> import numpy as np
>>> ks_statistic(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
0.0
>>> kuiper_statistic(np.array([0.1, 0.2]), np.array([3.0, 3.1]))
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from rayflavor.methods.diffusion.settings import KIND_FIELDS

#: The predictions compared (column of solutions.parquet, kind, how to derive it).
PREDICTIONS: tuple[tuple[str, str], ...] = (
    ("m_sum", "linear"),
    ("delta_cp", "circular"),
    ("alpha21", "circular"),
    ("alpha31", "circular"),
    ("m_bb", "linear"),
    ("m_beta", "linear"),
    ("m1_over_m3", "linear"),
    ("m2_over_m3", "linear"),
    ("log10_m3_gev", "linear"),
)


def log10_m3_gev(log10_h2_over_m3_ev: np.ndarray) -> np.ndarray:
    """log10(M3 / GeV) from the parameter ``log10(<H>^2/M3 [eV])``, with <H> = v = 246.22 GeV as in
    :func:`rayflavor.analysis.figures.heavy_masses_gev` (eq. 2.18's 6.05x10^-2 eV is v^2 / 10^15 GeV).
    The KS distance does not depend on this constant (it is invariant under monotone maps)."""
    from rayflavor.physics import fn

    return 2 * math.log10(fn.V_HIGGS_GEV) + 9.0 - np.asarray(log10_h2_over_m3_ev, dtype=np.float64)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (module docstring); NaN when a sample is empty."""
    a = np.sort(np.asarray(a, dtype=np.float64)[np.isfinite(a)])
    b = np.sort(np.asarray(b, dtype=np.float64)[np.isfinite(b)])
    if a.size == 0 or b.size == 0:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def kuiper_statistic(a: np.ndarray, b: np.ndarray, period: float = 2 * math.pi) -> float:
    """Two-sample Kuiper statistic of angles (invariant under a common rotation; module docstring)."""
    a = np.mod(np.asarray(a, dtype=np.float64)[np.isfinite(a)], period)
    b = np.mod(np.asarray(b, dtype=np.float64)[np.isfinite(b)], period)
    if a.size == 0 or b.size == 0:
        return float("nan")
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    d = np.searchsorted(a, x, side="right") / a.size - np.searchsorted(b, x, side="right") / b.size
    return float(max(d.max(), 0.0) + max(-d.min(), 0.0))


def face_fraction(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, rel: float = 0.01,
                  skip: np.ndarray | None = None) -> float:
    """Fraction of rows of ``x`` within ``rel`` of the box width of any face (``skip``: coordinates
    without faces, e.g. periodic phases)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return float("nan")
    w = upper - lower
    near = np.minimum(x - lower, upper - x) < rel * w
    if skip is not None:
        near[:, np.asarray(skip, dtype=bool)] = False
    return float(np.mean(near.any(axis=1)))


@dataclass(frozen=True)
class Fidelity:
    """Distances per prediction, and the face fractions, of a run against a reference."""

    distances: dict[str, float]  # prediction -> KS or Kuiper statistic
    kinds: dict[str, str]
    n_run: int
    n_reference: int
    face_run: float
    face_reference: float
    floor: dict[str, float] | None = None  # the reference's noise floor per prediction (reference.json)

    @property
    def worst(self) -> float:
        vals = [v for v in self.distances.values() if np.isfinite(v)]
        return max(vals) if vals else float("nan")

    def table(self, goal: float = 0.1) -> str:
        lines = [f"fidelity against the reference ({self.n_run} solutions vs {self.n_reference} reference points)",
                 f"{'prediction':<14} {'statistic':<10} {'distance':>8} {'floor':>6}  goal <= {goal:g}"]
        for k, v in self.distances.items():
            stat = "Kuiper" if self.kinds[k] == "circular" else "KS"
            mark = "" if not np.isfinite(v) else ("ok" if v <= goal else "above")
            fl = (self.floor or {}).get(k)
            lines.append(f"{k:<14} {stat:<10} {v:>8.3f} {'—' if fl is None else f'{fl:.3f}':>6}  {mark}")
        if self.floor:
            lines.append("floor: the distance between the reference's even and odd tasks (its own noise)")
        lines.append(f"within 1% of a prior-box face: run {100 * self.face_run:.1f}%, reference "
                     f"{100 * self.face_reference:.1f}%")
        return "\n".join(lines)


def prediction_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`PREDICTIONS` of a table of seesaw solutions (parameters and observables)."""
    out = {}
    for name, _ in PREDICTIONS:
        if name == "log10_m3_gev":
            out[name] = log10_m3_gev(columns["log10_h2_over_m3_ev"])
        else:
            out[name] = np.asarray(columns[name], dtype=np.float64)
    return out


def prediction_distances(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Distance per prediction between two sets of :data:`PREDICTIONS` values (as
    :func:`prediction_columns` gives them): KS, Kuiper for the circular ones."""
    return {k: (kuiper_statistic if kind == "circular" else ks_statistic)(a[k], b[k]) for k, kind in PREDICTIONS}


def fidelity(run: dict[str, np.ndarray], reference: dict[str, np.ndarray], params_run: np.ndarray,
             params_reference: np.ndarray, lower: np.ndarray, upper: np.ndarray,
             periodic: np.ndarray | None = None) -> Fidelity:
    """Distances per prediction between two solution tables (columns as in ``solutions.parquet``)."""
    pr, pf = prediction_columns(run), prediction_columns(reference)
    return Fidelity(prediction_distances(pr, pf), dict(PREDICTIONS), len(params_run), len(params_reference),
                    face_fraction(params_run, lower, upper, skip=periodic),
                    face_fraction(params_reference, lower, upper, skip=periodic))


__all__ = ["Fidelity", "PREDICTIONS", "face_fraction", "fidelity", "guidance_groups", "ks_statistic", "kuiper_statistic",
           "log10_m3_gev", "prediction_columns", "prediction_distances"]


# ---------------------------------------------------------------------------- a run against a reference


def _needed() -> list[str]:
    """The columns a fidelity comparison reads: the 23 parameters and the predicted observables."""
    from rayflavor.physics import seesaw

    return list(seesaw.PARAMETERS) + [k for k, _ in PREDICTIONS if k != "log10_m3_gev"]


def _columns(df, names) -> dict[str, np.ndarray]:
    return {c: df[c].to_numpy() for c in names if c in df.columns}


def sample_kind(physics: int | None, project: int | None, orbits: int | None) -> str:
    """How a sample set's solutions were drawn, in words: ``"network only"``, ``"physics guidance K
    steps"``, ``"projected P steps"``, ``"orbits S sweeps"`` or several of them.

    >>> sample_kind(0, 0, 0), sample_kind(20, 0, 0), sample_kind(0, 200, 0), sample_kind(3, 200, 0)
    ('network only', 'physics guidance 20 steps', 'projected 200 steps', 'physics guidance 3 steps + projected 200 steps')
    >>> sample_kind(0, 200, 10)
    'projected 200 steps + orbits 10 sweeps'
    """
    parts = [f"physics guidance {physics} steps"] if physics else []
    parts += [f"projected {project} steps"] if project else []
    parts += [f"orbits {orbits} sweeps"] if orbits else []
    return " + ".join(parts) or "network only"


#: The columns that say how a sample set's points were drawn (besides the network): :func:`sample_kind`'s arguments.
KIND_COLUMNS = tuple(KIND_FIELDS)


def guidance_groups(run_df) -> dict:
    """A run's solutions per sample kind (:func:`sample_kind` of the :data:`KIND_COLUMNS`; a sample
    frame without ``projection`` or ``orbit_sweeps`` had none); the whole frame as ``"run"`` when
    it has no ``physics_guidance`` column."""
    import polars as pl

    if "physics_guidance" not in run_df.columns:
        return {"run": run_df}
    run_df = run_df.with_columns(pl.lit(0, pl.Int32).alias(c) for c in KIND_COLUMNS if c not in run_df.columns)
    run_df = run_df.with_columns(pl.col(*KIND_COLUMNS).fill_null(0))
    keys = run_df.select(KIND_COLUMNS).unique().sort(list(reversed(KIND_COLUMNS))).rows()
    return {sample_kind(*k): run_df.filter(pl.all_horizontal(pl.col(c) == v for c, v in zip(KIND_COLUMNS, k)))
            for k in keys}


def compare_frames(run_df, ref_df, floor: dict[str, float] | None = None) -> dict[str, Fidelity]:
    """Fidelity of a run's solutions against a reference (polars DataFrames with the columns of
    ``solutions.parquet``), separately for each kind of sample of the run (:func:`guidance_groups`)
    and for all solutions together."""
    from rayflavor.methods.reference import seesaw_box
    from rayflavor.physics import seesaw

    box = seesaw_box()
    need = _needed()
    missing = [c for c in need if c not in ref_df.columns]
    if missing:
        raise ValueError(f"the reference lacks column(s) {', '.join(missing[:4])}: not a rayflavor reference")
    ref = _columns(ref_df, need)
    pref = np.column_stack([ref[c] for c in seesaw.PARAMETERS])
    per = guidance_groups(run_df)
    if "run" in per:  # no physics_guidance column
        groups = {"all solutions": run_df}
    elif len(per) == 1:  # one setting only: "all" would say the same
        groups = per
    else:
        groups = {"all solutions": run_df, **per}
    out = {}
    for label, df in groups.items():
        if df.height == 0:
            continue
        cols = _columns(df, need)
        praw = np.column_stack([cols[c] for c in seesaw.PARAMETERS])
        out[label] = replace(fidelity(cols, ref, praw, pref, box.lower, box.upper, box.periodic), floor=floor)
    return out


def overlay_figure(run_df, ref_df, path, fmt: str = "png"):
    """Empirical CDFs of every prediction, the run's solutions against the reference; returns the file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pathlib import Path

    pr = prediction_columns(_columns(run_df, _needed()))
    pf = prediction_columns(_columns(ref_df, _needed()))
    fig, axes = plt.subplots(3, 3, figsize=(11, 9))
    for ax, (name, kind) in zip(axes.ravel(), PREDICTIONS):
        for values, label, style in ((pf[name], "reference", "k-"), (pr[name], "run", "C0-")):
            v = np.sort(values[np.isfinite(values)])
            if kind == "circular":
                v = np.sort(np.degrees(np.mod(v, 2 * math.pi)))
            if v.size:
                ax.plot(v, np.arange(1, v.size + 1) / v.size, style, lw=1.2, label=label)
        ax.set_xlabel(name + (" [deg]" if kind == "circular" else ""))
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("cumulative fraction")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.suptitle("solutions (blue) against the network-free reference (black)")
    fig.tight_layout()
    out = Path(path) / f"seesaw_fidelity.{fmt}"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
