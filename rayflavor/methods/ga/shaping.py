"""Shaped residuals of the FN objectives: zero exactly where the paper's losses are zero, with a
slope where the paper's losses saturate (used by the fast island, and by both islands to track
their best loss).

The paper's mass loss ``C(m/m_0, 1-tol, 1+tol)`` saturates at ``1 - tol`` for a mass far too
small (``m = 1e-10 m_0`` and ``m = 0.5 m_0`` score alike), and so do the splittings; a search
there has no slope to follow.  One residual per observable, each a named column
(:attr:`Shaper.columns`):

* CKM and PMNS quantities (``fn.WINDOW_OBJECTIVES`` but ``dm21``): ``loss / s`` with ``s`` the
  half width of the 3 sigma window;
* ``dm21``, ``dm3l`` (``|dm3l|`` in the window of the predicted ordering):
  ``max(0, ln(lo/O), ln(O/hi)) / ln(hi/lo)``, 50 for a non-positive or missing value; a mixed
  spectrum (``ordering == "none"``, never valid) adds 1 to ``dm3l``;
* each of the nine charged masses ``fn.MASSES``:
  ``max(0, ln((1-tol) m_0/m), ln(m/((1+tol) m_0))) / tol`` (50 for ``m <= 0``);
* ``n_negative``, ``max_exponent``: the paper's loss; ``io``: ``max(0, ln(m3/m1))``.

Rows with any non-finite residual get 1e3 everywhere.  :meth:`Shaper.objectives` groups the
residuals into the objective list BY NAME: an objective named in ``fn.MASS_OBJECTIVES`` is the
sum of its members' residuals (quarks per generation), every other objective is the residual of
the same name, in the order of the island's objective names -- so NSGA-III sees the paper's
objectives with the paper's zero set, whatever order ``fn.OBJECTIVES`` has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rayflavor.methods.ga.problem import Objectives
from rayflavor.physics import fn

NON_FINITE = 1e3  # every residual of a row with a non-finite one
MISSING = 50.0  # residual of a non-positive mass or splitting
NO_ORDERING = 1.0  # added to dm3l for m1 < m3 < m2
_SECTORS = {"n_negative": "charges", "max_exponent": "charges", "io": "lepton"}  # columns that are no observable


class Shaper:
    """Shaped residuals of one scan's objectives (see the module docstring)."""

    def __init__(self, objectives: Objectives, names: Sequence[str] | None = None) -> None:
        """``names``: the objective list to group into (default ``objectives.loss_names``: the
        scan's targets are not shaped residuals, :class:`~.problem.Objectives` adds them)."""
        d = objectives.data
        self.names = list(objectives.loss_names if names is None else names)
        self.tol = objectives.mass_tolerance
        windows = [n for n in fn.WINDOW_OBJECTIVES if n != "dm21"]
        self.window = {n: d.window(n, "NO") for n in windows}
        self.dm21 = d.window("dm21", "NO")
        self.dm3l = {o: tuple(sorted(abs(v) for v in d.window("dm3l", o))) for o in ("NO", "IO")}
        self.m0 = {m: d.get(m).central for m in fn.MASSES}
        # the same as arrays, so that a batch's residuals are a few array operations
        self._window_loss = [f"loss_{n}" for n in windows]
        self._half_width = np.array([0.5 * (hi - lo) for lo, hi in self.window.values()], dtype=np.float64)
        self._m0_row = np.array([self.m0[m] for m in fn.MASSES], dtype=np.float64)
        extra = [n for n in ("io", "max_exponent") if n in self.names]
        self.columns: list[str] = windows + ["dm21", "dm3l", *fn.MASSES, "n_negative", *extra]
        self.index = {n: k for k, n in enumerate(self.columns)}
        #: sector of every column (``fn.OBSERVABLE_SECTORS``; the charge-only losses: "charges")
        self.sectors: list[str] = [_SECTORS.get(c) or fn.OBSERVABLE_SECTORS[c] for c in self.columns]
        groups = []
        for n in self.names:
            members = fn.MASS_OBJECTIVES.get(n, (n,))
            missing = [m for m in members if m not in self.index]
            if missing:
                raise ValueError(f"objective {n!r} has no shaped residual ({', '.join(missing)})")
            groups.append([self.index[m] for m in members])
        self.groups = groups

    @staticmethod
    def _log_window(o: np.ndarray, lo: float, hi: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = np.maximum(np.maximum(np.log(lo / o), np.log(o / hi)), 0.0) / np.log(hi / lo)
        return np.where(o > 0, r, MISSING)

    def residuals(self, res: dict[str, np.ndarray]) -> np.ndarray:
        """``(N, len(columns))`` residuals of an :func:`fn.evaluate` result (the windows and the
        masses each as one ``(N, k)`` block, the same operations per element)."""
        n_win, n_mass = len(self._window_loss), len(fn.MASSES)
        R = np.empty((len(res["ordering"]), len(self.columns)), dtype=np.float64)
        R[:, :n_win] = np.stack([res[k] for k in self._window_loss], axis=1) / self._half_width
        R[:, n_win] = self._log_window(res["dm21"], *self.dm21)
        is_io = res["ordering"] == "IO"
        a = np.abs(res["dm3l"])
        R[:, n_win + 1] = np.where(is_io, self._log_window(a, *self.dm3l["IO"]), self._log_window(a, *self.dm3l["NO"]))
        lt = np.log1p(-self.tol), np.log1p(self.tol)
        masses = slice(n_win + 2, n_win + 2 + n_mass)  # columns: windows, dm21, dm3l, MASSES, ...
        with np.errstate(all="ignore"):
            m = np.stack([res[k] for k in fn.MASSES], axis=1)
            lr = np.log(m / self._m0_row)
            R[:, masses] = np.where(m > 0, np.maximum(np.maximum(lt[0] - lr, lr - lt[1]), 0.0) / self.tol, MISSING)
            R[:, self.index["n_negative"]] = res["loss_n_negative"]
            if "io" in self.index:
                R[:, self.index["io"]] = np.maximum(np.log(res["nu_m3"] / res["nu_m1"]), 0.0)
            if "max_exponent" in self.index:
                R[:, self.index["max_exponent"]] = res["loss_max_exponent"]
        R[~np.isfinite(R).all(axis=1)] = NON_FINITE
        R[res["ordering"] == "none", self.index["dm3l"]] += NO_ORDERING
        return R

    def objectives(self, R: np.ndarray) -> np.ndarray:
        """Residuals grouped into the objective list, one column per name of :attr:`names`."""
        cols = []
        for g in self.groups:
            c = R[:, g[0]]
            for k in g[1:]:
                c = c + R[:, k]
            cols.append(c)
        return np.column_stack(cols)


__all__ = ["Shaper"]
