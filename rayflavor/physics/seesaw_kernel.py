"""Compiled, fused evaluation of the type-I seesaw model: one pass over the rows.

Per row: ``m_nu`` from the 23 parameters (eq. 2.2), its Takagi factorisation
(:func:`.linalg.takagi_row`), the labelling for the ordering, angles and phases
(:func:`.mixing.angles_row`, ``"half"`` Majorana convention), ``m_bb``, ``m_beta``, the labels,
the chi2 terms and the 3 sigma test -- without any intermediate batch array.  This is
``seesaw.evaluate(backend="numba")``; the numpy composition in :mod:`.seesaw` (``"lapack"``,
``"jacobi"``) is the reference the tests hold it to.  Conventions are those of :mod:`.seesaw`.

No row raises (numpy error model): a singular, overflowing or massless row (``Y = 0``) comes
back with NaN observables and ``solution = False``, the other rows of the batch unaffected.
numba's on-disk cache keys a kernel on its own source file only: after editing the row
functions it inlines (:mod:`.linalg`, :mod:`.mixing`) delete ``rayflavor/physics/__pycache__/*.nb[ic]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .linalg import TAKAGI_DEGENERACY_TOL, takagi_row
from .mixing import angles_row, majorana_half_row

ABS_U: tuple[str, ...] = tuple(f"abs_u_{r}{c}" for r in ("e", "mu", "tau") for c in (1, 2, 3))
# Rows of the kernel's output, in order.
COLUMNS: tuple[str, ...] = (
    ("m1", "m2", "m3", "dm21", "dm31", "dm32", "dm3l")
    + ABS_U
    + ("sin2_theta12", "sin2_theta13", "sin2_theta23", "delta_cp", "alpha21", "alpha31")
    + ("j_cp", "i1", "i2", "m_bb", "m_beta", "m_sum", "label_log10_dm21", "label_log10_dm3l")
    + ("chi2", "chi2_mass", "chi2_mixing", "chi2_osc")
)
# chi2 terms, in the order of the kernel's ``central/minus/plus`` arrays; the first 11 are
# also the 3 sigma windows ``lo/hi`` of the solution test.
CHI2_TERMS: tuple[str, ...] = ("dm21", "dm3l") + ABS_U + ("sin2_theta12", "sin2_theta23", "sin2_theta13")
_C = {name: k for k, name in enumerate(COLUMNS)}
_AU, _S12, _DM21, _DM3L = _C["abs_u_e1"], _C["sin2_theta12"], _C["dm21"], _C["dm3l"]
_LN10 = math.log(10.0)
_CHI2_COL = np.array([_C[n] for n in CHI2_TERMS], dtype=np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _term(o, central, inv_minus, inv_plus):  # pragma: no cover - compiled
    d = o - central
    r = d * (inv_plus if d >= 0.0 else inv_minus)
    return r * r


@njit(cache=True, nogil=True, error_model="numpy")
def evaluate_rows(x, perm, io, chi2_col, central, inv_minus, inv_plus, lo, hi, out, solution):  # pragma: no cover
    """Fill ``out`` (N, len(COLUMNS)) and ``solution`` (N,) for the parameter rows ``x`` (N, 23).

    ``perm``: Takagi column (ascending mass) of m1, m2, m3; ``io``: ``dm3l = dm32`` if true
    else ``dm31``; ``central, inv_minus, inv_plus``: the chi2 terms of :data:`CHI2_TERMS`
    (central value, reciprocal 1 sigma errors below and above);
    ``lo, hi``: 3 sigma windows of its first 11.
    """
    mm = np.empty((3, 3), np.complex128)
    a = np.empty((3, 3), np.complex128)
    w = np.empty((3, 3), np.complex128)
    u = np.empty((3, 3), np.complex128)
    s = np.empty(3)
    y = np.empty((3, 3), np.complex128)
    yd = np.empty((3, 3), np.complex128)
    m = np.empty(3)
    for r in range(x.shape[0]):
        # m_nu = (<H>^2/M3) Y^T diag(M3/M1, M3/M2, 1) Y   [eV]  (eq. 2.2)
        h = math.exp(_LN10 * x[r, 20])
        d0 = complex(math.cos(x[r, 21]), -math.sin(x[r, 21])) * (h / x[r, 18])
        d1 = complex(math.cos(x[r, 22]), -math.sin(x[r, 22])) * (h / x[r, 19])
        for i in range(3):
            di = d0 if i == 0 else (d1 if i == 1 else h + 0.0j)
            for k in range(3):
                y[i, k] = complex(x[r, 3 * i + k], x[r, 9 + 3 * i + k])
                yd[i, k] = y[i, k] * di
        for p in range(3):
            for q in range(p, 3):
                v = yd[0, p] * y[0, q] + yd[1, p] * y[1, q] + yd[2, p] * y[2, q]
                mm[p, q] = v
                mm[q, p] = v
        takagi_row(mm, a, w, s, TAKAGI_DEGENERACY_TOL, 0)
        # U = W^* with columns labelled for the ordering (U^T m_nu U = diag, eq. 2.3)
        for k in range(3):
            m[k] = s[perm[k]]
            for i in range(3):
                u[i, k] = w[i, perm[k]].conjugate()
        m1, m2, m3 = m[0], m[1], m[2]
        out[r, 0], out[r, 1], out[r, 2] = m1, m2, m3
        q1, q2, q3 = m1 * m1, m2 * m2, m3 * m3
        out[r, 3], out[r, 4], out[r, 5] = q2 - q1, q3 - q1, q3 - q2
        out[r, 6] = q3 - q2 if io else q3 - q1
        mbb = 0.0j
        mbeta = 0.0
        for i in range(3):
            for k in range(3):
                z = u[i, k]
                out[r, _AU + 3 * i + k] = math.sqrt(z.real * z.real + z.imag * z.imag)
        for k in range(3):
            z = u[0, k]
            mbb += z * z * m[k]
            mbeta += (z.real * z.real + z.imag * z.imag) * m[k] * m[k]
        s12sq, s13sq, s23sq, delta, j = angles_row(u)
        a21, a31 = majorana_half_row(u, delta)
        out[r, _S12], out[r, _S12 + 1], out[r, _S12 + 2] = s12sq, s13sq, s23sq
        out[r, _S12 + 3], out[r, _S12 + 4], out[r, _S12 + 5] = delta, a21, a31
        out[r, _S12 + 6] = j
        # eq. 2.7 on the parametrised U (mixing.invariants): independent of Takagi signs.
        # alpha21/2 = arg(U_e2 U_e1^*) mod pi lies in [0, pi), so I1 = |Im(U_e1^* U_e2)|.
        out[r, _S12 + 7] = abs((u[0, 0].conjugate() * u[0, 1]).imag)
        out[r, _S12 + 8] = out[r, _AU] * out[r, _AU + 2] * math.sin(0.5 * a31 - delta)
        out[r, _S12 + 9] = abs(mbb)
        out[r, _S12 + 10] = math.sqrt(mbeta)
        out[r, _S12 + 11] = m1 + m2 + m3
        out[r, _S12 + 12] = np.log10(out[r, _DM21])
        out[r, _S12 + 13] = np.log10(abs(out[r, _DM3L]))
        # chi2 (eq. 2.22) and its parts; the 3 sigma solution test
        mass = 0.0
        mixing = 0.0
        osc = 0.0
        inside = True
        for k in range(chi2_col.shape[0]):
            o = out[r, chi2_col[k]]
            c2 = _term(o, central[k], inv_minus[k], inv_plus[k])
            if k < 2:
                mass += c2
            elif k < 11:
                mixing += c2
            else:
                osc += c2
            if k < 11 and not (lo[k] <= o <= hi[k]):
                inside = False
        out[r, _S12 + 14] = mass + mixing
        out[r, _S12 + 15] = mass
        out[r, _S12 + 16] = mixing
        out[r, _S12 + 17] = mass + osc
        solution[r] = inside and math.isfinite(m1) and math.isfinite(m2) and math.isfinite(m3)


def evaluate(x: np.ndarray, perm: np.ndarray, io: bool, terms: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(out, solution)`` for contiguous float64 ``x`` (N, 23).

    ``terms``: (len(CHI2_TERMS), 3) rows ``(central, minus, plus)``; ``windows``: (11, 2).
    """
    out = np.empty((x.shape[0], len(COLUMNS)))
    solution = np.empty(x.shape[0], dtype=np.bool_)
    evaluate_rows(np.ascontiguousarray(x, dtype=np.float64), perm, io, _CHI2_COL,
                  np.ascontiguousarray(terms[:, 0]), 1.0 / terms[:, 1], 1.0 / terms[:, 2], np.ascontiguousarray(windows[:, 0]),
                  np.ascontiguousarray(windows[:, 1]), out, solution)
    return out.T, solution
