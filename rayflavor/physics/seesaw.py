"""Type-I seesaw model of the diffusion paper (its eqs. 2.1-2.10, 2.15-2.18, 2.22).

Parameters (23 columns, :data:`PARAMETERS`, in this order):

* ``y_re_{i}{a}``, ``y_im_{i}{a}``: the Yukawa matrix ``Y[i, a]``, ``i`` = heavy neutrino N_i
  (1, 2, 3), ``a`` = lepton flavour (e, mu, tau), in the basis where the charged-lepton Yukawa
  and ``M = diag(M1, M2, M3)`` are diagonal;
* ``m1_over_m3 = |M1|/M3``, ``m2_over_m3 = |M2|/M3`` (M3 real and positive);
* ``log10_h2_over_m3_ev = log10(<H>^2 / M3 [eV])``;
* ``arg_m1``, ``arg_m2``: phases of M1, M2 [rad].

Light-neutrino mass matrix [eV] (eq. 2.2 written with the ratios above)::

    m_nu = (<H>^2/M3) * Y^T diag(M3/M1, M3/M2, 1) Y,   M_k = |M_k| e^{i arg M_k}

It is diagonalised exactly as eq. 2.3, ``U^T m_nu U = diag(m1, m2, m3)`` with ``m_k >= 0``
(``U = W^*`` for the Takagi factor ``W`` of :mod:`.linalg`).  The mass states are labelled

* ``ordering="NO"``: ``m1 < m2 < m3``;  ``dm3l = dm31``;
* ``ordering="IO"``: ``m3 < m1 < m2``;  ``dm3l = dm32`` (< 0).

Angles follow eq. 2.5, ``delta_cp``, ``alpha21``, ``alpha31`` the parametrisation of eq. 2.4
(:mod:`.mixing`, convention ``"half"``), all in [0, 2 pi).

Labels (eq. 2.16, :data:`LABELS`): ``label_log10_dm21 = log10(dm21/eV^2)``,
``label_log10_dm3l = log10(|dm3l|/eV^2)`` (= log10 dm31 of the paper for NO) and the nine
``abs_u_{r}{c}``.  ``chi2`` is eq. 2.22 over the physical label quantities (dm21, dm3l, the nine
|U|) with the asymmetric 1 sigma errors of the data file; ``chi2_mass`` and ``chi2_mixing``
are its two parts (the transfer-learning conditions of sec. 2.2.3), ``chi2_osc`` the 5-term chi2
over (dm21, dm3l, sin^2 theta12, sin^2 theta23, sin^2 theta13) used to colour the paper's figures.
``solution`` (the paper's definition of a solution): every label within its 3 sigma range.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import linalg, mixing, seesaw_kernel
from .data import DataSet, load
from .losses import chi2_term, in_window
from .params import to_matrix

FLAVOURS = ("e", "mu", "tau")
PARAMETERS: tuple[str, ...] = (
    tuple(f"y_re_{i}{a}" for i in (1, 2, 3) for a in FLAVOURS)
    + tuple(f"y_im_{i}{a}" for i in (1, 2, 3) for a in FLAVOURS)
    + ("m1_over_m3", "m2_over_m3", "log10_h2_over_m3_ev", "arg_m1", "arg_m2")
)
ABS_U: tuple[str, ...] = seesaw_kernel.ABS_U  # abs_u_{r}{c}, r in e, mu, tau; c in 1, 2, 3
LABELS: tuple[str, ...] = ("label_log10_dm21", "label_log10_dm3l") + ABS_U
#: The observables whose 3 sigma windows define a solution (the labels, Delta m^2 unlogged).
SOLUTION_TERMS: tuple[str, ...] = seesaw_kernel.CHI2_TERMS[:11]
OBSERVABLES: tuple[str, ...] = (
    ("m1", "m2", "m3", "dm21", "dm31", "dm32", "dm3l")
    + ABS_U
    + ("sin2_theta12", "sin2_theta13", "sin2_theta23", "delta_cp", "alpha21", "alpha31")
    + ("j_cp", "i1", "i2", "m_bb", "m_beta", "m_sum")
    + LABELS[:2]
    + ("chi2", "chi2_mass", "chi2_mixing", "chi2_osc", "solution", "valid")
)
DEFAULT_DATA = "nufit-6.0-sk"

# Prior of the training data (eqs. 2.17-2.18).
PRIOR = {
    "y": (-1.0, 1.0),
    "mass_ratio": (1e-5, 1.0),
    "log10_h2_over_m3_ev": (-1.22, 2.78),
    "arg": (-np.pi, np.pi),
}

_DOMAINS = {
    "m1_over_m3": (lambda v: v > 0, "> 0"),
    "m2_over_m3": (lambda v: v > 0, "> 0"),
}


def from_columns(columns: Mapping[str, object]) -> np.ndarray:
    """Validated (N, 23) parameter matrix from named columns (raises ``ParameterError``)."""
    return to_matrix(columns, PARAMETERS, domains=_DOMAINS)


def sample_prior(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points from the paper's prior (eqs. 2.17-2.18), uniform in every component.

    ``|M1| <= |M2|`` is imposed by ordering each drawn pair of ratios, i.e. the uniform
    distribution on ``{r1 <= r2}``.
    """
    x = np.empty((n, len(PARAMETERS)))
    x[:, :18] = rng.uniform(*PRIOR["y"], size=(n, 18))
    r = np.sort(rng.uniform(*PRIOR["mass_ratio"], size=(n, 2)), axis=1)
    x[:, 18:20] = r
    x[:, 20] = rng.uniform(*PRIOR["log10_h2_over_m3_ev"], size=n)
    x[:, 21:23] = rng.uniform(*PRIOR["arg"], size=(n, 2))
    return x


def prior_box() -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi), each (23,): the box of the prior (eqs. 2.17-2.18) in :data:`PARAMETERS` order."""
    lo = np.array([PRIOR["y"][0]] * 18 + [PRIOR["mass_ratio"][0]] * 2 + [PRIOR["log10_h2_over_m3_ev"][0]]
                  + [PRIOR["arg"][0]] * 2)
    hi = np.array([PRIOR["y"][1]] * 18 + [PRIOR["mass_ratio"][1]] * 2 + [PRIOR["log10_h2_over_m3_ev"][1]]
                  + [PRIOR["arg"][1]] * 2)
    return lo, hi


def canonical_order(x: np.ndarray) -> np.ndarray:
    """The same physical points with ``|M1| <= |M2|``, the prior's convention (a new array).

    Exchanging the labels of the heavy neutrinos N1 and N2 -- rows 1 and 2 of ``Y``, ``|M1|/M3``
    with ``|M2|/M3`` and ``arg M1`` with ``arg M2`` -- leaves ``m_nu`` (eq. 2.2) and so every
    observable unchanged. A sampler that is not bound to the prior's ordering (a network, a
    projection) may return points with ``|M1| > |M2|``: outside the prior's support, yet physical
    points of it under the exchange. Rows already ordered are returned unchanged.

    >>> x = np.zeros((1, 23)); x[0, [0, 3, 18, 19, 21, 22]] = [1.0, 2.0, 0.8, 0.5, 0.1, 0.2]
    >>> canonical_order(x)[0, [0, 3, 18, 19, 21, 22]].tolist()
    [2.0, 1.0, 0.5, 0.8, 0.2, 0.1]
    """
    x = np.array(x, dtype=np.float64, copy=True)
    swap = x[:, 18] > x[:, 19]
    pairs = [(a, a + 3) for a in (0, 1, 2, 9, 10, 11)] + [(18, 19), (21, 22)]
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    x[np.ix_(swap, first + second)] = x[np.ix_(swap, second + first)]
    return x


def mass_matrix(x: np.ndarray) -> np.ndarray:
    """Light-neutrino mass matrix ``m_nu`` [eV], shape (N, 3, 3), complex symmetric."""
    x = np.asarray(x, dtype=np.float64)
    y = (x[:, 0:9] + 1j * x[:, 9:18]).reshape(-1, 3, 3)  # Y[i, a]
    inv_m = np.empty((x.shape[0], 3), dtype=np.complex128)  # M3/M_k
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_m[:, 0] = np.exp(-1j * x[:, 21]) / x[:, 18]
        inv_m[:, 1] = np.exp(-1j * x[:, 22]) / x[:, 19]
    inv_m[:, 2] = 1.0
    inv_m *= (10.0 ** x[:, 20])[:, None]
    # (Y^T D Y)_{ab} = sum_i Y_ia D_i Y_ib, written out for the six independent entries
    yd = y * inv_m[:, :, None]
    m = np.empty((x.shape[0], 3, 3), dtype=np.complex128)
    for a in range(3):
        for b in range(a, 3):
            m[:, a, b] = yd[:, 0, a] * y[:, 0, b] + yd[:, 1, a] * y[:, 1, b] + yd[:, 2, a] * y[:, 2, b]
            m[:, b, a] = m[:, a, b]
    return m


def evaluate(
    x: np.ndarray,
    *,
    ordering: str = "NO",
    data: DataSet | None = None,
    backend: str = "numba",
) -> dict[str, np.ndarray]:
    """Every observable, the labels, chi2 and the 3 sigma solution flag of each row of ``x``.

    ``x``: (N, 23) in :data:`PARAMETERS` order.  Rows whose mass matrix is singular or
    degenerate come back with NaN observables and ``solution = valid = False``.
    """
    data = data if data is not None else load(DEFAULT_DATA)
    perm = _PERMS.get(ordering)
    if perm is None:
        raise ValueError(f"ordering must be 'NO' or 'IO', not {ordering!r}")
    require_data(data, ordering)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(PARAMETERS):
        raise ValueError(f"expected parameter rows of shape (N, {len(PARAMETERS)}); got {x.shape}")
    if backend == "numba":
        return _evaluate_fused(x, perm, ordering, data)
    with np.errstate(all="ignore"):  # rows that overflow or are singular become NaN and invalid
        return _evaluate_numpy(x, perm, ordering, data, backend)


def _evaluate_numpy(x: np.ndarray, perm: np.ndarray, ordering: str, data: DataSet, backend: str) -> dict[str, np.ndarray]:
    """``evaluate`` as a batched numpy composition with ``backend`` decompositions (the reference)."""
    w, s = linalg.takagi(mass_matrix(x), backend=backend)
    u, m = np.conj(w[:, :, perm]), s[:, perm]
    out: dict[str, np.ndarray] = {"m1": m[:, 0], "m2": m[:, 1], "m3": m[:, 2]}
    msq = m * m
    out["dm21"] = msq[:, 1] - msq[:, 0]
    out["dm31"] = msq[:, 2] - msq[:, 0]
    out["dm32"] = msq[:, 2] - msq[:, 1]
    out["dm3l"] = out["dm31"] if ordering == "NO" else out["dm32"]
    absu = np.abs(u)
    for k, name in enumerate(ABS_U):
        out[name] = absu[:, k // 3, k % 3]
    ang = mixing.angles(u)
    out["sin2_theta12"] = ang["sin2_theta12"]
    out["sin2_theta13"] = ang["sin2_theta13"]
    out["sin2_theta23"] = ang["sin2_theta23"]
    out["delta_cp"] = ang["delta"]
    out["alpha21"], out["alpha31"] = mixing.majorana_phases(u, ang["delta"], "half")
    out["j_cp"] = ang["j"]
    out["i1"], out["i2"] = mixing.invariants(u, out["delta_cp"], out["alpha21"], out["alpha31"])
    out["m_bb"] = np.abs(np.sum(u[:, 0, :] ** 2 * m, axis=1))  # eq. 2.9 = |sum_i U_ei^2 m_i|
    out["m_beta"] = np.sqrt(np.sum(absu[:, 0, :] ** 2 * msq, axis=1))  # eq. 2.10
    out["m_sum"] = m.sum(axis=1)
    out["label_log10_dm21"] = np.log10(out["dm21"])
    out["label_log10_dm3l"] = np.log10(np.abs(out["dm3l"]))
    _score(out, data, ordering)
    return out


# Takagi column (ascending masses) of m1, m2, m3: IO puts the lightest state last.
_PERMS = {"NO": np.array([0, 1, 2]), "IO": np.array([1, 2, 0])}


def _evaluate_fused(x: np.ndarray, perm: np.ndarray, ordering: str, data: DataSet) -> dict[str, np.ndarray]:
    """``evaluate`` through the compiled one-pass kernel of :mod:`.seesaw_kernel`."""
    terms = np.array([(data.get(n, ordering).central, *data.get(n, ordering).sigmas())
                      for n in seesaw_kernel.CHI2_TERMS], dtype=np.float64)
    table, solution = seesaw_kernel.evaluate(x, perm, ordering == "IO", terms, solution_windows(data, ordering))
    out = dict(zip(seesaw_kernel.COLUMNS, table))
    out["solution"] = solution
    out["valid"] = solution.copy()
    return out


def _score(out: dict[str, np.ndarray], data: DataSet, ordering: str) -> None:
    """Add chi2, chi2_mass, chi2_mixing, chi2_osc, solution and valid to ``out``."""
    def term(name: str) -> np.ndarray:
        o = data.get(name, ordering)
        return chi2_term(out[name], o.central, *o.sigmas())

    def inside(name: str) -> np.ndarray:
        return in_window(out[name], *data.window(name, ordering))

    out["chi2_mass"] = term("dm21") + term("dm3l")
    out["chi2_mixing"] = sum(term(n) for n in ABS_U)
    out["chi2"] = out["chi2_mass"] + out["chi2_mixing"]
    out["chi2_osc"] = out["chi2_mass"] + sum(term(n) for n in ("sin2_theta12", "sin2_theta23", "sin2_theta13"))
    solution = np.ones(len(out["m1"]), dtype=bool)
    for name in SOLUTION_TERMS:
        solution &= inside(name)
    finite = np.isfinite(out["m1"]) & np.isfinite(out["m2"]) & np.isfinite(out["m3"])
    out["solution"] = solution & finite
    out["valid"] = out["solution"].copy()


def require_data(data: DataSet, ordering: str = "NO") -> None:
    """Raise :class:`~.data.DataError` (one line) unless ``data`` holds every chi2 term of
    :data:`seesaw_kernel.CHI2_TERMS` for ``ordering``, each with a 3 sigma window (e.g. the FN data
    set ``nufit-6.0+pdg-2024`` has no |U| entries)."""
    data.require(seesaw_kernel.CHI2_TERMS, (ordering,), windows=seesaw_kernel.CHI2_TERMS)


def solution_windows(data: DataSet, ordering: str = "NO") -> np.ndarray:
    """(11, 2) 3 sigma windows ``(lo, hi)`` of :data:`SOLUTION_TERMS` (a solution lies inside all)."""
    return np.array([data.window(n, ordering) for n in SOLUTION_TERMS], dtype=np.float64)


def labels(result: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, 11) label matrix in :data:`LABELS` order."""
    return np.stack([np.asarray(result[n], dtype=np.float64) for n in LABELS], axis=1)


def target_labels(data: DataSet, ordering: str = "NO") -> np.ndarray:
    """The conditioning labels (eqs. 2.19-2.21 for NO; from the data file for IO), shape (11,)."""
    if ordering not in data.labels:
        raise ValueError(f"data set {data.name!r} has no [labels.{ordering}] section")
    lab = data.labels[ordering]
    return np.concatenate([[np.log10(lab["dm21"]), np.log10(abs(lab["dm3l"]))], np.ravel(lab["abs_u"])])
