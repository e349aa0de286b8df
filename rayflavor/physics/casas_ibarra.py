"""Casas-Ibarra coordinates of the seesaw parameters: an exact bijection in which the labels are coordinates.

The paper's 23 parameters (:data:`rayflavor.physics.seesaw.PARAMETERS`) hold the light observables
only through ``m_nu`` (eq. 2.2); the 3 sigma windows are thin, curved shells in them. Written as

    A := sqrt(<H>^2/M3) diag(sqrt(M3/M_i)) Y,        m_nu = A^T A = U^* diag(m) U^dagger,

every ``A`` with that ``A^T A`` is ``A = R diag(sqrt(m)) U^dagger`` for a complex orthogonal ``R``
(Casas & Ibarra 2001, hep-ph/0103065), so

    Y = sqrt(M3/<H>^2) diag(sqrt(M_i/M3)) R diag(sqrt(m)) U^dagger .                 (CI)

The coordinates (:data:`COORDINATES`, 23 columns, in this order) are

* the light sector, 12: ``log10_m_lightest_ev`` = log10 s1, ``log10_dm21_asc`` = log10(s2^2 - s1^2),
  ``log10_dm31_asc`` = log10(s3^2 - s1^2) [eV, eV^2] of the *ascending* Takagi values s1 < s2 < s3 of
  ``m_nu`` (for normal ordering these are m1 and the labels' dm21 and dm31); ``sin2_t12``,
  ``sin2_t13``, ``sin2_t23``, ``delta`` and the two Majorana half-phases ``beta2``, ``beta3`` and the
  three charged-lepton phases ``phi_e``, ``phi_mu``, ``phi_tau`` of the ascending Takagi factor
  written as ``U = diag(e^{i phi}) Ubar(t12, t13, t23, delta) diag(1, e^{i beta2}, e^{i beta3})``
  (``Ubar`` is :func:`.mixing.standard`; for NO ``delta`` is delta_CP and ``2 beta_k`` the paper's
  ``alpha_k1`` of convention "half"). Ranges: ``delta`` in [0, 2 pi), ``beta2``, ``beta3`` in [0, pi)
  (so ``alpha_k1 = 2 beta_k`` exactly), the ``phi`` in [-pi, pi). ``delta`` is stored as
  ``cos_delta`` together with ``phi_e_half = phi_e + 2 pi [delta > pi]`` in [-pi, 3 pi): the |U|
  labels fix ``cos delta`` but not the sign of ``sin delta``, so a network conditioned on them would
  have to learn two sharp modes ``delta``, ``2 pi - delta`` in a ``delta`` coordinate (and blurs them
  towards pi), whereas here it learns one value of ``cos_delta`` and a broad ``phi_e_half``, whose half
  carries the sign (docs/experiments.md#2026-12-02-casas-ibarra);
* ``R`` in SO(3, C), 6: ``R = R23(z23) R13(z13) R12(z12)``, the real-rotation form with complex
  angles ``z = re + i im``; ``re_z13`` in [-pi/2, pi/2], ``re_z12``, ``re_z23`` in (-pi, pi];
* the heavy masses, 5: the paper's ``m1_over_m3``, ``m2_over_m3``, ``log10_h2_over_m3_ev``,
  ``arg_m1``, ``arg_m2`` unchanged. ``sqrt(M_i/M3)`` is the principal root (phase ``arg M_i / 2``).

Uniqueness: the Takagi columns are fixed up to a sign each, and ``(U S, R S)`` with ``S = diag(+-1)``
is the same point. The signs are fixed by ``det R = +1`` and ``beta2, beta3`` in [0, pi): the three
sign pairs with ``det S = 1`` shift ``(beta2, beta3)`` by ``(pi, pi)``, ``(0, pi)`` or ``(pi, 0)``
(the last two with every ``phi`` shifted by pi), so exactly one of the four choices is canonical. So :func:`from_coordinates`
after :func:`to_coordinates` is the identity on every point whose Takagi values are distinct and
non-zero (the prior's points, with probability one), and the reverse holds on the ranges above.
The light observables of a point are read off its coordinates: the 3 sigma windows of dm21,
dm31 and the nine |U| are windows in seven of them (NO), which a generative model can hit
with ordinary precision, whereas in the paper's coordinates it would have to resolve shells
~10^-3 of the prior box thin.
"""

from __future__ import annotations

import numpy as np

from . import linalg, mixing

TWO_PI = 2.0 * np.pi

COORDINATES: tuple[str, ...] = (
    "log10_m_lightest_ev", "log10_dm21_asc", "log10_dm31_asc",
    "sin2_t12", "sin2_t13", "sin2_t23", "cos_delta", "beta2", "beta3", "phi_e_half", "phi_mu", "phi_tau",
    "re_z12", "im_z12", "re_z13", "im_z13", "re_z23", "im_z23",
    "m1_over_m3", "m2_over_m3", "log10_h2_over_m3_ev", "arg_m1", "arg_m2",
)
_HEAVY = slice(18, 23)


def _wrap(x: np.ndarray, lo: float = -np.pi) -> np.ndarray:
    """``x`` mod 2 pi into [lo, lo + 2 pi)."""
    y = np.mod(x - lo, TWO_PI)
    return np.where(y >= TWO_PI, 0.0, y) + lo


def _sqrt_heavy(x: np.ndarray) -> np.ndarray:
    """(N, 3) ``sqrt(<H>^2/M3) sqrt(M3/M_i)`` [eV^1/2], principal roots (the factor of A)."""
    d = np.empty((x.shape[0], 3), dtype=np.complex128)
    with np.errstate(divide="ignore", invalid="ignore"):
        d[:, 0] = np.exp(-0.5j * x[:, 21]) / np.sqrt(x[:, 18])
        d[:, 1] = np.exp(-0.5j * x[:, 22]) / np.sqrt(x[:, 19])
    d[:, 2] = 1.0
    return d * np.sqrt(10.0 ** x[:, 20])[:, None]


def _rotations(z12: np.ndarray, z13: np.ndarray, z23: np.ndarray) -> np.ndarray:
    """(N, 3, 3) ``R23(z23) R13(z13) R12(z12)`` for complex angles (``Ubar`` with delta = 0)."""
    s12, c12, s13, c13, s23, c23 = np.sin(z12), np.cos(z12), np.sin(z13), np.cos(z13), np.sin(z23), np.cos(z23)
    r = np.empty(z12.shape + (3, 3), dtype=np.complex128)
    r[:, 0, 0], r[:, 0, 1], r[:, 0, 2] = c12 * c13, s12 * c13, s13
    r[:, 1, 0], r[:, 1, 1], r[:, 1, 2] = -s12 * c23 - c12 * s23 * s13, c12 * c23 - s12 * s23 * s13, s23 * c13
    r[:, 2, 0], r[:, 2, 1], r[:, 2, 2] = s12 * s23 - c12 * c23 * s13, -c12 * s23 - s12 * c23 * s13, c23 * c13
    return r


def _rotation_angles(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complex angles (z12, z13, z23) of ``r`` in SO(3, C) (ranges in the module docstring)."""
    z13 = np.arcsin(r[:, 0, 2])  # principal: Re in [-pi/2, pi/2], so cos z13 = sqrt(1 - s13^2) principal
    c13 = np.cos(z13)
    with np.errstate(divide="ignore", invalid="ignore"):
        z12 = -1j * np.log((r[:, 0, 0] + 1j * r[:, 0, 1]) / c13)  # e^{i z} = c + i s
        z23 = -1j * np.log((r[:, 2, 2] + 1j * r[:, 1, 2]) / c13)
    return z12, z13, z23


def _unitary(c: np.ndarray) -> np.ndarray:
    """(N, 3, 3) ``diag(e^{i phi}) Ubar diag(1, e^{i beta2}, e^{i beta3})`` from coordinate rows."""
    t = [np.arcsin(np.sqrt(np.clip(c[:, k], 0.0, 1.0))) for k in (3, 4, 5)]
    delta, phi_e = delta_and_phi_e(c[:, 6], c[:, 9])
    u = mixing.standard(t[0], t[1], t[2], delta)
    right = np.stack([np.ones(len(c)), np.exp(1j * c[:, 7]), np.exp(1j * c[:, 8])], axis=1)
    phi = np.stack([phi_e, c[:, 10], c[:, 11]], axis=1)
    return np.exp(1j * phi)[:, :, None] * u * right[:, None, :]


def delta_and_phi_e(cos_delta: np.ndarray, phi_e_half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(delta in [0, 2 pi), phi_e in [-pi, pi)) of the coordinates ``cos_delta`` and ``phi_e_half``
    (module docstring): the upper half [pi, 3 pi) of ``phi_e_half`` says ``delta > pi``."""
    upper = np.asarray(phi_e_half) >= np.pi
    d = np.arccos(np.clip(cos_delta, -1.0, 1.0))
    return np.where(upper, TWO_PI - d, d), np.asarray(phi_e_half) - np.where(upper, TWO_PI, 0.0)


def to_coordinates(x: np.ndarray) -> np.ndarray:
    """(N, 23) seesaw parameters (``seesaw.PARAMETERS`` order) -> (N, 23) Casas-Ibarra coordinates.

    Rows whose Takagi values are degenerate or zero (a set of measure zero, and non-finite input)
    come back NaN.
    """
    from .seesaw import mass_matrix  # seesaw imports nothing from here; the late import keeps it so

    x = np.asarray(x, dtype=np.float64)
    w, s = linalg.takagi(mass_matrix(x))  # W^dagger m W^* = diag(s) ascending, so U = W^*
    u = np.conj(w)
    with np.errstate(all="ignore"):
        ang = mixing.angles(u)
        e = u[:, 0, :]
        phi_e = np.angle(e[:, 0])
        beta2 = np.angle(e[:, 1]) - phi_e
        beta3 = np.angle(e[:, 2]) - phi_e + ang["delta"]
        phi_mu = np.angle(u[:, 1, 2]) - beta3
        phi_tau = np.angle(u[:, 2, 2]) - beta3
        a = _sqrt_heavy(x)[:, :, None] * (x[:, 0:9] + 1j * x[:, 9:18]).reshape(-1, 3, 3)
        r = a @ u / np.sqrt(s)[:, None, :]  # R = A U diag(m)^-1/2
        flip = np.real(np.linalg.det(r)) < 0  # det R = -1: take the other sign of the third Takagi column
        r[flip, :, 2] *= -1.0
        beta3 = beta3 + np.where(flip, np.pi, 0.0)
        # the other sign pairs (U S, R S), det S = 1, shift (beta2, beta3) by pi each or both: keep both in [0, pi)
        k2, k3 = _wrap(beta2, 0.0) >= np.pi, _wrap(beta3, 0.0) >= np.pi
        signs = np.ones((len(x), 3))
        signs[k2 & k3] = (1.0, -1.0, -1.0)
        signs[~k2 & k3] = (-1.0, -1.0, 1.0)
        signs[k2 & ~k3] = (-1.0, 1.0, -1.0)
        r = r * signs[:, None, :]
        beta2, beta3 = beta2 - np.pi * k2, beta3 - np.pi * k3
        shift = np.where(signs[:, 0] < 0, np.pi, 0.0)
        phi_e, phi_mu, phi_tau = phi_e + shift, phi_mu + shift, phi_tau + shift
        z12, z13, z23 = _rotation_angles(r)
        out = np.empty_like(x)
        out[:, 0] = np.log10(s[:, 0])
        out[:, 1] = np.log10(s[:, 1] ** 2 - s[:, 0] ** 2)
        out[:, 2] = np.log10(s[:, 2] ** 2 - s[:, 0] ** 2)
        out[:, 3], out[:, 4], out[:, 5] = ang["sin2_theta12"], ang["sin2_theta13"], ang["sin2_theta23"]
        out[:, 6] = np.cos(ang["delta"])
        out[:, 7], out[:, 8] = _wrap(beta2, 0.0), _wrap(beta3, 0.0)
        out[:, 9] = _wrap(phi_e) + np.where(ang["delta"] > np.pi, TWO_PI, 0.0)
        out[:, 10], out[:, 11] = _wrap(phi_mu), _wrap(phi_tau)
        out[:, 12], out[:, 13] = z12.real, z12.imag
        out[:, 14], out[:, 15] = z13.real, z13.imag
        out[:, 16], out[:, 17] = z23.real, z23.imag
        out[:, _HEAVY] = x[:, _HEAVY]
    bad = ~np.isfinite(out).all(axis=1)
    out[bad] = np.nan
    return out


def from_coordinates(c: np.ndarray) -> np.ndarray:
    """(N, 23) Casas-Ibarra coordinates -> (N, 23) seesaw parameters (eq. CI of the module docstring).

    Defined for every finite row (angles' sines are clipped to [0, 1]); rows whose masses come out
    non-finite are NaN. The Yukawas are *not* bounded to the prior box here: a caller decides what
    a point outside it means.
    """
    c = np.asarray(c, dtype=np.float64)
    with np.errstate(all="ignore"):
        m1 = 10.0 ** c[:, 0]
        m = np.stack([m1, np.sqrt(m1 ** 2 + 10.0 ** c[:, 1]), np.sqrt(m1 ** 2 + 10.0 ** c[:, 2])], axis=1)
        u = _unitary(c)
        r = _rotations(c[:, 12] + 1j * c[:, 13], c[:, 14] + 1j * c[:, 15], c[:, 16] + 1j * c[:, 17])
        a = r * np.sqrt(m)[:, None, :] @ np.conj(np.swapaxes(u, 1, 2))  # R diag(sqrt m) U^dagger
        y = a / _sqrt_heavy(c)[:, :, None]
    x = np.empty_like(c)
    x[:, 0:9] = y.real.reshape(-1, 9)
    x[:, 9:18] = y.imag.reshape(-1, 9)
    x[:, _HEAVY] = c[:, _HEAVY]
    bad = ~np.isfinite(x).all(axis=1)
    x[bad] = np.nan
    return x
