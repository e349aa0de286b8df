"""The coordinate systems a diffusion network can work in (its data space before the [-1, 1] map).

* ``paper``: the 23 seesaw parameters themselves (``seesaw.PARAMETERS``), as in the paper;
* ``casas-ibarra`` (beyond the paper): the 23 coordinates of :mod:`rayflavor.physics.casas_ibarra`,
  an exact bijection in which dm21, dm31 and the mixing angles and phases are coordinates, so the
  3 sigma windows are slabs the network can resolve rather than shells ~10^-3 of the prior box thin;
  the two Majorana phases enter as points on the unit circle, ``(cos alpha_k1, sin alpha_k1)`` with
  ``alpha_k1 = 2 beta_k``, so the network sees 25 features: a phase with a flat distribution on an
  interval is learned with too little density next to the interval's ends, and the circle has none
  (docs/experiments.md#2026-12-02-casas-ibarra).

Points always enter and leave as ``seesaw.PARAMETERS`` rows; only the network sees the features.
"""

from __future__ import annotations

import numpy as np

from rayflavor.physics import casas_ibarra

SYSTEMS = ("paper", "casas-ibarra")
#: Casas-Ibarra coordinates that the network sees as (cos 2 beta, sin 2 beta) (``beta2``, ``beta3``).
_CIRCLE = (7, 8)
_KEEP = [k for k in range(len(casas_ibarra.COORDINATES)) if k not in _CIRCLE]


def check(system: str) -> str:
    """``system`` if known, else ValueError in one line."""
    if system not in SYSTEMS:
        raise ValueError(f"coordinates must be one of {', '.join(SYSTEMS)}, not {system!r}")
    return system


def features(system: str) -> tuple[str, ...]:
    """Names of the network's features in ``system`` (23 for ``paper``, 25 for ``casas-ibarra``)."""
    from rayflavor.physics import seesaw

    if check(system) == "paper":
        return seesaw.PARAMETERS
    names = [casas_ibarra.COORDINATES[k] for k in _KEEP]
    return tuple(names) + ("cos_alpha21", "sin_alpha21", "cos_alpha31", "sin_alpha31")


def encode(g: np.ndarray, system: str) -> np.ndarray:
    """Seesaw parameters (N, 23) -> the network's features in ``system`` (NaN rows where undefined)."""
    if check(system) == "paper":
        return np.asarray(g, dtype=np.float64)
    c = casas_ibarra.to_coordinates(g)
    alpha = 2.0 * c[:, _CIRCLE]
    return np.column_stack([c[:, _KEEP], np.cos(alpha[:, 0]), np.sin(alpha[:, 0]), np.cos(alpha[:, 1]),
                            np.sin(alpha[:, 1])])


def decode(f: np.ndarray, system: str) -> np.ndarray:
    """The network's features in ``system`` -> seesaw parameters (N, 23); a circle feature pair is read
    by its angle alone (its radius, which a sampler does not keep at exactly 1, is ignored)."""
    if check(system) == "paper":
        return np.asarray(f, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != len(features(system)):
        raise ValueError(f"{system} networks have {len(features(system))} features, not "
                         f"{f.shape[-1] if f.ndim else 0} (a network from an older rayflavor? retrain it)")
    n_keep = len(_KEEP)
    c = np.empty((len(f), len(casas_ibarra.COORDINATES)))
    c[:, _KEEP] = f[:, :n_keep]
    for j, k in enumerate(_CIRCLE):
        alpha = np.arctan2(f[:, n_keep + 2 * j + 1], f[:, n_keep + 2 * j])
        c[:, k] = np.mod(0.5 * alpha, np.pi)
    return casas_ibarra.from_coordinates(c)
