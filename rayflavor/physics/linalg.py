"""Batched 3x3 complex matrix decompositions (batch axis first, complex128).

Conventions, fixed once here and used by every model:

* **Dirac (left) decomposition** ``m = U diag(s) V^dagger`` (FN paper eq. 22): ``U`` holds the
  left singular vectors as *columns*, ``s >= 0`` is sorted **ascending** (index 0 is the
  lightest state).  Only ``U`` and ``s`` are returned: mixing matrices need the left rotations.
* **Takagi factorisation** of a complex symmetric ``M = W diag(s) W^T``, i.e.
  ``W^dagger M W^* = diag(s)`` (FN paper eq. 27), ``s >= 0`` ascending.  ``W`` is unique up to a
  sign per column (and up to a unitary mixing inside exactly degenerate blocks).  The seesaw
  paper's eq. 2.3 ``U^T m U = diag`` is satisfied by ``U = W^*``.

Three interchangeable back ends:

* ``"numba"`` (default): compiled, per matrix, a closed form with a Jacobi fallback
  (:func:`_closed_form_row`).  The largest eigenvalue of ``m m^dagger`` comes from the
  trigonometric solution of its characteristic cubic, its eigenvector from a cross product;
  the remaining 2x3 block ``[q1 q2]^dagger m`` is diagonalised by one exact Jacobi rotation.
  Singular values are accurate to ~eps * s_max, as LAPACK's; the smallest is taken from
  ``|det m| / (s_mid s_max)`` where the determinant has no cancellation, which keeps it
  *relatively* accurate for graded matrices (FN quark sector, ``m_u/m_t ~ 1e-5``).  Where the
  closed form is ill-conditioned -- the two largest values within 1e-6 of each other, or
  ``s_mid/s_max < 1e-8`` -- the row goes to the Jacobi kernel below.
* ``"jacobi"``: a compiled one-sided (Hestenes) Jacobi SVD for every matrix.  Rotations act on
  the rows of ``m`` directly, never on ``m m^dagger``, so tiny singular values keep full
  relative accuracy for graded matrices.  About 2.5x slower than the closed form.
* ``"lapack"``: ``numpy.linalg.svd`` per matrix; the reference the tests compare against.

Takagi factors come from the left SVD of the symmetric matrix, each column multiplied by
``e^{i arg(c_kk)/2}``, ``c = U^dagger M U^*``.

Rows whose input holds a NaN or an infinity come back as NaN.  A Takagi factorisation whose
phase-fixed ``W^dagger M W^*`` is not diagonal (exactly degenerate non-zero singular values,
where the column phases are not determined) is returned as NaN too, and so is one with two
vanishing values (``s[1] == 0``, the zero matrix included: a massless block whose mixing is
undefined).  :func:`degenerate` flags exactly degenerate SVD spectra for callers that build
mixing matrices from ``U``.  Callers treat NaN rows as invalid models, never as a crash; no
kernel raises on any input (numpy error model: overflow gives inf, 0/0 NaN).

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

BACKENDS = ("numba", "jacobi", "lapack")
_MAX_SWEEPS = 30
_EPS = 2.220446049250313e-16
_QUAD_TOL = 1e-10
_SQRT3 = math.sqrt(3.0)
# Closed form defers to Jacobi when (l3 - l2)/l3 of m m^dagger is below _GAP_TOL, or when
# s_mid/s_max is below _HIER_TOL (see _closed_form_row).
_GAP_TOL = 1e-6
_HIER_TOL = 1e-8
_METHODS = {"numba": 0, "jacobi": 1}
# Off-diagonal residual (relative to the largest singular value) above which a Takagi
# factorisation is declared degenerate.
TAKAGI_DEGENERACY_TOL = 1e-7
# Two ascending values s_k <= s_{k+1} are exactly degenerate when s_{k+1} - s_k <= this * s_{k+1}
# (rounding level; two exact zeros included): the vectors of that pair are then not determined.
EXACT_DEGENERACY_RTOL = 4.0 * 2.220446049250313e-16


# ---------------------------------------------------------------------------------------------
# Row kernels: one 3x3 matrix each, no allocation; the batched kernels below and the fused
# per-model kernels (seesaw, FN) call them.  ``u`` holds vectors as columns, ``s`` ascending.
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _abs2(z):  # pragma: no cover - compiled
    return z.real * z.real + z.imag * z.imag


@njit(cache=True, nogil=True, inline="always")
def _abs1(z):  # pragma: no cover - compiled
    return abs(z.real) + abs(z.imag)


@njit(cache=True, nogil=True, error_model="numpy")
def _pair(a, p, q):  # pragma: no cover - compiled
    """``(|a_p|^2, |a_q|^2, a_p . a_q^*)`` for rows ``p``, ``q`` of ``a``."""
    alpha = _abs2(a[p, 0]) + _abs2(a[p, 1]) + _abs2(a[p, 2])
    beta = _abs2(a[q, 0]) + _abs2(a[q, 1]) + _abs2(a[q, 2])
    gamma = a[p, 0] * a[q, 0].conjugate() + a[p, 1] * a[q, 1].conjugate() + a[p, 2] * a[q, 2].conjugate()
    return alpha, beta, gamma


@njit(cache=True, nogil=True, error_model="numpy")
def _fill_nan(u, s):  # pragma: no cover - compiled
    """Mark one row's result as undefined (non-finite input, degenerate Takagi values)."""
    for i in range(3):
        s[i] = np.nan
        for j in range(3):
            u[i, j] = np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _rotate_rows(a, u, p, q, alpha, beta, gamma, ag):  # pragma: no cover - compiled
    """Exact 2x2 Jacobi rotation making rows ``p``, ``q`` of ``a`` orthogonal; same on ``u``'s columns.

    Keeps the invariant ``a = u^dagger m``.  ``alpha = |a_p|^2``, ``beta = |a_q|^2``,
    ``gamma = a_p . a_q^*``, ``ag = |gamma| > 0``.
    """
    zeta = (beta - alpha) / (2.0 * ag)
    t = math.copysign(1.0, zeta) / (abs(zeta) + math.sqrt(1.0 + zeta * zeta))
    c = 1.0 / math.sqrt(1.0 + t * t)
    sn = t * c
    eip = gamma / ag
    se = sn * eip
    for j in range(3):
        ap = a[p, j]
        aq = a[q, j]
        a[p, j] = c * ap - se * aq
        a[q, j] = sn * ap + c * eip * aq
    emip = eip.conjugate()
    sem = sn * emip
    for j in range(3):
        up = u[j, p]
        uq = u[j, q]
        u[j, p] = c * up - sem * uq
        u[j, q] = sn * up + c * emip * uq


@njit(cache=True, nogil=True, error_model="numpy")
def _sort_ascending(a, u, s):  # pragma: no cover - compiled
    """``s[i] = |row i of a|``, then sort ``s`` ascending, permuting ``u``'s columns and ``a``'s rows alike."""
    for i in range(3):
        s[i] = math.sqrt(_abs2(a[i, 0]) + _abs2(a[i, 1]) + _abs2(a[i, 2]))
    for i in range(1, 3):
        j = i
        while j > 0 and s[j - 1] > s[j]:
            tmp = s[j]
            s[j] = s[j - 1]
            s[j - 1] = tmp
            for r in range(3):
                tu = u[r, j]
                u[r, j] = u[r, j - 1]
                u[r, j - 1] = tu
                ta = a[j, r]
                a[j, r] = a[j - 1, r]
                a[j - 1, r] = ta
            j -= 1


@njit(cache=True, nogil=True, error_model="numpy")
def _jacobi_row(m, a, u, s):  # pragma: no cover - compiled
    """One-sided (Hestenes) Jacobi on the rows of a copy ``a`` of the finite ``m``; ``u`` starts as 1.

    Leaves ``a = u^dagger m`` (rows in the order of ``s``)."""
    for i in range(3):
        for j in range(3):
            a[i, j] = m[i, j]
            u[i, j] = 1.0 if i == j else 0.0
    for _sweep in range(_MAX_SWEEPS):
        rotated = False
        worst = 0.0
        for k in range(3):
            p = 0 if k < 2 else 1
            q = 1 if k == 0 else 2
            alpha, beta, gamma = _pair(a, p, q)
            ag = math.sqrt(_abs2(gamma))
            norm = math.sqrt(alpha) * math.sqrt(beta)
            if ag == 0.0 or ag <= _EPS * norm:
                continue
            rotated = True
            # norm can underflow to 0 while ag > 0 (entries spanning hundreds of decades)
            worst = max(worst, ag / norm) if norm > 0.0 else 1.0
            _rotate_rows(a, u, p, q, alpha, beta, gamma, ag)
        # Quadratic convergence: once every pair was within _QUAD_TOL before its rotation,
        # the rotations just applied leave off-diagonals of order _QUAD_TOL**2 < eps.
        if not rotated or worst < _QUAD_TOL:
            break
    _sort_ascending(a, u, s)


@njit(cache=True, nogil=True, error_model="numpy")
def _det3(m):  # pragma: no cover - compiled
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
            - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


@njit(cache=True, nogil=True, error_model="numpy")
def _closed_form_row(m, a, u, s):  # pragma: no cover - compiled
    """Closed-form left SVD of one finite 3x3 ``m``; ``False`` where it defers to Jacobi.

    1. Largest eigenvalue ``l3`` of ``H = m m^dagger`` by the trigonometric solution of its
       characteristic cubic (shifted and scaled, Smith 1961), its eigenvector ``v3`` as the
       largest cross product of two rows of ``H - l3``.
    2. Deflation: with an orthonormal basis ``q1, q2`` of ``v3``'s complement, the 2x3 block
       ``[q1 q2]^dagger m`` is diagonalised by one exact 2x2 Jacobi rotation.
    3. ``s`` = row norms of ``u^dagger m`` (absolute error ~ eps * s_max, as LAPACK).  The
       smallest is replaced by ``|det m| / (s_mid s_max)`` where the determinant has no
       cancellation, which keeps its relative accuracy for graded (FN-type) matrices.

    Deferred (returns ``False``): zero matrix, ``l3`` within ``_GAP_TOL * l3`` of the middle
    eigenvalue (``v3`` ill-conditioned), and ``s_mid/s_max < _HIER_TOL`` (the middle value's
    relative error ~ eps * s_max/s_mid would exceed ~1e-8; Jacobi keeps it relative).
    """
    h00 = _abs2(m[0, 0]) + _abs2(m[0, 1]) + _abs2(m[0, 2])
    h11 = _abs2(m[1, 0]) + _abs2(m[1, 1]) + _abs2(m[1, 2])
    h22 = _abs2(m[2, 0]) + _abs2(m[2, 1]) + _abs2(m[2, 2])
    h01 = m[0, 0] * m[1, 0].conjugate() + m[0, 1] * m[1, 1].conjugate() + m[0, 2] * m[1, 2].conjugate()
    h02 = m[0, 0] * m[2, 0].conjugate() + m[0, 1] * m[2, 1].conjugate() + m[0, 2] * m[2, 2].conjugate()
    h12 = m[1, 0] * m[2, 0].conjugate() + m[1, 1] * m[2, 1].conjugate() + m[1, 2] * m[2, 2].conjugate()
    tr = h00 + h11 + h22
    if not (tr > 0.0) or not math.isfinite(tr):
        return False
    qq = tr / 3.0
    b00, b11, b22 = h00 - qq, h11 - qq, h22 - qq
    off = _abs2(h01) + _abs2(h02) + _abs2(h12)
    p2 = b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * off
    if not (p2 > 0.0):
        return False
    p = math.sqrt(p2 / 6.0)
    ip = 1.0 / p
    # det(B)/2 for B = (H - qq)/p (Hermitian)
    c00, c11, c22 = b00 * ip, b11 * ip, b22 * ip
    d01, d02, d12 = h01 * ip, h02 * ip, h12 * ip
    detb = (c00 * c11 * c22 + 2.0 * (d01 * d12 * d02.conjugate()).real
            - c00 * _abs2(d12) - c11 * _abs2(d02) - c22 * _abs2(d01))
    r = min(1.0, max(-1.0, 0.5 * detb))
    phi = math.acos(r) / 3.0  # in [0, pi/3]
    cphi = math.cos(phi)
    sphi = math.sqrt(max(0.0, 1.0 - cphi * cphi))
    l3 = qq + 2.0 * p * cphi
    l1 = qq - p * (cphi + _SQRT3 * sphi)  # 2 p cos(phi + 2 pi/3)
    l2 = tr - l3 - l1
    if l3 - l2 < _GAP_TOL * l3:
        return False
    # v3 = largest of the three cross products of rows of H - l3
    r00, r11, r22 = h00 - l3, h11 - l3, h22 - l3
    # rows: (r00, h01, h02), (h01^*, r11, h12), (h02^*, h12^*, r22)
    x0 = h01 * h12 - h02 * r11
    x1 = h02 * h01.conjugate() - r00 * h12
    x2 = r00 * r11 - _abs2(h01)
    n0 = _abs2(x0) + _abs2(x1) + x2 * x2
    y0 = h01 * r22 - h02 * h12.conjugate()
    y1 = _abs2(h02) - r00 * r22
    y2 = r00 * h12.conjugate() - h01 * h02.conjugate()
    n1 = _abs2(y0) + y1 * y1 + _abs2(y2)
    z0 = r11 * r22 - _abs2(h12)
    z1 = h12 * h02.conjugate() - h01.conjugate() * r22
    z2 = h01.conjugate() * h12.conjugate() - r11 * h02.conjugate()
    n2 = z0 * z0 + _abs2(z1) + _abs2(z2)
    if n0 >= n1 and n0 >= n2:
        v0, v1, v2, nv = x0, x1, x2 + 0.0j, n0
    elif n1 >= n2:
        v0, v1, v2, nv = y0, y1 + 0.0j, y2, n1
    else:
        v0, v1, v2, nv = z0 + 0.0j, z1, z2, n2
    if not (nv > 0.0) or not math.isfinite(nv):
        return False
    inv = 1.0 / math.sqrt(nv)
    v0, v1, v2 = v0 * inv, v1 * inv, v2 * inv
    # q1: the unit axis least aligned with v3, orthogonalised; q2 = conj(v3 x q1)
    w0, w1, w2 = _abs2(v0), _abs2(v1), _abs2(v2)
    if w0 <= w1 and w0 <= w2:
        k = 0
        vk = v0
        nk = w0
    elif w1 <= w2:
        k = 1
        vk = v1
        nk = w1
    else:
        k = 2
        vk = v2
        nk = w2
    cvk = vk.conjugate()
    a0 = (1.0 if k == 0 else 0.0) - v0 * cvk
    a1 = (1.0 if k == 1 else 0.0) - v1 * cvk
    a2 = (1.0 if k == 2 else 0.0) - v2 * cvk
    inv = 1.0 / math.sqrt(1.0 - nk)
    a0, a1, a2 = a0 * inv, a1 * inv, a2 * inv
    e0 = (v1 * a2 - v2 * a1).conjugate()
    e1 = (v2 * a0 - v0 * a2).conjugate()
    e2 = (v0 * a1 - v1 * a0).conjugate()
    u[0, 0], u[1, 0], u[2, 0] = a0, a1, a2
    u[0, 1], u[1, 1], u[2, 1] = e0, e1, e2
    u[0, 2], u[1, 2], u[2, 2] = v0, v1, v2
    # a = u^dagger m
    for i in range(3):
        for j in range(3):
            a[i, j] = u[0, i].conjugate() * m[0, j] + u[1, i].conjugate() * m[1, j] + u[2, i].conjugate() * m[2, j]
    alpha, beta, gamma = _pair(a, 0, 1)
    ag = math.sqrt(_abs2(gamma))
    if ag > 0.0:
        _rotate_rows(a, u, 0, 1, alpha, beta, gamma, ag)
    _sort_ascending(a, u, s)
    if not (s[1] >= _HIER_TOL * s[2]):
        return False
    # |det m| / (s_mid s_max) is relatively accurate when det m has no cancellation (graded
    # matrices); its error ~ eps * perm|m| / (s_mid s_max) against ~ eps * s_max for the row
    # norm.  Only worth it for a small s_min (the row norm is good to ~1e-12 above 1e-4 s_max);
    # |re| + |im| >= |z| bounds the permanent from above.
    if s[0] < 1e-4 * s[2]:
        a00, a01, a02 = _abs1(m[0, 0]), _abs1(m[0, 1]), _abs1(m[0, 2])
        a10, a11, a12 = _abs1(m[1, 0]), _abs1(m[1, 1]), _abs1(m[1, 2])
        a20, a21, a22 = _abs1(m[2, 0]), _abs1(m[2, 1]), _abs1(m[2, 2])
        perm = (a00 * (a11 * a22 + a12 * a21) + a01 * (a10 * a22 + a12 * a20)
                + a02 * (a10 * a21 + a11 * a20))
        if perm < s[1] * s[2] * s[2]:
            s[0] = math.sqrt(_abs2(_det3(m))) / (s[1] * s[2])
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def svd_left_row(m, a, u, s, method):  # pragma: no cover - compiled
    """Left SVD of one 3x3 ``m`` into ``u``, ``s``; ``a`` is scratch.  NaN for non-finite input.

    ``method`` 0: closed form with Jacobi fallback (default back end); 1: Jacobi only.
    """
    finite = True
    for i in range(3):
        for j in range(3):
            x = m[i, j]
            if not (math.isfinite(x.real) and math.isfinite(x.imag)):
                finite = False
    if not finite:
        _fill_nan(u, s)
        return
    if method == 0 and _closed_form_row(m, a, u, s):
        return
    _jacobi_row(m, a, u, s)


@njit(cache=True, nogil=True, error_model="numpy")
def _half_phase(d):  # pragma: no cover - compiled
    """Principal square root of ``d/|d|`` (``e^{i arg(d)/2}``, real part >= 0), as ``np.sqrt``."""
    ad = math.sqrt(_abs2(d))
    if not (ad > 0.0):
        return 1.0 + 0.0j
    inv = 1.0 / ad
    c = d.real * inv
    sn = d.imag * inv
    if c >= 0.0:
        ch = math.sqrt(0.5 * (1.0 + c))
        return complex(ch, sn / (2.0 * ch))
    sh = math.copysign(math.sqrt(0.5 * (1.0 - c)), sn)
    return complex(sn / (2.0 * sh), sh)


@njit(cache=True, nogil=True, error_model="numpy")
def degenerate_row(s):  # pragma: no cover - compiled
    """``True`` where ascending ``s`` (3,) holds an exactly degenerate pair (to rounding, two
    exact zeros included, so the zero matrix too): the vectors of that pair, and every mixing
    matrix built from them, are undefined.  ``False`` for NaN input (NaN is flagged elsewhere)."""
    return (s[1] - s[0] <= EXACT_DEGENERACY_RTOL * s[1]) or (s[2] - s[1] <= EXACT_DEGENERACY_RTOL * s[2])


def degenerate(s: np.ndarray) -> np.ndarray:
    """Batched :func:`degenerate_row` for ascending ``s`` of shape (N, 3)."""
    s = np.asarray(s, dtype=np.float64)
    return ((s[:, 1] - s[:, 0] <= EXACT_DEGENERACY_RTOL * s[:, 1])
            | (s[:, 2] - s[:, 1] <= EXACT_DEGENERACY_RTOL * s[:, 2]))


@njit(cache=True, nogil=True, error_model="numpy")
def _takagi_phase_from_rows(a, u, s, tol):  # pragma: no cover - compiled
    """Turn left singular vectors ``u`` of a symmetric ``M`` into its Takagi factor, in place.

    ``a = u^dagger M`` (as an SVD row kernel leaves it).  ``c = u^dagger M u^* = a u^*`` must be
    diagonal (to ``tol * s_max``; ``c`` is symmetric, so six entries); column ``k`` is multiplied
    by ``e^{i arg(c_kk)/2}``.  Returns ``False`` (``u`` untouched) when ``c`` is not diagonal, or
    when two values vanish (``s[1] == 0``: a massless block, the zero matrix included, whose
    mixing is undefined although ``c`` is trivially diagonal).
    """
    if not (s[1] > 0.0):
        return False
    lim = tol * s[2]
    lim2 = lim * lim
    for i in range(3):
        for j in range(i + 1, 3):
            cij = a[i, 0] * u[0, j].conjugate() + a[i, 1] * u[1, j].conjugate() + a[i, 2] * u[2, j].conjugate()
            if not (_abs2(cij) <= lim2):
                return False
    for k in range(3):
        ph = _half_phase(a[k, 0] * u[0, k].conjugate() + a[k, 1] * u[1, k].conjugate() + a[k, 2] * u[2, k].conjugate())
        for r in range(3):
            u[r, k] = u[r, k] * ph
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def takagi_row(mm, a, u, s, tol, method):  # pragma: no cover - compiled
    """Takagi factor ``u`` (``u^dagger M u^* = diag(s)``) of one symmetric ``mm``; NaN if degenerate."""
    svd_left_row(mm, a, u, s, method)
    if not math.isfinite(s[2]):
        return
    if _takagi_phase_from_rows(a, u, s, tol):
        return
    if method == 0:  # closed form not sharp enough for the phases: redo with Jacobi
        _jacobi_row(mm, a, u, s)
        if _takagi_phase_from_rows(a, u, s, tol):
            return
    _fill_nan(u, s)


@njit(cache=True, nogil=True, error_model="numpy")
def _svd_left_kernel(m, u, s, method):  # pragma: no cover - compiled
    a = np.empty((3, 3), np.complex128)
    for b in range(m.shape[0]):
        svd_left_row(m[b], a, u[b], s[b], method)


@njit(cache=True, nogil=True, error_model="numpy")
def _takagi_kernel(m, u, s, tol, method):  # pragma: no cover - compiled
    a = np.empty((3, 3), np.complex128)
    for b in range(m.shape[0]):
        takagi_row(m[b], a, u[b], s[b], tol, method)


@njit(cache=True, nogil=True, error_model="numpy")
def _takagi_phases_kernel(mm, u, s, tol):  # pragma: no cover - compiled
    """Phase-fix precomputed left singular vectors (the LAPACK path); NaN where degenerate."""
    a = np.empty((3, 3), np.complex128)
    for b in range(mm.shape[0]):
        if not math.isfinite(s[b, 2]):
            continue
        adjoint_product_row(u[b], mm[b], a)  # a = u^dagger M
        if not _takagi_phase_from_rows(a, u[b], s[b], tol):
            _fill_nan(u[b], s[b])


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
    if backend in _METHODS:
        u = np.empty_like(m)
        s = np.empty(m.shape[:2], dtype=np.float64)
        _svd_left_kernel(m, u, s, _METHODS[backend])
        return u, s
    if backend == "lapack":
        bad = ~np.isfinite(m).all(axis=(1, 2))
        safe = np.where(bad[:, None, None], 0.0, m)
        try:
            uu, ss, _ = np.linalg.svd(safe)
        except np.linalg.LinAlgError:  # one row did not converge: isolate it, NaN for that row only
            uu, ss = np.empty_like(safe), np.empty(safe.shape[:2])
            for k, mat in enumerate(safe):
                try:
                    uu[k], ss[k], _ = np.linalg.svd(mat)
                except np.linalg.LinAlgError:
                    bad[k] = True
        u = np.ascontiguousarray(uu[:, :, ::-1])
        s = np.ascontiguousarray(ss[:, ::-1])
        u[bad] = np.nan
        s[bad] = np.nan
        return u, s
    raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")


def takagi(m: np.ndarray, backend: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Takagi factorisation of a batch of complex symmetric matrices.

    Returns ``(W, s)`` with ``W^dagger m W^* = diag(s)``, ``s`` ascending and non-negative.
    Rows with exactly degenerate non-zero singular values, two zero values (e.g. the zero
    matrix), or non-finite input, are NaN.
    """
    m = _as_batch(m)
    if backend in _METHODS:
        u = np.empty_like(m)
        s = np.empty(m.shape[:2], dtype=np.float64)
        _takagi_kernel(m, u, s, TAKAGI_DEGENERACY_TOL, _METHODS[backend])
        return u, s
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


@njit(cache=True, nogil=True, error_model="numpy")
def adjoint_product_row(a, b, out):  # pragma: no cover - compiled
    """``out = a^dagger b`` for one pair of 3x3 matrices."""
    for i in range(3):
        for j in range(3):
            out[i, j] = a[0, i].conjugate() * b[0, j] + a[1, i].conjugate() * b[1, j] + a[2, i].conjugate() * b[2, j]


@njit(cache=True, nogil=True, error_model="numpy")
def congruence_row(u, m, t, out):  # pragma: no cover - compiled
    """``out = u^dagger m u^*`` for one pair of 3x3 matrices; ``t`` is scratch (``m u^*``)."""
    for i in range(3):
        for j in range(3):
            t[i, j] = m[i, 0] * u[0, j].conjugate() + m[i, 1] * u[1, j].conjugate() + m[i, 2] * u[2, j].conjugate()
    adjoint_product_row(u, t, out)


@njit(cache=True, nogil=True, error_model="numpy")
def _adjoint_product_kernel(a, b, out):  # pragma: no cover - compiled
    for n in range(a.shape[0]):
        adjoint_product_row(a[n], b[n], out[n])


@njit(cache=True, nogil=True, error_model="numpy")
def _congruence_kernel(u, m, out):  # pragma: no cover - compiled
    t = np.empty((3, 3), np.complex128)
    for n in range(u.shape[0]):
        congruence_row(u[n], m[n], t, out[n])


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
