"""Selection of generated points for fine-tuning (Sec. 2.2.3).

A point is kept when its total chi2 (eq. 2.22 over the 11 label quantities) is below
``chi2_max`` and it meets at least one of

1. the mass condition: chi2 over (dm21, dm31) below ``mass_max``;
2. the mixing condition: chi2 over the nine |U_ij| below ``mixing_max``.

Non-finite chi2 values never pass.

>>> import numpy as np
>>> select(np.array([100., 6e3, 5e3, 5e3]), np.array([10., 10., 2e3, 2e3]), np.array([5e3, 5e3, 4e3, 5e3])).tolist()
[True, False, True, False]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHI2_MAX = 5.5e3
MASS_MAX = 1e3
MIXING_MAX = 4.5e3


@dataclass(frozen=True)
class Thresholds:
    """The three cut values; the paper's by default."""

    chi2_max: float = CHI2_MAX
    mass_max: float = MASS_MAX
    mixing_max: float = MIXING_MAX


def select(chi2: np.ndarray, chi2_mass: np.ndarray, chi2_mixing: np.ndarray,
           thresholds: Thresholds = Thresholds()) -> np.ndarray:
    """Boolean mask of the rows meeting the fine-tuning conditions."""
    chi2, chi2_mass, chi2_mixing = (np.asarray(a, dtype=np.float64) for a in (chi2, chi2_mass, chi2_mixing))
    with np.errstate(invalid="ignore"):
        mass = chi2_mass < thresholds.mass_max
        mixing = chi2_mixing < thresholds.mixing_max
        return (chi2 < thresholds.chi2_max) & (mass | mixing)


def conditions(chi2_mass: np.ndarray, chi2_mixing: np.ndarray, thresholds: Thresholds = Thresholds()) -> dict[str, int]:
    """Counts as the paper reports them: mass only, mixing only, both."""
    with np.errstate(invalid="ignore"):
        m = np.asarray(chi2_mass) < thresholds.mass_max
        x = np.asarray(chi2_mixing) < thresholds.mixing_max
    return {"mass_only": int((m & ~x).sum()), "mixing_only": int((x & ~m).sum()), "both": int((m & x).sum())}


def window_miss(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """How far each row lies outside the solution box: ``sum_j (d_j / h_j)^2``.

    ``values`` (N, L): the observables that define a solution (for the seesaw
    :data:`rayflavor.physics.seesaw.SOLUTION_TERMS`); ``windows`` (L, 2): their 3 sigma ranges
    ``(lo, hi)``. ``d_j`` is the distance of value j outside its window (0 inside) and ``h_j``
    the window's half width, so the miss is 0 exactly for a solution and 1 for a point one
    half-window outside in one label. Non-finite rows get ``inf``.

    >>> w = np.array([[0.0, 2.0], [10.0, 20.0]])
    >>> window_miss(np.array([[1.0, 15.0], [3.0, 15.0], [-1.0, 25.0], [np.nan, 15.0]]), w).tolist()
    [0.0, 1.0, 2.0, inf]
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.asarray(windows, dtype=np.float64).T
    d = np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0)
    with np.errstate(invalid="ignore"):
        m = np.sum((d / (0.5 * (hi - lo))) ** 2, axis=1)
    return np.where(np.isfinite(m), m, np.inf)


def nearest_size(miss: np.ndarray, n_min: int, per_solution: float) -> int:
    """Rows of a nearest set: every solution (miss 0), ``per_solution`` rows per solution, ``n_min`` at least.

    Beyond the paper. A set that grows with the solutions found keeps the early rounds focused (a
    large set of near-misses before any solution dilutes them) and later gives the network more
    points around the solutions, which is what sharpens its density.

    >>> nearest_size(np.array([0.0, 0.0, 1.0]), 3, per_solution=30), nearest_size(np.array([0.0, 1.0]), 300, 0.0)
    (60, 300)
    """
    n_sol = int(np.sum(np.asarray(miss) == 0))
    return max(int(n_min), int(per_solution * n_sol), n_sol)


def nearest(miss: np.ndarray, chi2: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` rows closest to the solution box: smallest ``miss``, then smallest chi2.

    Beyond the paper: ranking by total chi2 lets a point with ten labels at the
    central value and one far outside beat a point inside every window but off-centre; ranking
    by the distance to the box (:func:`window_miss`) fills the fine-tuning set with solutions
    and near-solutions first, which is what the tuned network should learn to produce.
    Rows with infinite miss or non-finite chi2 are never chosen.

    >>> nearest(np.array([0.0, 0.0, 2.0, np.inf, 1.0]), np.array([50.0, 20.0, 9.0, 1.0, np.nan]), 3).tolist()
    [True, True, True, False, False]
    """
    miss = np.asarray(miss, dtype=np.float64)
    chi2 = np.asarray(chi2, dtype=np.float64)
    ok = np.isfinite(miss) & np.isfinite(chi2)
    order = np.lexsort((np.where(ok, chi2, np.inf), np.where(ok, miss, np.inf)))[:max(int(k), 0)]
    mask = np.zeros(len(miss), dtype=bool)
    mask[order[ok[order]]] = True
    return mask


def top_up(mask: np.ndarray, chi2: np.ndarray, min_rows: int) -> np.ndarray:
    """``mask`` widened to at least ``min_rows`` rows by adding the lowest finite total chi2.

    Beyond the paper: a pre-network whose samples meet none of the cuts would otherwise end the
    transfer learning before it starts; the closest samples then seed the first round.

    >>> top_up(np.array([False, True, False, False]), np.array([3.0, 9.0, 1.0, np.nan]), 2).tolist()
    [False, True, True, False]
    """
    mask = np.asarray(mask, dtype=bool).copy()
    missing = min_rows - int(mask.sum())
    if missing > 0:
        chi2 = np.where(np.isfinite(chi2) & ~mask, chi2, np.inf)
        best = np.argsort(chi2, kind="stable")[:missing]
        mask[best[np.isfinite(chi2[best])]] = True
    return mask


def label_solutions(labels: np.ndarray, windows: np.ndarray, ordering: str = "NO") -> np.ndarray:
    """Mask of the rows whose network labels (``seesaw.LABELS``: log10 dm21, log10 |dm3l|, nine
    |U|) lie inside every 3 sigma window of ``seesaw.SOLUTION_TERMS`` (dm21, dm3l, nine |U|):
    exactly the rows flagged ``solution``. ``ordering``: the sign of dm3l (IO: negative).

    >>> w = np.array([[1e-5, 1e-4], [1e-3, 1e-2]] + [[0.0, 1.0]] * 9)
    >>> label_solutions(np.array([[-4.5, -2.5] + [0.5] * 9, [-3.0, -2.5] + [0.5] * 9]), w).tolist()
    [True, False]
    """
    lab = np.asarray(labels, dtype=np.float64)
    sign = -1.0 if ordering == "IO" else 1.0
    values = np.column_stack([10.0 ** lab[:, 0], sign * 10.0 ** lab[:, 1], lab[:, 2:]])
    return window_miss(values, windows) == 0.0
