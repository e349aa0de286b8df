"""Mixing matrices: the standard parametrisation and the extraction of angles and phases.

Conventions (batch axis first, rows = flavour, columns = mass states, both ascending):

* Standard parametrisation (FN paper eq. 30 = diffusion paper eq. 2.4 without Majorana part)::

    Ubar = R23(t23) . diag(1,1,e^{i delta}) . R13(t13) . diag(1,1,e^{-i delta}) . R12(t12)
    Ubar[0,2] = s13 e^{-i delta}

* Majorana phases, two conventions, both with the phase matrix on the right:

  - ``"half"`` (diffusion paper eq. 2.4): ``U = Ubar . diag(1, e^{i a21/2}, e^{i a31/2})``,
    ``a21, a31`` in [0, 2 pi).  Invariant under the sign freedom of a Takagi column.
  - ``"nufit"`` (FN paper eqs. 33-34): ``U = Ubar . diag(e^{i a1}, e^{i a2}, 1)``.  A Takagi factor
    is fixed only up to a sign per column, so ``a1, a2`` are physical modulo pi and are
    returned in [0, pi).

* Extraction never fixes a gauge by hand: every returned quantity is computed from moduli and
  rephasing invariants, so any unphysical row phases ``diag(e^{i phi}) U`` drop out:

    s13 = |U_e3|,  s12^2 = |U_e2|^2/(1-|U_e3|^2),  s23^2 = |U_mu3|^2/(1-|U_e3|^2)
    Q = U_e1 U_mu3 U_e3^* U_mu1^*  =  -c12 s12 c13^2 s23 c23 s13 e^{i delta} - (c12 c13 s23 s13)^2
    => delta = arg(-(Q + c12^2 c13^2 s23^2 s13^2))                       in [0, 2 pi)
    a21/2 = arg(U_e2 U_e1^*),  a31/2 = arg(U_e3 U_e1^*) + delta           ("half")
    a1 = arg(U_e1 U_e3^*) - delta,  a2 = arg(U_e2 U_e3^*) - delta  (mod pi) ("nufit")
    J = Im(U_e1 U_mu2 U_e2^* U_mu1^*) = s12 c12 s23 c23 s13 c13^2 sin(delta)   (eq. 2.6)
    I1 = Im(U_e1^* U_e2),  I2 = Im(U_e1^* U_e3)  of the parametrised U      (eq. 2.7)

>>> import numpy as np
>>> U = standard(np.array([0.59]), np.array([0.15]), np.array([0.84]), np.array([3.4]))
>>> a = angles(U)
>>> [round(float(a[k][0]), 12) for k in ("theta12", "theta13", "theta23", "delta")]
[0.59, 0.15, 0.84, 3.4]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TWO_PI = 2.0 * np.pi


def standard(theta12, theta13, theta23, delta) -> np.ndarray:
    """Batch of ``Ubar(theta12, theta13, theta23, delta)`` (eq. 30 / 2.4), angles in radians."""
    t12, t13, t23, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (theta12, theta13, theta23, delta)))
    s12, c12 = np.sin(t12), np.cos(t12)
    s13, c13 = np.sin(t13), np.cos(t13)
    s23, c23 = np.sin(t23), np.cos(t23)
    e = np.exp(1j * d)
    u = np.empty(t12.shape + (3, 3), dtype=np.complex128)
    u[..., 0, 0] = c12 * c13
    u[..., 0, 1] = s12 * c13
    u[..., 0, 2] = s13 / e
    u[..., 1, 0] = -s12 * c23 - c12 * s23 * s13 * e
    u[..., 1, 1] = c12 * c23 - s12 * s23 * s13 * e
    u[..., 1, 2] = s23 * c13
    u[..., 2, 0] = s12 * s23 - c12 * c23 * s13 * e
    u[..., 2, 1] = -c12 * s23 - s12 * c23 * s13 * e
    u[..., 2, 2] = c23 * c13
    return u


def majorana_matrix(a, b, convention: str) -> np.ndarray:
    """Diagonal Majorana phase matrix (as a (N, 3) vector of phases) for ``convention``.

    ``"half"``: ``(a, b) = (alpha21, alpha31)`` -> ``diag(1, e^{i a/2}, e^{i b/2})``;
    ``"nufit"``: ``(a, b) = (alpha1, alpha2)`` -> ``diag(e^{i a}, e^{i b}, 1)``.
    """
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    one = np.ones_like(a, dtype=np.complex128)
    if convention == "half":
        return np.stack([one, np.exp(0.5j * a), np.exp(0.5j * b)], axis=-1)
    if convention == "nufit":
        return np.stack([np.exp(1j * a), np.exp(1j * b), one], axis=-1)
    raise ValueError(f"unknown Majorana convention {convention!r}")


def _mod(x: np.ndarray, period: float) -> np.ndarray:
    y = np.mod(x, period)
    return np.where(y >= period, 0.0, y)  # np.mod can round up to period itself


def angles(u: np.ndarray) -> dict[str, np.ndarray]:
    """Mixing angles (rad), Dirac phase ``delta`` in [0, 2 pi) and ``J`` of a batch of unitary ``u``."""
    a = np.abs(u)
    a2 = a * a
    s13sq = np.clip(a2[:, 0, 2], 0.0, 1.0)
    c13sq = 1.0 - s13sq
    with np.errstate(divide="ignore", invalid="ignore"):
        s12sq = np.clip(a2[:, 0, 1] / c13sq, 0.0, 1.0)
        s23sq = np.clip(a2[:, 1, 2] / c13sq, 0.0, 1.0)
    s13, c13 = np.sqrt(s13sq), np.sqrt(c13sq)
    s12, c12 = np.sqrt(s12sq), np.sqrt(1.0 - s12sq)
    s23 = np.sqrt(s23sq)
    q = u[:, 0, 0] * u[:, 1, 2] * np.conj(u[:, 0, 2]) * np.conj(u[:, 1, 0])
    z = -(q + (c12 * c13 * s23 * s13) ** 2)
    delta = _mod(np.angle(z), TWO_PI)
    j = np.imag(u[:, 0, 0] * u[:, 1, 1] * np.conj(u[:, 0, 1]) * np.conj(u[:, 1, 0]))
    return {
        "theta12": np.arcsin(s12),
        "theta13": np.arcsin(s13),
        "theta23": np.arcsin(s23),
        "sin2_theta12": s12sq,
        "sin2_theta13": s13sq,
        "sin2_theta23": s23sq,
        "delta": delta,
        "j": j,
    }


def majorana_phases(u: np.ndarray, delta: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Majorana phases of ``u`` given its Dirac phase ``delta`` (see module docstring)."""
    e1, e2, e3 = u[:, 0, 0], u[:, 0, 1], u[:, 0, 2]
    if convention == "half":
        a21 = 2.0 * np.angle(e2 * np.conj(e1))
        a31 = 2.0 * (np.angle(e3 * np.conj(e1)) + delta)
        return _mod(a21, TWO_PI), _mod(a31, TWO_PI)
    if convention == "nufit":
        a1 = np.angle(e1 * np.conj(e3)) - delta
        a2 = np.angle(e2 * np.conj(e3)) - delta
        return _mod(a1, np.pi), _mod(a2, np.pi)
    raise ValueError(f"unknown Majorana convention {convention!r}")


def invariants(u: np.ndarray, delta: np.ndarray, alpha21: np.ndarray, alpha31: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majorana-phase invariants ``I1 = Im(U_e1^* U_e2)``, ``I2 = Im(U_e1^* U_e3)`` (eq. 2.7).

    Evaluated on the parametrised matrix (eq. 2.4, ``alpha21, alpha31`` in [0, 2 pi), ``"half"``):
    ``I1 = |U_e1||U_e2| sin(alpha21/2)``, ``I2 = |U_e1||U_e3| sin(alpha31/2 - delta)``.  Read off
    a raw Takagi factor, ``Im(U_e1^* U_e2)`` would flip sign with the free sign of column 2.
    """
    a = np.abs(u[:, 0, :])
    return a[:, 0] * a[:, 1] * np.sin(0.5 * alpha21), a[:, 0] * a[:, 2] * np.sin(0.5 * alpha31 - delta)


def jarlskog_closed_form(theta12, theta13, theta23, delta) -> np.ndarray:
    """``J = s12 c12 s23 c23 s13 c13^2 sin(delta)`` (eq. 2.6)."""
    return (
        np.sin(theta12) * np.cos(theta12) * np.sin(theta23) * np.cos(theta23)
        * np.sin(theta13) * np.cos(theta13) ** 2 * np.sin(delta)
    )


# ---------------------------------------------------------------------------------------------
# The same extraction for one matrix, compiled, for the fused per-model kernels.  Every formula
# is the batched one above, term by term; tests hold the two to 1e-12.
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def _clip01(x):  # pragma: no cover - compiled
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)  # NaN passes through, as np.clip


@njit(cache=True, nogil=True, error_model="numpy")
def mod_row(x, period):  # pragma: no cover - compiled
    """``x mod period`` in [0, period) (NaN stays NaN), as :func:`_mod`."""
    y = x - period * math.floor(x / period)
    if y >= period or y < 0.0:  # rounding at the ends; NaN passes through
        return 0.0
    return y


@njit(cache=True, nogil=True, error_model="numpy")
def _arg(z):  # pragma: no cover - compiled
    return math.atan2(z.imag, z.real)


@njit(cache=True, nogil=True, error_model="numpy")
def angles_row(u):  # pragma: no cover - compiled
    """``(s12^2, s13^2, s23^2, delta, J)`` of one unitary ``u`` (3, 3); as :func:`angles`."""
    e3 = u[0, 2]
    s13sq = _clip01(e3.real * e3.real + e3.imag * e3.imag)
    c13sq = 1.0 - s13sq
    e2, m3 = u[0, 1], u[1, 2]
    s12sq = _clip01((e2.real * e2.real + e2.imag * e2.imag) / c13sq)
    s23sq = _clip01((m3.real * m3.real + m3.imag * m3.imag) / c13sq)
    s13, c13 = math.sqrt(s13sq), math.sqrt(c13sq)
    c12 = math.sqrt(1.0 - s12sq)
    s23 = math.sqrt(s23sq)
    q = u[0, 0] * u[1, 2] * u[0, 2].conjugate() * u[1, 0].conjugate()
    r = c12 * c13 * s23 * s13
    delta = mod_row(_arg(-(q + r * r)), TWO_PI)
    j = (u[0, 0] * u[1, 1] * u[0, 1].conjugate() * u[1, 0].conjugate()).imag
    return s12sq, s13sq, s23sq, delta, j


@njit(cache=True, nogil=True, error_model="numpy")
def majorana_half_row(u, delta):  # pragma: no cover - compiled
    """``(alpha21, alpha31)`` in [0, 2 pi), convention ``"half"``; as :func:`majorana_phases`."""
    e1c = u[0, 0].conjugate()
    a21 = 2.0 * _arg(u[0, 1] * e1c)
    a31 = 2.0 * (_arg(u[0, 2] * e1c) + delta)
    return mod_row(a21, TWO_PI), mod_row(a31, TWO_PI)


@njit(cache=True, nogil=True, error_model="numpy")
def majorana_nufit_row(u, delta):  # pragma: no cover - compiled
    """``(alpha1, alpha2)`` in [0, pi), convention ``"nufit"``; as :func:`majorana_phases`."""
    e3c = u[0, 2].conjugate()
    a1 = _arg(u[0, 0] * e3c) - delta
    a2 = _arg(u[0, 1] * e3c) - delta
    return mod_row(a1, math.pi), mod_row(a2, math.pi)
