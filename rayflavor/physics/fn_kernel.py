"""Compiled, fused evaluation of the FN model's observables: one pass over the rows.

Per row: the mass matrices (:func:`matrices_row`, also behind ``fn.mass_matrices``), the three charged left SVDs and the
neutrino Takagi factorisation (:mod:`.linalg` row kernels), ``CKM = U_u^dagger U_d``,
``M_nu^e = U_e^dagger M_nu U_e^*``, the NuFit labelling, angles and phases
(:mod:`.mixing` row functions) -- no intermediate batch array.  This is
``fn.evaluate(backend="numba")`` up to the losses, which :mod:`.fn` adds for both back ends;
the numpy composition there (``"lapack"``, ``"jacobi"``) is the reference the tests hold it
to.  Conventions are those of :mod:`.fn`.

No row raises (numpy error model, :func:`_ipow`): a row whose powers of eps overflow (e.g. a
charge of 300), whose ``M^N`` is singular, or whose charged or light-neutrino spectrum leaves
a mixing matrix undefined (exactly degenerate, two massless states) comes back with NaN
observables, ``ordering = "none"`` and so ``valid = False``; the other rows are unaffected.
numba's on-disk cache keys a kernel on its own source file only: after editing the row
functions it inlines (:mod:`.linalg`, :mod:`.mixing`) delete ``rayflavor/physics/__pycache__/*.nb[ic]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .linalg import TAKAGI_DEGENERACY_TOL, adjoint_product_row, congruence_row, degenerate_row, svd_left_row, takagi_row
from .mixing import angles_row, majorana_nufit_row

MASSES: tuple[str, ...] = ("m_u", "m_c", "m_t", "m_d", "m_s", "m_b", "m_e", "m_mu", "m_tau")
# Rows of the kernel's float output, in order.
COLUMNS: tuple[str, ...] = MASSES + (
    "ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta", "j_ckm",
    "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "pmns_alpha1", "pmns_alpha2", "j_pmns",
    "nu_m1", "nu_m2", "nu_m3", "dm21", "dm3l", "m_lightest", "m_ee", "m_sum",
)
ORDERINGS = np.array(["NO", "IO", "none"])  # index = the kernel's ordering code
V_HIGGS_GEV = 246.22
GEV_TO_EV = 1e9
_DEG = 180.0 / math.pi
_LN10 = math.log(10.0)
_CKM = 9
_PMNS = 14
_NU = 21

# Index of the upper-triangle c_N column for every (i, j), row-major (see fn.PARAMETERS).
CN_FLAT = np.array([0, 1, 2, 1, 3, 4, 2, 4, 5])


_KMAX = 80  # |n| <= 2*9 + 2*18 = 54 for |q| <= 9; larger charges fall back to pow()
#: Largest |charge| the kernel evaluates; beyond it (exponents of order 1e9 and more) a row is NaN.
MAX_ABS_CHARGE = 1e8


@njit(cache=True, nogil=True, error_model="numpy")
def _ipow(b, n):  # pragma: no cover - compiled
    """``b**n`` for a real ``b`` and integer ``n`` that never raises: 0 or inf where it under- or
    overflows (numba's ``**`` raises ZeroDivisionError when ``b**|n|`` underflows and ``n < 0``)."""
    if n == 0:
        return 1.0
    if b == 0.0:
        return 0.0 if n > 0 else np.inf
    mag = math.exp(n * math.log(abs(b)))
    return -mag if (b < 0.0 and n % 2 != 0) else mag


@njit(cache=True, nogil=True, error_model="numpy")
def matrices_scratch():  # pragma: no cover - compiled
    """Work arrays of :func:`matrices_row` (allocated once per batch)."""
    return (np.empty(18, np.int64), np.empty(45, np.int64), np.empty(2 * _KMAX + 1, np.complex128),
            np.empty(2 * _KMAX + 1, np.float64), np.empty((3, 3), np.complex128),
            np.empty((3, 3), np.complex128), np.empty((3, 3), np.complex128))


@njit(cache=True, nogil=True, error_model="numpy")
def matrices_row(xr, scratch, m_u, m_d, m_e, m_nu, expo):  # pragma: no cover - compiled
    """``m_u m_d m_e`` [GeV], ``M_nu`` [eV] (3, 3) and the 45 exponents of one parameter row.

    Never raises (numpy error model): overflowing or vanishing powers of eps give inf/0
    entries, a singular or non-finite ``M^N`` gives a NaN ``M_nu``, and a charge beyond
    :data:`MAX_ABS_CHARGE` (which the integer exponents could not hold) gives NaN matrices and
    zero exponents; callers turn such rows into NaN observables.
    """
    q, nn, tab_u, tab_d, md, mn, adj = scratch
    dirac = V_HIGGS_GEV / math.sqrt(2.0)
    for k in range(18):
        if not (abs(xr[k]) <= MAX_ABS_CHARGE):
            for e in range(45):
                expo[e] = 0
            for i in range(3):
                for j in range(3):
                    nan = complex(np.nan, np.nan)
                    m_u[i, j] = nan
                    m_d[i, j] = nan
                    m_e[i, j] = nan
                    m_nu[i, j] = nan
            return
        q[k] = np.int64(np.rint(xr[k]))
    qh = q[5] - q[2]
    kmax = 0
    for i in range(3):
        for j in range(3):
            e = 3 * i + j
            nn[e] = q[i] - q[3 + j] + qh
            nn[9 + e] = q[i] - q[6 + j] - qh
            nn[18 + e] = q[9 + i] - q[15 + j] + qh
            nn[27 + e] = q[9 + i] - q[12 + j] - qh
            nn[36 + e] = -(q[15 + i] + q[15 + j])
    for e in range(45):
        expo[e] = nn[e]
        if abs(nn[e]) > kmax:
            kmax = abs(nn[e])
    eu = xr[60]
    ed = xr[61]
    al = xr[62]
    lam = math.exp(_LN10 * xr[63])
    pu = complex(eu * math.cos(al), eu * math.sin(al))
    use_tab = kmax <= _KMAX and eu != 0.0 and ed != 0.0  # complex 1/0 would raise in numba
    if use_tab:
        tab_u[_KMAX] = 1.0
        tab_d[_KMAX] = 1.0
        ipu = 1.0 / pu
        ied = 1.0 / ed
        for k in range(1, kmax + 1):
            tab_u[_KMAX + k] = tab_u[_KMAX + k - 1] * pu
            tab_u[_KMAX - k] = tab_u[_KMAX - k + 1] * ipu
            tab_d[_KMAX + k] = tab_d[_KMAX + k - 1] * ed
            tab_d[_KMAX - k] = tab_d[_KMAX - k + 1] * ied
    for i in range(3):
        for j in range(3):
            e = 3 * i + j
            if use_tab:
                fu = tab_u[_KMAX + nn[e]]
                fd = tab_d[_KMAX + nn[9 + e]]
                fnu = tab_u[_KMAX + nn[18 + e]]
                fe = tab_d[_KMAX + nn[27 + e]]
                fn_ = tab_u[_KMAX + nn[36 + e]]
            else:
                fu = _ipow(eu, nn[e]) * complex(math.cos(nn[e] * al), math.sin(nn[e] * al))
                fd = _ipow(ed, nn[9 + e])
                fnu = _ipow(eu, nn[18 + e]) * complex(math.cos(nn[18 + e] * al), math.sin(nn[18 + e] * al))
                fe = _ipow(ed, nn[27 + e])
                fn_ = _ipow(eu, nn[36 + e]) * complex(math.cos(nn[36 + e] * al), math.sin(nn[36 + e] * al))
            m_u[i, j] = dirac * fu * xr[18 + e]
            m_d[i, j] = dirac * fd * xr[27 + e]
            md[i, j] = dirac * fnu * xr[36 + e]
            m_e[i, j] = dirac * fe * xr[45 + e]
            mn[i, j] = fn_ * xr[54 + CN_FLAT[e]] * lam
    # adjugate of M_N; M_nu = -m_D adj(M_N) m_D^T / det(M_N)
    adj[0, 0] = mn[1, 1] * mn[2, 2] - mn[1, 2] * mn[2, 1]
    adj[0, 1] = mn[0, 2] * mn[2, 1] - mn[0, 1] * mn[2, 2]
    adj[0, 2] = mn[0, 1] * mn[1, 2] - mn[0, 2] * mn[1, 1]
    adj[1, 0] = mn[1, 2] * mn[2, 0] - mn[1, 0] * mn[2, 2]
    adj[1, 1] = mn[0, 0] * mn[2, 2] - mn[0, 2] * mn[2, 0]
    adj[1, 2] = mn[0, 2] * mn[1, 0] - mn[0, 0] * mn[1, 2]
    adj[2, 0] = mn[1, 0] * mn[2, 1] - mn[1, 1] * mn[2, 0]
    adj[2, 1] = mn[0, 1] * mn[2, 0] - mn[0, 0] * mn[2, 1]
    adj[2, 2] = mn[0, 0] * mn[1, 1] - mn[0, 1] * mn[1, 0]
    det = mn[0, 0] * adj[0, 0] + mn[0, 1] * adj[1, 0] + mn[0, 2] * adj[2, 0]
    ok = det != 0.0 and math.isfinite(det.real) and math.isfinite(det.imag)
    for a in range(3):
        for b in range(a, 3):
            acc = 0.0j
            if ok:
                for k in range(3):
                    t = 0.0j
                    for l in range(3):
                        t += adj[k, l] * md[b, l]
                    acc += md[a, k] * t
                acc = -acc / det * GEV_TO_EV
            else:
                acc = complex(np.nan, np.nan)
            m_nu[a, b] = acc
            m_nu[b, a] = acc


@njit(cache=True, nogil=True, error_model="numpy")
def evaluate_rows(x, out, code, expo):  # pragma: no cover - compiled
    """Fill ``out`` (N, len(COLUMNS)), ``code`` (N,) ordering index and ``expo`` (N, 45)."""
    scratch = matrices_scratch()
    m_u = np.empty((3, 3), np.complex128)
    m_d = np.empty((3, 3), np.complex128)
    m_e = np.empty((3, 3), np.complex128)
    m_nu = np.empty((3, 3), np.complex128)
    a = np.empty((3, 3), np.complex128)
    uu = np.empty((3, 3), np.complex128)
    ud = np.empty((3, 3), np.complex128)
    ue = np.empty((3, 3), np.complex128)
    w = np.empty((3, 3), np.complex128)
    c = np.empty((3, 3), np.complex128)
    t = np.empty((3, 3), np.complex128)
    s = np.empty(3)
    nm = np.empty(3)
    perm = np.empty(3, np.int64)
    for r in range(x.shape[0]):
        matrices_row(x[r], scratch, m_u, m_d, m_e, m_nu, expo[r])
        finite = True
        for sector in range(3):
            mat = m_u if sector == 0 else (m_d if sector == 1 else m_e)
            uvec = uu if sector == 0 else (ud if sector == 1 else ue)
            svd_left_row(mat, a, uvec, s, 0)
            for k in range(3):
                out[r, 3 * sector + k] = s[k]
                finite = finite and math.isfinite(s[k])
            # (exactly) degenerate or two massless states: U of this sector, hence CKM/PMNS, undefined
            finite = finite and not degenerate_row(s)
        adjoint_product_row(uu, ud, c)  # CKM = U_u^dagger U_d  (eq. 28)
        s12sq, s13sq, s23sq, delta, j = angles_row(c)
        out[r, _CKM] = math.sqrt(s12sq)
        out[r, _CKM + 1] = math.sqrt(s23sq)
        out[r, _CKM + 2] = math.sqrt(s13sq)
        out[r, _CKM + 3] = delta
        out[r, _CKM + 4] = j
        # M_nu^e = U_e^dagger M_nu U_e^*  (eq. 35), then its Takagi factor W  (eq. 27)
        congruence_row(ue, m_nu, t, c)
        takagi_row(c, a, w, s, TAKAGI_DEGENERACY_TOL, 0)
        # NuFit labelling: nu_3 = smallest |U_e i| (first on ties, NaN last), nu_1, nu_2 ascending
        i3 = 0
        best = np.inf
        for k in range(3):
            z = w[0, k]
            v = math.sqrt(z.real * z.real + z.imag * z.imag)
            if v < best:
                best = v
                i3 = k
        perm[0] = 1 if i3 == 0 else 0
        perm[1] = 1 if i3 == 2 else 2
        perm[2] = i3
        for k in range(3):
            nm[k] = s[perm[k]]
            for i in range(3):
                t[i, k] = w[i, perm[k]]
        finite = finite and math.isfinite(nm[0]) and math.isfinite(nm[1]) and math.isfinite(nm[2])
        s12sq, s13sq, s23sq, delta, j = angles_row(t)
        a1, a2 = majorana_nufit_row(t, delta)
        out[r, _PMNS] = math.asin(math.sqrt(s12sq)) * _DEG
        out[r, _PMNS + 1] = math.asin(math.sqrt(s13sq)) * _DEG
        out[r, _PMNS + 2] = math.asin(math.sqrt(s23sq)) * _DEG
        out[r, _PMNS + 3] = delta * _DEG
        out[r, _PMNS + 4] = a1 * _DEG
        out[r, _PMNS + 5] = a2 * _DEG
        out[r, _PMNS + 6] = j
        m1, m2, m3 = nm[0], nm[1], nm[2]
        is_no = m3 > m2
        is_io = m3 < m1
        out[r, _NU], out[r, _NU + 1], out[r, _NU + 2] = m1, m2, m3
        out[r, _NU + 3] = m2 * m2 - m1 * m1
        out[r, _NU + 4] = m3 * m3 - m1 * m1 if is_no else m3 * m3 - m2 * m2
        out[r, _NU + 5] = min(m1, m2, m3)  # m1 (NO), m3 (IO), m1 for a mixed spectrum (m1 < m3 < m2)
        mee = t[0, 0] * t[0, 0] * m1 + t[0, 1] * t[0, 1] * m2 + t[0, 2] * t[0, 2] * m3
        out[r, _NU + 6] = abs(mee)
        out[r, _NU + 7] = m1 + m2 + m3
        code[r] = 0 if is_no else (1 if is_io else 2)
        if not finite:
            for k in range(out.shape[1]):
                out[r, k] = np.nan
            code[r] = 2


def evaluate(x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, exponents)`` for contiguous float64 ``x`` (N, 64); ``columns`` holds
    :data:`COLUMNS` and ``ordering`` (``"NO"``, ``"IO"``, ``"none"``)."""
    n = x.shape[0]
    out = np.empty((n, len(COLUMNS)))
    code = np.empty(n, dtype=np.int8)
    expo = np.empty((n, 45), dtype=np.int64)
    evaluate_rows(np.ascontiguousarray(x, dtype=np.float64), out, code, expo)
    columns = dict(zip(COLUMNS, out.T))
    columns["ordering"] = ORDERINGS[code]
    return columns, expo
