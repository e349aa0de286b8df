"""Allowed region of the effective Majorana mass ``m_ee = |sum_i U_ei^2 m_i|`` against the
lightest neutrino mass, from the oscillation data of a data file.

For each lightest mass the band is the range of ``m_ee`` over oscillation parameters drawn
inside their ``n_sigma`` windows (``sin^2`` of the angles and the two splittings) and over all
Majorana and Dirac phases.  Windows: the file's 3 sigma ranges for ``n_sigma = 3``, otherwise
``central -/+ n_sigma * minus/plus``.  Works with both shipped data layouts: angles given as
``sin2_theta*`` (nufit-6.0-sk) or in degrees as ``pmns_theta*`` (nufit-6.0+pdg-2024).

>>> from rayflavor.physics.data import load
>>> lo, hi = mee_band(load("nufit-6.0+pdg-2024"), "IO", np.array([1e-4]))
>>> bool(0.01 < lo[0] < hi[0] < 0.06)
True
"""

from __future__ import annotations

import numpy as np

from .data import DataSet, Observable


def _window(obs: Observable, n_sigma: float) -> tuple[float, float]:
    if n_sigma == 3.0:
        return obs.window3()
    minus, plus = obs.sigmas()
    return obs.central - n_sigma * minus, obs.central + n_sigma * plus


def _sin2_window(data: DataSet, angle: str, ordering: str, n_sigma: float) -> tuple[float, float]:
    if data.has(f"sin2_theta{angle}", ordering):
        return _window(data.get(f"sin2_theta{angle}", ordering), n_sigma)
    lo, hi = _window(data.get(f"pmns_theta{angle}", ordering), n_sigma)
    return float(np.sin(np.radians(lo)) ** 2), float(np.sin(np.radians(hi)) ** 2)


def mee_band(
    data: DataSet,
    ordering: str,
    m_lightest: np.ndarray,
    *,
    n_sigma: float = 3.0,
    samples: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of ``m_ee`` [eV] at each ``m_lightest`` [eV] for ``ordering``."""
    rng = np.random.default_rng(seed)
    s12 = rng.uniform(*_sin2_window(data, "12", ordering, n_sigma), samples)
    s13 = rng.uniform(*_sin2_window(data, "13", ordering, n_sigma), samples)
    dm21 = rng.uniform(*_window(data.get("dm21", ordering), n_sigma), samples)
    dm3l = np.abs(rng.uniform(*_window(data.get("dm3l", ordering), n_sigma), samples))
    # corners of the phase space: the extremes of |a + b e^{ix} + c e^{iy}| sit at x, y in {0, pi}
    # for the maximum; the minimum is found on a grid of relative phases.
    phases = np.exp(1j * np.linspace(0.0, 2 * np.pi, 20, endpoint=False))
    ml = np.asarray(m_lightest, dtype=np.float64)[:, None]
    if ordering == "NO":
        m1 = ml
        m2 = np.sqrt(ml**2 + dm21)
        m3 = np.sqrt(ml**2 + dm3l)
    else:
        m3 = ml
        m2 = np.sqrt(ml**2 + dm3l)
        m1 = np.sqrt(m2**2 - dm21)
    a = m1 * (1 - s12) * (1 - s13)
    b = m2 * s12 * (1 - s13)
    c = m3 * s13
    hi = (a + b + c).max(axis=1)
    lo = np.full(ml.shape[0], np.inf)
    for p in phases:
        z = np.abs(a[:, :, None] + b[:, :, None] * p + c[:, :, None] * phases[None, None, :])
        lo = np.minimum(lo, z.min(axis=(1, 2)))
    return lo, hi
