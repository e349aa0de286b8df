"""The FN search space as GA genes, and the pymoo problem over it.

The genetic algorithm works on a *gene vector* of 65 floats; :func:`decode` turns a batch of
gene vectors into the 64 columns of :data:`rayflavor.physics.fn.PARAMETERS`:

============  =====  ====================================================================
genes         count  meaning
============  =====  ====================================================================
charges       18     FN charges in ``[-9.5, 9.5]``, rounded to the nearest integer and
                     clipped to ``[-9, 9]`` (FN paper sec. III.4: ``|q| <= 9``)
wilson        42     ``s`` in ``[-1, 1]`` with ``c = sign(s) * 0.3 * 10**|s|``: every value
                     satisfies ``0.3 <= |c| <= 3`` and the magnitude is log-uniform
                     (order-one coefficients, either sign); ``s = 0`` maps to ``+0.3``
eps           2      ``|eps_u|``, ``|eps_d|`` inside the regime's windows (:data:`REGIMES`)
alpha         2      ``(alpha_x, alpha_y)`` in ``[-1, 1]^2``, ``alpha = atan2(y, x) mod 2 pi``
                     [rad] (FN paper footnote 6: no seam at ``alpha ~ alpha + 2 pi``)
lambda        1      ``log10(Lambda / GeV)`` in :data:`fn.LOG10_LAMBDA_RANGE` unless fixed
============  =====  ====================================================================

The searched ``log10 Lambda`` range, ``[8, 16]``, is :data:`rayflavor.physics.fn.LOG10_LAMBDA_RANGE`
(ours: the paper does not print one; the reason is given there).  ``--log10-lambda`` fixes it.

>>> g = np.zeros((1, N_GENES)); g[0, CONT] = 0.5
>>> x = decode(g, Space("up"))
>>> x.shape, bool(abs(x[0, 18] - 0.3 * 10**0.5) < 1e-12)
((1, 64), True)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from pymoo.core.problem import Problem

from rayflavor.physics import fn
from rayflavor.physics import targets as fn_targets

N_CHARGES = 18
N_WILSON = 42
N_GENES = N_CHARGES + N_WILSON + 2 + 2 + 1
CHARGES = slice(0, N_CHARGES)
WILSON = slice(N_CHARGES, N_CHARGES + N_WILSON)
CONT = slice(N_CHARGES, N_GENES)  # every continuous gene
I_EPS_U, I_EPS_D, I_AX, I_AY, I_LAMBDA = range(N_CHARGES + N_WILSON, N_GENES)
#: The parameter (``fn.PARAMETERS`` name) each gene sets; ``alpha`` is set by the two genes ``I_AX, I_AY``.
GENE_PARAMETERS: tuple[str, ...] = fn.CHARGES + fn.WILSON + ("eps_u_abs", "eps_d_abs", "alpha", "alpha", "log10_lambda_gev")

Q_MAX = 9
C_MIN, C_MAX = 0.3, 3.0
REGIMES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    # regime: (|eps_u| window, |eps_d| window), FN paper sec. III.4
    "up": ((0.1, 0.3), (0.03, 0.07)),
    "down": ((0.03, 0.07), (0.1, 0.3)),
}
_LOG_C_SPAN = np.log10(C_MAX / C_MIN)  # = 1


@dataclass(frozen=True)
class Space:
    """Gene bounds for one regime; ``log10_lambda`` fixes the cut-off scale when given."""

    regime: str
    log10_lambda: float | None = None

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"unknown regime {self.regime!r} (use {' or '.join(REGIMES)})")
        if self.log10_lambda is not None:
            lo, hi = fn.LOG10_LAMBDA_RANGE
            ok = isinstance(self.log10_lambda, (int, float)) and not isinstance(self.log10_lambda, bool)
            if not (ok and lo <= self.log10_lambda <= hi):
                raise ValueError(f"log10_lambda must be a number in [{lo:g}, {hi:g}], got {self.log10_lambda!r}")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper gene bounds, each ``(N_GENES,)`` (new arrays: the caller may change them)."""
        xl, xu = self._bounds
        return xl.copy(), xu.copy()

    @functools.cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The bounds, computed once per space (read-only: :func:`decode` clips every batch to them)."""
        (eu, ed) = REGIMES[self.regime]
        xl = np.empty(N_GENES)
        xu = np.empty(N_GENES)
        xl[CHARGES], xu[CHARGES] = -Q_MAX - 0.5, Q_MAX + 0.5
        xl[WILSON], xu[WILSON] = -1.0, 1.0
        xl[I_EPS_U], xu[I_EPS_U] = eu
        xl[I_EPS_D], xu[I_EPS_D] = ed
        xl[[I_AX, I_AY]], xu[[I_AX, I_AY]] = -1.0, 1.0
        if self.log10_lambda is None:
            xl[I_LAMBDA], xu[I_LAMBDA] = fn.LOG10_LAMBDA_RANGE
        else:  # a sliver, so that pymoo operators never divide by zero
            xl[I_LAMBDA], xu[I_LAMBDA] = self.log10_lambda - 1e-9, self.log10_lambda + 1e-9
        xl.flags.writeable = xu.flags.writeable = False
        return xl, xu


def round_charges(genes: np.ndarray) -> np.ndarray:
    """Integer charges ``(N, 18)`` from gene rows: nearest integer, clipped to ``|q| <= 9``."""
    return np.clip(np.rint(genes[:, CHARGES]), -Q_MAX, Q_MAX).astype(np.int64)


def wilson_from_genes(s: np.ndarray) -> np.ndarray:
    """``c = sign(s) 0.3 10^|s|`` (``|s|`` clipped to 1); ``s = 0`` gives ``+0.3``."""
    mag = C_MIN * 10.0 ** (np.minimum(np.abs(s), 1.0) * _LOG_C_SPAN)
    return np.where(s < 0.0, -mag, mag)


def genes_from_wilson(c: np.ndarray) -> np.ndarray:
    """Inverse of :func:`wilson_from_genes` for ``0.3 <= |c| <= 3``."""
    s = np.log10(np.clip(np.abs(c), C_MIN, C_MAX) / C_MIN) / _LOG_C_SPAN
    return np.where(c < 0.0, -s, s)


def decode(genes: np.ndarray, space: Space) -> np.ndarray:
    """Gene rows ``(N, 65)`` -> parameter rows ``(N, 64)`` in :data:`fn.PARAMETERS` order."""
    genes = np.atleast_2d(np.asarray(genes, dtype=np.float64))
    xl, xu = space._bounds
    g = np.clip(genes, xl, xu)
    x = np.empty((g.shape[0], len(fn.PARAMETERS)))
    x[:, :N_CHARGES] = round_charges(g)
    x[:, N_CHARGES : N_CHARGES + N_WILSON] = wilson_from_genes(g[:, WILSON])
    k = N_CHARGES + N_WILSON
    x[:, k] = g[:, I_EPS_U]
    x[:, k + 1] = g[:, I_EPS_D]
    x[:, k + 2] = np.mod(np.arctan2(g[:, I_AY], g[:, I_AX]), 2.0 * np.pi)
    x[:, k + 3] = g[:, I_LAMBDA] if space.log10_lambda is None else space.log10_lambda
    return x


def encode(x: np.ndarray) -> np.ndarray:
    """Parameter rows ``(N, 64)`` -> gene rows ``(N, 65)`` (``alpha`` on the unit circle)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    g = np.empty((x.shape[0], N_GENES))
    g[:, CHARGES] = x[:, :N_CHARGES]
    g[:, WILSON] = genes_from_wilson(x[:, N_CHARGES : N_CHARGES + N_WILSON])
    k = N_CHARGES + N_WILSON
    g[:, I_EPS_U] = x[:, k]
    g[:, I_EPS_D] = x[:, k + 1]
    g[:, I_AX] = np.cos(x[:, k + 2])
    g[:, I_AY] = np.sin(x[:, k + 2])
    g[:, I_LAMBDA] = x[:, k + 3]
    return g


#: scale of the objectives' sum below which a target's residual counts in its objective
#: (:meth:`Objectives.with_targets`): about one shaped residual at the edge of its window
NEAR_SUM = 1.0


@dataclass(frozen=True)
class Objectives:
    """What one scan optimises: the physics options handed to :func:`fn.evaluate`, and the
    scan's targets (:mod:`rayflavor.physics.targets`), one extra objective each, named by its
    text (``m_ee<0.0001``) after the paper's objectives."""

    data: object  # rayflavor.physics.data.DataSet
    mass_tolerance: float
    force_io: bool = False
    max_exponent: int | None = None
    targets: tuple[fn_targets.Target, ...] = ()

    @property
    def names(self) -> list[str]:
        """Every objective: :attr:`loss_names`, then :attr:`target_names`."""
        return self.loss_names + self.target_names

    @property
    def loss_names(self) -> list[str]:
        """The paper's objectives (``fn.objective_names``)."""
        return fn.objective_names(force_io=self.force_io, max_exponent=self.max_exponent)

    @property
    def target_names(self) -> list[str]:
        return [t.text for t in self.targets]

    def target_values(self, result: dict[str, np.ndarray]) -> np.ndarray:
        """``(N, n_targets)`` values of the targets' observables in ``result``."""
        m0 = {m: self.data.get(m).central for m in fn.MASSES}
        n = len(result["valid"])
        return np.column_stack([fn_targets.values(result, t.name, m0) for t in self.targets]) if self.targets \
            else np.empty((n, 0))

    def target_residuals(self, result: dict[str, np.ndarray]) -> np.ndarray:
        """``(N, n_targets)`` shaped target residuals (:meth:`Target.residual`), 0 where met."""
        v = self.target_values(result)
        return np.column_stack([t.residual(v[:, k]) for k, t in enumerate(self.targets)]) if self.targets else v

    def targets_met(self, result: dict[str, np.ndarray]) -> np.ndarray:
        """``(N, n_targets)`` booleans: row meets target k."""
        v = self.target_values(result)
        return np.column_stack([t.met(v[:, k]) for k, t in enumerate(self.targets)]) if self.targets \
            else np.zeros(v.shape, dtype=bool)

    def evaluate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """:func:`fn.evaluate` on parameter rows with this scan's options (singular or
        overflowing rows come back non-finite and invalid; the physics never raises on them)."""
        with np.errstate(all="ignore"):
            return fn.evaluate(
                np.asarray(x, dtype=np.float64), data=self.data, mass_tolerance=self.mass_tolerance,
                force_io=self.force_io, max_exponent=self.max_exponent,
            )

    def matrix(self, result: dict[str, np.ndarray]) -> np.ndarray:
        """The ``(N, n_obj)`` loss matrix of a result (:meth:`with_targets` of the paper's losses);
        ``+inf`` (singular rows) becomes 1e30."""
        F = np.column_stack([np.asarray(result[f"loss_{n}"], dtype=np.float64) for n in self.loss_names])
        return self.with_targets(np.where(np.isfinite(F), F, 1e30), result)

    def with_targets(self, F: np.ndarray, result: dict[str, np.ndarray]) -> np.ndarray:
        """``F`` (the ``(N, len(loss_names))`` objectives without targets) followed by one column
        per target, the *distance to its corner*: ``S + exp(-S / NEAR_SUM) r`` with ``S`` the
        row's sum of ``F`` and ``r`` the target's shaped residual.  It is 0 exactly on the valid
        models that meet the target (``S = 0``, ``r = 0``); far from validity it is ``S``, which
        leaves NSGA-III's dominance as without the target, so the search for valid models is not
        traded for the target; near validity it is ``r``.  (With the bare residual as an
        objective, smoke scans found no valid model where the same seeds without a target found
        16-99: docs/experiments.md#2026-12-06-targets.)"""
        if not self.targets:
            return F
        total = F.sum(axis=1, keepdims=True)
        with np.errstate(over="ignore", under="ignore"):
            near = np.exp(-total / NEAR_SUM)
        return np.concatenate([F, total + near * self.target_residuals(result)], axis=1)


class FNProblem(Problem):
    """Vectorised pymoo problem: genes -> the objective matrix ``F`` (the CC-type losses)."""

    def __init__(self, space: Space, objectives: Objectives) -> None:
        xl, xu = space.bounds()
        self.space = space
        self.objectives = objectives
        super().__init__(n_var=N_GENES, n_obj=len(objectives.names), xl=xl, xu=xu, elementwise=False)

    def _evaluate(self, X, out, *args, **kwargs):
        out["F"] = self.objectives.matrix(self.objectives.evaluate(decode(X, self.space)))
