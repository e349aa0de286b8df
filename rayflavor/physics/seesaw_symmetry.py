"""Exact symmetries of the seesaw's light-neutrino mass matrix, and a prior-exact move along them.

Coordinates: the 23 columns of :data:`rayflavor.physics.seesaw.PARAMETERS` (``Y[i, a]`` real and
imaginary parts row-major, ``r1 = |M1|/M3``, ``r2 = |M2|/M3``, ``g = log10(<H>^2/M3 [eV])``,
``arg M1``, ``arg M2``). The mass matrix (eq. 2.2, ``seesaw.mass_matrix``)::

    m_nu = 10^g  sum_i  Y[i]^T Y[i] / (r_i e^{i arg M_i}),   r3 = 1, arg M3 = 0,

is unchanged by an 8-parameter group acting on these coordinates (so is every observable
``seesaw.evaluate`` derives from ``m_nu``: masses, |U|, angles, delta_CP, Majorana phases, m_bb,
m_beta, Sigma m; only the heavy masses move):

* **row scalings** ``s = (s1, s2, s3)`` (natural logs): ``Y[i] -> e^{s_i} Y[i]`` and
  ``M_i -> e^{2 s_i} M_i``, i.e. ``r1 -> r1 e^{2(s1 - s3)}``, ``r2 -> r2 e^{2(s2 - s3)}``,
  ``g -> g - 2 s3 / ln 10``;
* **row phases** ``psi1, psi2``: ``Y[i] -> e^{i psi_i} Y[i]``, ``arg M_i -> arg M_i + 2 psi_i``
  (wrapped to [-pi, pi)); row 3 has no phase of its own (M3 is real), its rephasing is a
  product of the others;
* **column phases** ``phi_a`` (a = e, mu, tau): ``Y[:, a] -> e^{i phi_a} Y[:, a]``, the
  rephasing of the charged leptons: ``m_nu -> P m_nu P`` with ``P = diag(e^{i phi})``.

Of the 12 dimensions of the 3 sigma solution set (23 parameters, 11 windows) 8 are these orbits.
The paper's prior (eqs. 2.17-2.18, uniform in every coordinate on its box, ``r1 <= r2``) fixes how
a point should be spread along its orbit, and :func:`resample_orbits` draws that exactly: a
sequence of one-parameter group moves (Liu & Sabatti 2000, "generalised Gibbs"), each drawing the
group element from ``prior(g . x) |J_g(x)|`` along its orbit:

* a scaling with exponent ``s`` multiplies ``k`` linear coordinates by ``e^{s}`` (a log
  coordinate ``g`` only shifts), so ``|J| = e^{k s}``: ``k = 6 + 2 = 8`` for ``s1`` and ``s2``
  (six Yukawas, one ratio squared), ``k = 6 - 4 = 2`` for ``s3`` (six Yukawas, both ratios
  divided by ``e^{2 s3}``) and ``k = 18`` for the overall scale ``s1 = s2 = s3`` (the ratios do
  not move). Within the box the conditional is a truncated exponential, drawn by inversion;
* a phase is a rotation in (Re, Im) planes plus a shift of a uniform periodic phase, ``|J| = 1``:
  its conditional is uniform on the arcs that keep every Yukawa in the box, drawn by independence
  Metropolis (a uniform proposal is accepted exactly when it stays in the box).

Each move leaves the prior invariant, and since the solution set is a union of orbits, also the
prior restricted to the solution set -- the reference's target. Applied to any sampler's points it
corrects their distribution along the orbits (the heavy masses) without changing whether they are
solutions, and without a single evaluation of the observables.
"""

from __future__ import annotations

import numpy as np

from .seesaw import PRIOR

LN10 = float(np.log(10.0))
_RE = np.arange(9).reshape(3, 3)  # column of Re Y[i, a]
_IM = _RE + 9
_R1, _R2, _G, _ARG1, _ARG2 = 18, 19, 20, 21, 22
#: Jacobian exponents of the scalings (module docstring).
K_ROW = (8.0, 8.0, 2.0)
K_OVERALL = 18.0
#: Uniform proposals per phase and sweep.
PHASE_TRIES = 4
DEFAULT_SWEEPS = 10


def rescale_rows(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The points ``x`` (N, 23) under row scalings ``s`` (N, 3) [natural log]; a new array.

    >>> from rayflavor.physics import seesaw
    >>> x = seesaw.sample_prior(3, np.random.default_rng(0))
    >>> y = rescale_rows(x, np.full((3, 3), -0.1))
    >>> bool(np.allclose(seesaw.mass_matrix(y), seesaw.mass_matrix(x)))
    True
    """
    x = np.array(x, dtype=np.float64, copy=True)
    s = np.asarray(s, dtype=np.float64)
    for i in range(3):
        f = np.exp(s[:, i])[:, None]
        x[:, _RE[i]] *= f
        x[:, _IM[i]] *= f
    x[:, _R1] *= np.exp(2 * (s[:, 0] - s[:, 2]))
    x[:, _R2] *= np.exp(2 * (s[:, 1] - s[:, 2]))
    x[:, _G] -= 2 * s[:, 2] / LN10
    return x


def _wrap(phase: np.ndarray) -> np.ndarray:
    lo, hi = PRIOR["arg"]
    return lo + np.mod(phase - lo, hi - lo)


def rephase(x: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The points ``x`` (N, 23) under row phases ``rows`` (N, 2) for N1, N2 and column phases
    ``columns`` (N, 3) for e, mu, tau [rad]; a new array."""
    x = np.array(x, dtype=np.float64, copy=True)
    y = x[:, 0:9] + 1j * x[:, 9:18]
    y = y.reshape(-1, 3, 3)
    ph = np.zeros((len(x), 3))
    ph[:, :2] = rows
    y = y * np.exp(1j * ph)[:, :, None] * np.exp(1j * np.asarray(columns, dtype=np.float64))[:, None, :]
    x[:, 0:9], x[:, 9:18] = y.real.reshape(-1, 9), y.imag.reshape(-1, 9)
    x[:, _ARG1] = _wrap(x[:, _ARG1] + 2 * ph[:, 0])
    x[:, _ARG2] = _wrap(x[:, _ARG2] + 2 * ph[:, 1])
    return x


def _truncated_exponential(k: float, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draws from density ``e^{k s}`` on ``[lo, hi]`` (k > 0) by inversion, stable for wide intervals."""
    width = np.maximum(hi - lo, 0.0)
    return hi + np.log(u + (1.0 - u) * np.exp(-k * width)) / k


def _log_room(v: np.ndarray, lo: float, hi: float, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval of ``s`` with ``lo <= v e^{power s} <= hi`` (power != 0, v > 0)."""
    with np.errstate(divide="ignore"):
        a, b = (np.log(lo / v) / power, np.log(hi / v) / power)
    return (a, b) if power > 0 else (b, a)


def _yukawa_room(x: np.ndarray, rows) -> np.ndarray:
    """Largest ``s`` with every Yukawa of ``rows`` scaled by ``e^s`` still in the box."""
    cols = np.concatenate([np.concatenate([_RE[i], _IM[i]]) for i in rows])
    top = np.abs(x[:, cols]).max(axis=1)
    with np.errstate(divide="ignore"):
        return np.log(PRIOR["y"][1] / top)


def _scale_step(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One exact conditional draw of the overall scale, then of s1, s2 and s3 in turn."""
    r_lo, r_hi = PRIOR["mass_ratio"]
    g_lo, g_hi = PRIOR["log10_h2_over_m3_ev"]
    n = len(x)
    # overall: Y -> e^s Y, g -> g - 2 s / ln 10
    hi = np.minimum(_yukawa_room(x, (0, 1, 2)), (x[:, _G] - g_lo) * LN10 / 2)
    lo = (x[:, _G] - g_hi) * LN10 / 2
    s = _truncated_exponential(K_OVERALL, lo, hi, rng.random(n))
    x = rescale_rows(x, np.repeat(s[:, None], 3, axis=1))
    for i in range(3):
        if i < 2:
            r, other = (x[:, _R1], x[:, _R2]) if i == 0 else (x[:, _R2], x[:, _R1])
            lo, hi = _log_room(r, r_lo, r_hi, 2.0)
            order_lo, order_hi = _log_room(r, other, other, 2.0)  # r e^{2s} = other
            if i == 0:
                hi = np.minimum(hi, order_hi)  # r1 e^{2 s1} <= r2
            else:
                lo = np.maximum(lo, order_lo)  # r2 e^{2 s2} >= r1
        else:
            a1, b1 = _log_room(x[:, _R1], r_lo, r_hi, -2.0)
            a2, b2 = _log_room(x[:, _R2], r_lo, r_hi, -2.0)
            lo, hi = np.maximum(a1, a2), np.minimum(b1, b2)
            lo = np.maximum(lo, (x[:, _G] - g_hi) * LN10 / 2)
            hi = np.minimum(hi, (x[:, _G] - g_lo) * LN10 / 2)
        hi = np.minimum(hi, _yukawa_room(x, (i,)))
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)  # rounding: the current point is always allowed
        step = np.zeros((n, 3))
        step[:, i] = _truncated_exponential(K_ROW[i], lo, hi, rng.random(n))
        x = rescale_rows(x, step)
    return x


def _in_yukawa_box(x: np.ndarray) -> np.ndarray:
    lo, hi = PRIOR["y"]
    y = x[:, :18]
    return np.all((y >= lo) & (y <= hi), axis=1)


def _phase_step(x: np.ndarray, rng: np.random.Generator, tries: int = PHASE_TRIES) -> np.ndarray:
    """Independence-Metropolis draws of each row and column phase (uniform proposals, accepted in the box)."""
    n = len(x)
    for which in range(5):  # rows N1, N2, then columns e, mu, tau
        for _ in range(tries):
            rows, cols = np.zeros((n, 2)), np.zeros((n, 3))
            phase = rng.uniform(-np.pi, np.pi, n)
            if which < 2:
                rows[:, which] = phase
            else:
                cols[:, which - 2] = phase
            prop = rephase(x, rows, cols)
            ok = _in_yukawa_box(prop)
            x[ok] = prop[ok]
    return x


def resample_orbits(x: np.ndarray, rng: np.random.Generator, sweeps: int = DEFAULT_SWEEPS) -> np.ndarray:
    """``x`` (N, 23) moved along the symmetry orbits by ``sweeps`` prior-exact sweeps (module docstring).

    Every row keeps its light-neutrino observables (``m_nu`` to rounding) and so its solution status;
    ``r1, r2`` and ``g`` (the heavy masses), the Yukawas' phases and sizes and ``arg M1, arg M2``
    move. Points must lie in the prior's box with ``r1 <= r2`` (``seesaw.canonical_order``); they
    stay in it. Returns a new array.
    """
    if sweeps < 0:
        raise ValueError("sweeps must be >= 0")
    x = np.array(x, dtype=np.float64, copy=True)
    if len(x) == 0 or sweeps == 0:
        return x
    for _ in range(int(sweeps)):
        x = _scale_step(x, rng)
        x = _phase_step(x, rng)
    return x


__all__ = ["DEFAULT_SWEEPS", "rephase", "rescale_rows", "resample_orbits"]
