"""Two-flavon Froggatt-Nielsen model of the FN paper (its eqs. 13-35, 43 and tables 1-3).

Parameters (64 columns, :data:`PARAMETERS`, in this order):

* 18 integer U(1)_FN charges ``q_Q1..3 q_u1..3 q_d1..3 q_L1..3 q_e1..3 q_N1..3``;
* real Wilson coefficients ``c_u_{i}{j} c_d_{i}{j} c_nu_{i}{j} c_e_{i}{j}`` (4 x 9) and the
  symmetric ``c_N`` given by its upper triangle ``c_N_11 c_N_12 c_N_13 c_N_22 c_N_23 c_N_33``;
  order one: ``0.3 <= |c| <= 3``, either sign;
* ``eps_u_abs``, ``eps_d_abs``, ``alpha`` [rad]: flavon vevs ``eps_u = |eps_u| e^{i alpha}``,
  ``eps_d = |eps_d|`` (in units of the cut-off);
* ``log10_lambda_gev``: the cut-off Lambda [GeV] that sets the heavy-neutrino scale (eq. 18).

Conventions (flavon charges +1)::

    n^u_ij = Q(Q_i) - Q(u_j) + Q(H)      n^d_ij = Q(Q_i) - Q(d_j) - Q(H)
    n^nu_ij = Q(L_i) - Q(N_j) + Q(H)     n^e_ij = Q(L_i) - Q(e_j) - Q(H)
    n^N_ij = -(Q(N_i) + Q(N_j))          Q(H) = Q(u_3) - Q(Q_3)  so that n^u_33 = 0

    Y^u = eps_u^{n^u} c^u,  Y^d = eps_d^{n^d} c^d,  Y^nu = eps_u^{n^nu} c^nu,  Y^e = eps_d^{n^e} c^e
    M^N = eps_u^{n^N} c^N Lambda                                                          (eq. 18)
    m^X = Y^X v/sqrt(2), v = 246.22 GeV;   M_nu = -m_D (M^N)^{-1} m_D^T                    (eq. 21)

Negative exponents are evaluated as written (``eps^n`` with ``n < 0``); they are counted by
``n_negative_exponents`` and forbidden by its loss.  Charged fermions: ``m^X = U^X diag V^X^dagger``
(eq. 22, :func:`.linalg.svd_left`, masses ascending); ``CKM = U^u^dagger U^d`` (eq. 28).
Neutrinos: ``M_nu^e = U^e^dagger M_nu U^e^*`` (eq. 35) is Takagi-factorised,
``W^dagger M_nu^e W^* = diag`` (eq. 27), so ``PMNS = W`` (eq. 29) with columns labelled by the
NuFit rule: nu_3 is the state with the smallest |U_e i|, nu_1 and nu_2 the other two with
m1 < m2; ``NO`` if m3 > m2, ``IO`` if m3 < m1 (otherwise ``"none"``: m1 < m3 < m2, never valid).
``dm3l = dm31`` for NO and ``dm32`` otherwise.  Angles in degrees, ``pmns_delta`` in [0, 360);
Majorana phases ``pmns_alpha1``, ``pmns_alpha2`` in the convention of eqs. 33-34 (degrees, in
[0, 180): a Takagi column is fixed only up to a sign).  ``ckm_delta`` [rad] in [0, 2 pi).
Neutrino masses ``nu_m1 nu_m2 nu_m3``, ``m_lightest`` and ``m_ee = |sum_i U_ei^2 m_i|`` (eq. 43) in eV.

Objectives (:func:`objective_names`), each a CC-type loss ``C(O, L, U)`` (eq. 36) in the unit
of its observable: the four CKM quantities and the four PMNS quantities in their 3 sigma windows;
``dm21`` and ``dm3l`` (window of the predicted ordering); the charged masses as relative
deviations ``C(m/m_0, 1 - tol, 1 + tol)``, grouped into six objectives -- the quarks **by
generation** (``mass_q1 = C_u + C_d``, ``mass_q2 = C_c + C_s``, ``mass_q3 = C_t + C_b``) and
each charged lepton alone (``mass_e``, ``mass_mu``, ``mass_tau``) -- and ``n_negative`` =
``C(n_negative_exponents, 0, 0)``: 17 in all.  ``force_io`` adds ``io = C(m1/m3, 1, inf)``;
``max_exponent=M`` adds ``max_exponent = C(max n_ij, 0, M)``.  A model is valid when every
loss is zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from numba import njit

from . import fn_kernel, linalg, mixing
from .data import DataSet, load
from .losses import cc_loss
from .params import to_matrix

V_HIGGS_GEV = fn_kernel.V_HIGGS_GEV
GEV_TO_EV = fn_kernel.GEV_TO_EV
SECTORS = ("u", "d", "nu", "e")
CHARGES: tuple[str, ...] = tuple(f"q_{f}{i}" for f in ("Q", "u", "d", "L", "e", "N") for i in (1, 2, 3))
WILSON: tuple[str, ...] = tuple(
    f"c_{s}_{i}{j}" for s in SECTORS for i in (1, 2, 3) for j in (1, 2, 3)
) + tuple(f"c_N_{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3) if i <= j)
PARAMETERS: tuple[str, ...] = CHARGES + WILSON + ("eps_u_abs", "eps_d_abs", "alpha", "log10_lambda_gev")
EXPONENTS: tuple[str, ...] = tuple(f"n_{s}_{i}{j}" for s in ("u", "d", "nu", "e", "N") for i in (1, 2, 3) for j in (1, 2, 3))
MASSES: tuple[str, ...] = fn_kernel.MASSES  # m_u m_c m_t m_d m_s m_b m_e m_mu m_tau
WINDOW_OBJECTIVES: tuple[str, ...] = (
    "ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta",
    "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta",
    "dm21",
)
MASS_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "mass_q1": ("m_u", "m_d"),
    "mass_q2": ("m_c", "m_s"),
    "mass_q3": ("m_t", "m_b"),
    "mass_e": ("m_e",),
    "mass_mu": ("m_mu",),
    "mass_tau": ("m_tau",),
}
OBJECTIVES: tuple[str, ...] = WINDOW_OBJECTIVES + ("dm3l",) + tuple(MASS_OBJECTIVES) + ("n_negative",)
_MASS_INDEX = {m: k for k, m in enumerate(MASSES)}
#: The sector each continuous parameter feeds (eqs. 13-21): ``Y^u``, ``Y^d`` hold ``c_u``, ``c_d``;
#: ``Y^nu``, ``Y^e``, ``M^N`` hold ``c_nu``, ``c_e``, ``c_N`` and Lambda; the flavon vevs enter both.
PARAMETER_SECTORS: dict[str, str] = {
    **{c: "quark" for c in WILSON if c.startswith(("c_u_", "c_d_"))},
    **{c: "lepton" for c in WILSON if c.startswith(("c_nu_", "c_e_", "c_N_"))},
    "eps_u_abs": "both", "eps_d_abs": "both", "alpha": "both", "log10_lambda_gev": "lepton",
}
#: The sector of each observable of :func:`evaluate`: a quark observable depends on the quark and
#: "both" parameters only, a lepton observable on the lepton and "both" ones only -- except that a
#: row with a non-finite or exactly degenerate spectrum is NaN in both sectors (tested in
#: tests/test_physics_fn.py).  The refinement's Jacobian uses it to probe a quark and a lepton
#: coefficient with one evaluation.
OBSERVABLE_SECTORS: dict[str, str] = {
    **{m: "quark" for m in MASSES[:6]}, **{m: "lepton" for m in MASSES[6:]},
    **{n: "quark" for n in ("ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta", "j_ckm")},
    **{n: "lepton" for n in ("pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "pmns_alpha1",
                             "pmns_alpha2", "j_pmns", "nu_m1", "nu_m2", "nu_m3", "dm21", "dm3l", "m_lightest",
                             "m_ee", "m_sum")},
}
DEFAULT_DATA = "nufit-6.0+pdg-2024"
#: Relative window of the charged-fermion masses, ``|m/m_0 - 1| <= tolerance`` (FN paper).
DEFAULT_MASS_TOLERANCE = 0.2
REQUIRED_DATA = WINDOW_OBJECTIVES + ("dm3l",) + MASSES

# Index of the upper-triangle c_N column for every (i, j) of the symmetric 3x3 matrix.
_CN_INDEX = fn_kernel.CN_FLAT.reshape(3, 3)  # [[0, 1, 2], [1, 3, 4], [2, 4, 5]]
_OFFSET = {name: k for k, name in enumerate(PARAMETERS)}

_DOMAINS = {name: (lambda v: (np.abs(v) >= 0.3) & (np.abs(v) <= 3.0), "0.3 <= |c| <= 3") for name in WILSON}
_DOMAINS["eps_u_abs"] = (lambda v: (v > 0) & (v < 1), "0 < |eps_u| < 1")
_DOMAINS["eps_d_abs"] = (lambda v: (v > 0) & (v < 1), "0 < |eps_d| < 1")


# The search box of the FN paper (sec. III.4); Lambda is left open by the paper.
MAX_CHARGE = 9
WILSON_RANGE = (0.3, 3.0)
REGIMES = {"up": ((0.1, 0.3), (0.03, 0.07)), "down": ((0.03, 0.07), (0.1, 0.3))}  # |eps_u|, |eps_d|
# The one searched range of log10(Lambda / GeV) (ours: the paper prints none).  Light neutrino
# masses scale as v^2 eps_u^n / Lambda with a Weinberg exponent n of a few units, so eight decades
# cover m_nu ~ 0.05 eV for every n the charges reach with order-one coefficients.  The scan
# (methods.ga.problem), `--log10-lambda` and random_parameters all use this constant.
LOG10_LAMBDA_RANGE: tuple[float, float] = (8.0, 16.0)


def random_parameters(
    n: int,
    rng: np.random.Generator,
    *,
    regime: str = "up",
    max_charge: int = MAX_CHARGE,
    log10_lambda_range: tuple[float, float] = LOG10_LAMBDA_RANGE,
) -> np.ndarray:
    """``n`` uniform draws from the paper's search box (charges uniform integers in
    ``[-max_charge, max_charge]``, ``|c|`` uniform in [0.3, 3] with a random sign, the regime's
    vev ranges, ``alpha`` uniform in [0, 2 pi), log10 Lambda uniform in its range)."""
    (eu_lo, eu_hi), (ed_lo, ed_hi) = REGIMES[regime]
    x = np.empty((n, len(PARAMETERS)))
    x[:, :18] = rng.integers(-max_charge, max_charge + 1, size=(n, 18))
    nw = len(WILSON)
    x[:, 18:18 + nw] = rng.uniform(*WILSON_RANGE, size=(n, nw)) * rng.choice([-1.0, 1.0], size=(n, nw))
    x[:, _OFFSET["eps_u_abs"]] = rng.uniform(eu_lo, eu_hi, n)
    x[:, _OFFSET["eps_d_abs"]] = rng.uniform(ed_lo, ed_hi, n)
    x[:, _OFFSET["alpha"]] = rng.uniform(0.0, 2.0 * np.pi, n)
    x[:, _OFFSET["log10_lambda_gev"]] = rng.uniform(*log10_lambda_range, n)
    return x


def objective_names(force_io: bool = False, max_exponent: int | None = None) -> list[str]:
    """Names of the objectives (``loss_<name>`` columns of :func:`evaluate`), in order."""
    names = list(OBJECTIVES)
    if force_io:
        names.append("io")
    if max_exponent is not None:
        names.append("max_exponent")
    return names


def from_columns(columns: Mapping[str, object]) -> np.ndarray:
    """Validated (N, 64) parameter matrix from named columns (raises ``ParameterError``)."""
    return to_matrix(columns, PARAMETERS, integer=CHARGES, domains=_DOMAINS)


def exponents(charges: np.ndarray) -> np.ndarray:
    """The 45 FN exponents (N, 45), ordered as :data:`EXPONENTS` (u, d, nu, e, N; row-major)."""
    q = np.asarray(charges, dtype=np.int64)
    qq, qu, qd, ql, qe, qn = (q[:, 3 * k:3 * k + 3] for k in range(6))
    qh = qu[:, 2] - qq[:, 2]
    h = qh[:, None, None]
    n_u = qq[:, :, None] - qu[:, None, :] + h
    n_d = qq[:, :, None] - qd[:, None, :] - h
    n_nu = ql[:, :, None] - qn[:, None, :] + h
    n_e = ql[:, :, None] - qe[:, None, :] - h
    n_n = -(qn[:, :, None] + qn[:, None, :])
    return np.concatenate([a.reshape(-1, 9) for a in (n_u, n_d, n_nu, n_e, n_n)], axis=1)


def light_textures(charges: np.ndarray) -> np.ndarray:
    """The light texture of each charge assignment, ``(N, 36)`` int16: the exponents ``n_u`` (9),
    ``n_d`` (9), ``n_e`` (9) and the Weinberg exponents ``n^W_ij = n^nu_i1 + n^nu_j1 - n^N_11``
    (9, row-major), i.e. everything the light spectrum depends on.  The heavy-neutrino charges
    cancel from ``M_nu = -m_D M_N^-1 m_D^T`` (``n^W_ij = q_Li + q_Lj + 2 Q(H)``), and a common
    shift of ``Q u d`` or of ``L e N`` leaves every exponent unchanged, so two assignments with
    the same light texture are the same light physics.  Rows compare as ``row.tobytes()``; the
    polars twin for stored models is ``storage.dedupe._texture_exprs``.

    >>> q = np.zeros((2, 18), dtype=np.int64); q[1, 15:] = 4  # differ only in the N charges
    >>> bool((light_textures(q)[0] == light_textures(q)[1]).all())
    True
    """
    e = exponents(charges)
    nu, nn = e[:, 18:27].reshape(-1, 3, 3), e[:, 36:45].reshape(-1, 3, 3)
    w = nu[:, :, 0][:, :, None] + nu[:, :, 0][:, None, :] - nn[:, 0, 0][:, None, None]
    return np.concatenate([e[:, :18], e[:, 27:36], w.reshape(-1, 9)], axis=1).astype(np.int16)


def _power(abs_eps: np.ndarray, phase: np.ndarray | None, n: np.ndarray) -> np.ndarray:
    """``eps^n`` for integer n (N, 9), eps = abs_eps e^{i phase}."""
    mag = abs_eps[:, None] ** n.astype(np.float64)
    if phase is None:
        return mag.astype(np.complex128)
    return mag * np.exp(1j * n * phase[:, None])


def mass_matrices(x: np.ndarray, backend: str = "numba") -> dict[str, np.ndarray]:
    """Dirac mass matrices ``m_u m_d m_e`` [GeV] and ``M_nu`` [eV], shape (N, 3, 3), and the exponents.

    ``backend="numba"`` builds all of them in one compiled pass (powers of eps by recurrence,
    ``(M^N)^{-1}`` by its adjugate); ``backend="lapack"`` is the plain numpy construction with
    ``numpy.linalg.inv``, kept as the independent reference.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(PARAMETERS):
        raise ValueError(f"expected parameter rows of shape (N, {len(PARAMETERS)}); got {x.shape}")
    if backend == "numba":
        n = x.shape[0]
        m_u, m_d, m_e, m_nu = (np.empty((n, 3, 3), np.complex128) for _ in range(4))
        expo = np.empty((n, 45), np.int64)
        _matrices_kernel(x, m_u, m_d, m_e, m_nu, expo)
        return {"m_u": m_u, "m_d": m_d, "m_e": m_e, "M_nu": m_nu, "exponents": expo}
    too_large = ~(np.abs(x[:, :18]) <= fn_kernel.MAX_ABS_CHARGE).all(axis=1)  # NaN rows, as the kernel
    charges = np.rint(np.where(too_large[:, None], 0.0, x[:, :18])).astype(np.int64)
    n = exponents(charges)
    eu, ed, alpha = x[:, _OFFSET["eps_u_abs"]], x[:, _OFFSET["eps_d_abs"]], x[:, _OFFSET["alpha"]]
    lam = 10.0 ** x[:, _OFFSET["log10_lambda_gev"]]
    c0 = _OFFSET["c_u_11"]
    dirac = V_HIGGS_GEV / np.sqrt(2.0)
    out = {}
    for k, (name, abs_eps, phase) in enumerate(
        (("m_u", eu, alpha), ("m_d", ed, None), ("m_D", eu, alpha), ("m_e", ed, None))
    ):
        c = x[:, c0 + 9 * k:c0 + 9 * k + 9]
        out[name] = (dirac * _power(abs_eps, phase, n[:, 9 * k:9 * k + 9]) * c).reshape(-1, 3, 3)
    cn = x[:, _OFFSET["c_N_11"]:_OFFSET["c_N_11"] + 6][:, _CN_INDEX.ravel()]
    m_n = (_power(eu, alpha, n[:, 36:45]) * cn * lam[:, None]).reshape(-1, 3, 3)
    md = out.pop("m_D")
    with np.errstate(all="ignore"):
        singular = ~np.isfinite(m_n).all(axis=(1, 2))
        safe = np.where(singular[:, None, None], np.eye(3), m_n)
        try:
            inv = np.linalg.inv(safe)
        except np.linalg.LinAlgError:  # exactly singular rows: invert one by one, NaN for those
            inv = np.empty_like(safe)
            for k, mat in enumerate(safe):
                try:
                    inv[k] = np.linalg.inv(mat)
                except np.linalg.LinAlgError:
                    inv[k], singular[k] = np.nan, True
        mnu = -md @ inv @ md.transpose(0, 2, 1)
    mnu[singular] = np.nan
    out["M_nu"] = 0.5 * (mnu + mnu.transpose(0, 2, 1)) * GEV_TO_EV
    for name in ("m_u", "m_d", "m_e", "M_nu"):
        out[name][too_large] = np.nan
    out["exponents"] = n
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _matrices_kernel(x, m_u, m_d, m_e, m_nu, expo):  # pragma: no cover - compiled
    scratch = fn_kernel.matrices_scratch()
    for r in range(x.shape[0]):
        fn_kernel.matrices_row(x[r], scratch, m_u[r], m_d[r], m_e[r], m_nu[r], expo[r])


def _nufit_labelling(w: np.ndarray, s: np.ndarray):
    """Permute Takagi columns (ascending masses) into the NuFit nu1, nu2, nu3 labelling."""
    ue = np.abs(w[:, 0, :])
    i3 = np.argmin(np.where(np.isnan(ue), np.inf, ue), axis=1)
    rest = np.array([[1, 2], [0, 2], [0, 1]])[i3]  # ascending masses -> (nu1, nu2)
    perm = np.concatenate([rest, i3[:, None]], axis=1)
    idx = np.arange(w.shape[0])[:, None]
    return w[idx[:, :, None], np.arange(3)[None, :, None], perm[:, None, :]][:, :, :], s[idx, perm]


def evaluate(
    x: np.ndarray,
    *,
    data: DataSet | None = None,
    mass_tolerance: float = DEFAULT_MASS_TOLERANCE,
    force_io: bool = False,
    max_exponent: int | None = None,
    backend: str = "numba",
) -> dict[str, np.ndarray]:
    """Observables, ``loss_*`` for every objective, ``n_satisfied`` and ``valid`` for each row."""
    data = data if data is not None else load(DEFAULT_DATA)
    lookups = _loss_data(data)  # require_data, once per data set
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(PARAMETERS):
        raise ValueError(f"expected parameter rows of shape (N, {len(PARAMETERS)}); got {x.shape}")
    if backend == "numba":
        out, n = fn_kernel.evaluate(x)
    else:
        with np.errstate(all="ignore"):  # a row that overflows becomes NaN and invalid below
            out, n = _observables_numpy(x, backend)
    for k, name in enumerate(EXPONENTS):
        out[name] = n[:, k]
    out["n_negative_exponents"] = (n < 0).sum(axis=1)
    out["max_exponent"] = n.max(axis=1)
    in_range = (np.abs(x[:, :18]) <= fn_kernel.MAX_ABS_CHARGE).all(axis=1)  # else NaN rows, exponents 0
    out["q_H"] = np.where(in_range, np.rint(np.where(in_range, x[:, _OFFSET["q_u3"]] - x[:, _OFFSET["q_Q3"]], 0.0)),
                          0).astype(np.int64)

    _losses(out, lookups, mass_tolerance, force_io, max_exponent)
    names = objective_names(force_io, max_exponent)
    losses = np.stack([out[f"loss_{k}"] for k in names], axis=1)
    out["n_satisfied"] = (losses == 0.0).sum(axis=1)
    out["valid"] = (out["n_satisfied"] == len(names)) & np.isfinite(out["m_u"])  # non-finite rows are all NaN
    return out


def _observables_numpy(x: np.ndarray, backend: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The observables of :data:`fn_kernel.COLUMNS` and ``ordering`` by batched numpy + ``backend``
    decompositions (the reference of the fused kernel), and the exponents."""
    mats = mass_matrices(x, backend)
    out: dict[str, np.ndarray] = {}
    u_u, s_u = linalg.svd_left(mats["m_u"], backend)
    u_d, s_d = linalg.svd_left(mats["m_d"], backend)
    u_e, s_e = linalg.svd_left(mats["m_e"], backend)
    # an exactly degenerate charged spectrum leaves its U, hence CKM/PMNS, undefined (as the kernel)
    undefined = linalg.degenerate(s_u) | linalg.degenerate(s_d) | linalg.degenerate(s_e)
    for k, name in enumerate(MASSES):
        out[name] = (s_u, s_d, s_e)[k // 3][:, k % 3]
    ckm = linalg.adjoint_product(u_u, u_d, backend)
    a = mixing.angles(ckm)
    out["ckm_s12"] = np.sin(a["theta12"])
    out["ckm_s23"] = np.sin(a["theta23"])
    out["ckm_s13"] = np.sin(a["theta13"])
    out["ckm_delta"] = a["delta"]
    out["j_ckm"] = a["j"]

    mnu_e = linalg.congruence(u_e, mats["M_nu"], backend)
    w, s = linalg.takagi(mnu_e, backend)
    pmns, m = _nufit_labelling(w, s)
    p = mixing.angles(pmns)
    deg = 180.0 / np.pi
    out["pmns_theta12"] = p["theta12"] * deg
    out["pmns_theta13"] = p["theta13"] * deg
    out["pmns_theta23"] = p["theta23"] * deg
    out["pmns_delta"] = p["delta"] * deg
    a1, a2 = mixing.majorana_phases(pmns, p["delta"], "nufit")
    out["pmns_alpha1"], out["pmns_alpha2"] = a1 * deg, a2 * deg
    out["j_pmns"] = p["j"]
    out["nu_m1"], out["nu_m2"], out["nu_m3"] = m[:, 0], m[:, 1], m[:, 2]
    msq = m * m
    out["dm21"] = msq[:, 1] - msq[:, 0]
    is_no = m[:, 2] > m[:, 1]
    is_io = m[:, 2] < m[:, 0]
    out["dm3l"] = np.where(is_no, msq[:, 2] - msq[:, 0], msq[:, 2] - msq[:, 1])
    out["ordering"] = np.where(is_no, "NO", np.where(is_io, "IO", "none"))
    out["m_lightest"] = m.min(axis=1)  # m1 (NO), m3 (IO), m1 for a mixed spectrum (m1 < m3 < m2)
    out["m_ee"] = np.abs(np.sum(pmns[:, 0, :] ** 2 * m, axis=1))
    out["m_sum"] = m.sum(axis=1)
    finite = np.isfinite(np.stack([out[k] for k in MASSES] + [m[:, 0], m[:, 1], m[:, 2]], axis=1)).all(axis=1)
    finite &= ~undefined
    for k in list(out):
        if out[k].dtype.kind == "f":
            out[k] = np.where(finite, out[k], np.nan)
    out["ordering"] = np.where(finite, out["ordering"], "none")
    return out, mats["exponents"]


def require_data(data: DataSet) -> None:
    """Raise :class:`~.data.DataError` (one line) unless ``data`` holds what the objectives need:
    :data:`REQUIRED_DATA` for both orderings, 3 sigma windows of the window objectives and
    ``dm3l``, and positive central charged-fermion masses (the mass losses divide by them)."""
    data.require(REQUIRED_DATA, windows=WINDOW_OBJECTIVES + ("dm3l",), positive=MASSES)


class _LossData(NamedTuple):
    """What the losses read from a data set, looked up once: the 3 sigma windows of
    :data:`WINDOW_OBJECTIVES` (NO), of ``dm3l`` per ordering, the central charged masses; and
    the same as arrays in the order of :data:`WINDOW_OBJECTIVES` and :data:`MASSES`, so that
    the losses of a batch are a few array operations (the same operations per element)."""

    windows: dict[str, tuple[float, float]]
    dm3l: dict[str, tuple[float, float]]
    central: dict[str, float]
    window_lo: np.ndarray
    window_hi: np.ndarray
    central_row: np.ndarray


_LOSS_DATA: dict[int, tuple[DataSet, _LossData]] = {}  # id -> (the data set itself, its lookups)


def _loss_data(data: DataSet) -> _LossData:
    """:func:`require_data` and the lookups of the losses, once per data set object (a data set is
    frozen; the entry keeps it alive, so its id is not reused while cached)."""
    hit = _LOSS_DATA.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    require_data(data)
    windows = {n: data.window(n, "NO") for n in WINDOW_OBJECTIVES}
    central = {m: data.get(m).central for m in MASSES}
    got = _LossData(windows, {o: data.window("dm3l", o) for o in ("NO", "IO")}, central,
                    np.array([windows[n][0] for n in WINDOW_OBJECTIVES], dtype=np.float64),
                    np.array([windows[n][1] for n in WINDOW_OBJECTIVES], dtype=np.float64),
                    np.array([central[m] for m in MASSES], dtype=np.float64))
    if len(_LOSS_DATA) >= 16:
        _LOSS_DATA.clear()
    _LOSS_DATA[id(data)] = (data, got)
    return got


def _losses(out, data: _LossData, tol: float, force_io: bool, max_exponent: int | None) -> None:
    """The ``loss_*`` columns of ``out`` (every window and mass at once: one ``(N, k)`` array
    per kind, each loss a column of it)."""
    windows = cc_loss(np.stack([out[n] for n in WINDOW_OBJECTIVES], axis=1), data.window_lo, data.window_hi)
    for k, name in enumerate(WINDOW_OBJECTIVES):
        out[f"loss_{name}"] = windows[:, k]
    lo_no, hi_no = data.dm3l["NO"]
    lo_io, hi_io = data.dm3l["IO"]
    is_no = out["ordering"] == "NO"
    out["loss_dm3l"] = np.where(is_no, cc_loss(out["dm3l"], lo_no, hi_no), cc_loss(out["dm3l"], lo_io, hi_io))
    masses = cc_loss(np.stack([out[m] for m in MASSES], axis=1) / data.central_row, 1.0 - tol, 1.0 + tol)
    for name, members in MASS_OBJECTIVES.items():
        total = masses[:, _MASS_INDEX[members[0]]]
        for m in members[1:]:  # in the members' order, as the scalar sum was
            total = total + masses[:, _MASS_INDEX[m]]
        out[f"loss_{name}"] = total
    out["loss_n_negative"] = out["n_negative_exponents"].astype(np.float64)
    if force_io:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["loss_io"] = cc_loss(out["nu_m1"] / out["nu_m3"], 1.0, np.inf)
    if max_exponent is not None:
        out["loss_max_exponent"] = cc_loss(out["max_exponent"].astype(np.float64), 0.0, float(max_exponent))
