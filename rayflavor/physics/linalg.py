"""Batched 3x3 complex matrix decompositions (batch axis first, complex128).

Conventions, fixed once here and used by every model:

* **Dirac (left) decomposition** ``m = U diag(s) V^dagger`` (FN paper eq. 22): ``U`` holds the
  left singular vectors as *columns*, ``s >= 0`` is sorted **ascending** (index 0 is the
  lightest state).  Only ``U`` and ``s`` are returned: mixing matrices need the left rotations.
* **Takagi factorisation** of a complex symmetric ``M = W diag(s) W^T``, i.e.
  ``W^dagger M W^* = diag(s)`` (FN paper eq. 27), ``s >= 0`` ascending.  ``W`` is unique up to a
  sign per column (and up to a unitary mixing inside exactly degenerate blocks).  The seesaw
  paper's eq. 2.3 ``U^T m U = diag`` is satisfied by ``U = W^*``.

Two interchangeable back ends:

* ``"numba"`` (default): a compiled one-sided (Hestenes) Jacobi SVD per matrix.  Jacobi
  rotations act on the rows of ``m`` directly, never on ``m m^dagger``, so tiny singular values
  keep full *relative* accuracy: a quark mass matrix with ``m_u/m_t ~ 1e-5`` is resolved to
  ~1e-15, where an eigen-solver of ``m m^dagger`` would lose ten digits.
* ``"lapack"``: ``numpy.linalg.svd`` per matrix; the reference the tests compare against.

Rows whose input holds a NaN or an infinity come back as NaN.  A Takagi factorisation whose
phase-fixed ``W^dagger M W^*`` is not diagonal (exactly degenerate non-zero singular values,
where the column phases are not determined) is returned as NaN too: callers treat NaN rows
as invalid models, never as a crash.

>>> import numpy as np
>>> m = np.diag([3.0, 1.0, 2.0]).astype(complex)[None]
>>> u, s = svd_left(m)
>>> s.round(12).tolist()
[[1.0, 2.0, 3.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

BACKENDS = ("numba", "lapack")
_MAX_SWEEPS = 30
_EPS = 2.220446049250313e-16
_QUAD_TOL = 1e-10
# Off-diagonal residual (relative to the largest singular value) above which a Takagi
# factorisation is declared degenerate.
TAKAGI_DEGENERACY_TOL = 1e-7


@njit(cache=True, nogil=True)
def _svd_left_kernel(m, u, s):  # pragma: no cover - compiled
    n = m.shape[0]
    a = np.empty((3, 3), np.complex128)
    pairs_p = (0, 0, 1)
    pairs_q = (1, 2, 2)
    for b in range(n):
        finite = True
        for i in range(3):
            for j in range(3):
                x = m[b, i, j]
                if not (math.isfinite(x.real) and math.isfinite(x.imag)):
                    finite = False
                a[i, j] = x
                u[b, i, j] = 1.0 if i == j else 0.0
        if not finite:
            for i in range(3):
                s[b, i] = np.nan
                for j in range(3):
                    u[b, i, j] = np.nan
            continue
        for _sweep in range(_MAX_SWEEPS):
            rotated = False
            worst = 0.0
            for k in range(3):
                p = pairs_p[k]
                q = pairs_q[k]
                alpha = 0.0
                beta = 0.0
                gamma = 0.0j
                for j in range(3):
                    ap = a[p, j]
                    aq = a[q, j]
                    alpha += ap.real * ap.real + ap.imag * ap.imag
                    beta += aq.real * aq.real + aq.imag * aq.imag
                    gamma += ap * aq.conjugate()
                ag = math.sqrt(gamma.real * gamma.real + gamma.imag * gamma.imag)
                norm = math.sqrt(alpha) * math.sqrt(beta)
                if ag == 0.0 or ag <= _EPS * norm:
                    continue
                rotated = True
                # norm can underflow to 0 while ag > 0 (entries spanning hundreds of decades)
                worst = max(worst, ag / norm) if norm > 0.0 else 1.0
                zeta = (beta - alpha) / (2.0 * ag)
                t = math.copysign(1.0, zeta) / (abs(zeta) + math.hypot(1.0, zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                sn = t * c
                eip = gamma / ag
                for j in range(3):
                    ap = a[p, j]
                    aq = a[q, j]
                    a[p, j] = c * ap - sn * eip * aq
                    a[q, j] = sn * ap + c * eip * aq
                emip = eip.conjugate()
                for j in range(3):
                    up = u[b, j, p]
                    uq = u[b, j, q]
                    u[b, j, p] = c * up - sn * emip * uq
                    u[b, j, q] = sn * up + c * emip * uq
            # Quadratic convergence: once every pair was within _QUAD_TOL before its rotation,
            # the rotations just applied leave off-diagonals of order _QUAD_TOL**2 < eps.
            if not rotated or worst < _QUAD_TOL:
                break
        for i in range(3):
            acc = 0.0
            for j in range(3):
                x = a[i, j]
                acc += x.real * x.real + x.imag * x.imag
            s[b, i] = math.sqrt(acc)
        # sort ascending (three elements: insertion sort), permuting the columns of u
        for i in range(1, 3):
            j = i
            while j > 0 and s[b, j - 1] > s[b, j]:
                tmp = s[b, j]
                s[b, j] = s[b, j - 1]
                s[b, j - 1] = tmp
                for r in range(3):
                    tu = u[b, r, j]
                    u[b, r, j] = u[b, r, j - 1]
                    u[b, r, j - 1] = tu
                j -= 1


@njit(cache=True, nogil=True)
def _takagi_phases_kernel(mm, u, s, tol):  # pragma: no cover - compiled
    """Turn left singular vectors ``u`` of symmetric ``mm`` into its Takagi factor, in place."""
    n = mm.shape[0]
    c = np.empty((3, 3), np.complex128)
    t = np.empty((3, 3), np.complex128)
    for b in range(n):
        if not math.isfinite(s[b, 2]):
            continue
        # c = u^dagger M u^*, via t = M u^*
        for i in range(3):
            for j in range(3):
                acc = 0.0j
                for k in range(3):
                    acc += mm[b, i, k] * u[b, k, j].conjugate()
                t[i, j] = acc
        for i in range(3):
            for j in range(3):
                acc = 0.0j
                for k in range(3):
                    acc += u[b, k, i].conjugate() * t[k, j]
                c[i, j] = acc
        scale = s[b, 2]
        bad = False
        for i in range(3):
            for j in range(3):
                if i != j and abs(c[i, j]) > tol * scale:
                    bad = True
        if bad:
            for i in range(3):
                s[b, i] = np.nan
                for j in range(3):
                    u[b, i, j] = np.nan
            continue
        for k in range(3):
            d = c[k, k]
            ad = abs(d)
            ph = 1.0 + 0.0j
            if ad > 0.0:
                # e^{i theta/2} with theta = arg d: principal square root of d/|d|
                ph = np.sqrt(d / ad)
            for r in range(3):
                u[b, r, k] = u[b, r, k] * ph


def _as_batch(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m)
    if m.ndim != 3 or m.shape[1:] != (3, 3):
        raise ValueError(f"expected a batch of 3x3 matrices, shape (N, 3, 3); got {m.shape}")
    return np.ascontiguousarray(m, dtype=np.complex128)


def svd_left(m: np.ndarray, backend: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors and ascending singular values of a batch ``m`` of shape (N, 3, 3).

    Returns ``(U, s)`` with ``m = U diag(s) V^dagger`` for some unitary ``V``.
    """
    m = _as_batch(m)
    if backend == "numba":
        u = np.empty_like(m)
        s = np.empty(m.shape[:2], dtype=np.float64)
        _svd_left_kernel(m, u, s)
        return u, s
    if backend == "lapack":
        bad = ~np.isfinite(m).all(axis=(1, 2))
        safe = np.where(bad[:, None, None], 0.0, m)
        uu, ss, _ = np.linalg.svd(safe)
        u = np.ascontiguousarray(uu[:, :, ::-1])
        s = np.ascontiguousarray(ss[:, ::-1])
        u[bad] = np.nan
        s[bad] = np.nan
        return u, s
    raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")


def takagi(m: np.ndarray, backend: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Takagi factorisation of a batch of complex symmetric matrices.

    Returns ``(W, s)`` with ``W^dagger m W^* = diag(s)``, ``s`` ascending and non-negative.
    Rows with exactly degenerate non-zero singular values, or non-finite input, are NaN.
    """
    m = _as_batch(m)
    u, s = svd_left(m, backend=backend)
    _takagi_phases_kernel(m, u, s, TAKAGI_DEGENERACY_TOL)
    return u, s


def inv3(m: np.ndarray) -> np.ndarray:
    """Inverse of a batch of 3x3 matrices via the adjugate (NaN where singular).

    Vectorised closed form; each cofactor is a 2x2 determinant, so hierarchical (graded)
    matrices keep their relative accuracy as well as with LU.
    """
    m = _as_batch(m)
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    g, h, i = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    co00 = e * i - f * h
    co01 = f * g - d * i
    co02 = d * h - e * g
    det = a * co00 + b * co01 + c * co02
    adj = np.empty_like(m)
    adj[:, 0, 0] = co00
    adj[:, 1, 0] = co01
    adj[:, 2, 0] = co02
    adj[:, 0, 1] = c * h - b * i
    adj[:, 1, 1] = a * i - c * g
    adj[:, 2, 1] = b * g - a * h
    adj[:, 0, 2] = b * f - c * e
    adj[:, 1, 2] = c * d - a * f
    adj[:, 2, 2] = a * e - b * d
    with np.errstate(divide="ignore", invalid="ignore"):
        out = adj / det[:, None, None]
    out[~np.isfinite(out).all(axis=(1, 2))] = np.nan
    return out


@njit(cache=True, nogil=True)
def _adjoint_product_kernel(a, b, out):  # pragma: no cover - compiled
    for n in range(a.shape[0]):
        for i in range(3):
            for j in range(3):
                acc = 0.0j
                for k in range(3):
                    acc += a[n, k, i].conjugate() * b[n, k, j]
                out[n, i, j] = acc


@njit(cache=True, nogil=True)
def _congruence_kernel(u, m, out):  # pragma: no cover - compiled
    t = np.empty((3, 3), np.complex128)
    for n in range(u.shape[0]):
        for i in range(3):  # t = m u^*
            for j in range(3):
                acc = 0.0j
                for k in range(3):
                    acc += m[n, i, k] * u[n, k, j].conjugate()
                t[i, j] = acc
        for i in range(3):  # out = u^dagger t
            for j in range(3):
                acc = 0.0j
                for k in range(3):
                    acc += u[n, k, i].conjugate() * t[k, j]
                out[n, i, j] = acc


def adjoint_product(a: np.ndarray, b: np.ndarray, backend: str = "numba") -> np.ndarray:
    """``a^dagger b`` for batches of 3x3 matrices (e.g. ``CKM = U_u^dagger U_d``)."""
    a, b = _as_batch(a), _as_batch(b)
    if backend == "lapack":
        return np.conj(a.transpose(0, 2, 1)) @ b
    out = np.empty_like(a)
    _adjoint_product_kernel(a, b, out)
    return out


def congruence(u: np.ndarray, m: np.ndarray, backend: str = "numba") -> np.ndarray:
    """``u^dagger m u^*``: a symmetric ``m`` seen in the basis rotated by ``u`` (FN eq. 35)."""
    u, m = _as_batch(u), _as_batch(m)
    if backend == "lapack":
        return np.conj(u.transpose(0, 2, 1)) @ m @ np.conj(u)
    out = np.empty_like(m)
    _congruence_kernel(u, m, out)
    return out
