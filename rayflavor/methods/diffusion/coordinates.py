"""The coordinate systems a diffusion network can work in (its data space before the [-1, 1] map).

* ``paper``: the 23 seesaw parameters themselves (``seesaw.PARAMETERS``), as in the paper;
* ``casas-ibarra`` (beyond the paper): the 23 coordinates of :mod:`rayflavor.physics.casas_ibarra`,
  an exact bijection in which dm21, dm31 and the mixing angles and phases are coordinates, so the
  3 sigma windows are slabs the network can resolve rather than shells ~10^-3 of the prior box thin;
  the two Majorana phases enter as points on the unit circle, ``(cos alpha_k1, sin alpha_k1)`` with
  ``alpha_k1 = 2 beta_k``, so the network sees 25 features: a phase with a flat distribution on an
  interval is learned with too little density next to the interval's ends, and the circle has none
  (docs/experiments.md#2026-12-02-casas-ibarra);
* ``casas-ibarra-m3edge`` (beyond the paper; the chain's default): as ``casas-ibarra``, with
  ``g = log10_h2_over_m3_ev`` replaced by ``ln_m3_edge = ln(g - g_lo)``, the log of its distance
  from the prior's heaviest-M3 face ``g_lo = -1.22``. Half of the solutions lie within 0.04 of that
  face, the prior's density falling as ``10^{-9 (g - g_lo)}`` away from it (the overall Yukawa
  scale's Jacobian, :mod:`rayflavor.physics.seesaw_symmetry`); in ``g`` that is an edge the
  network smears, leaving too few heavy-M3 points (KS distance 0.085-0.125 on log10 M3), in
  ``ln(g - g_lo)`` a smooth bump it learns (docs/experiments.md#2026-12-02-m3-edge). Every feature
  vector decodes to ``g > g_lo``. Distances below :data:`EDGE_FLOOR` are read as the floor: with the
  other coordinates fixed, ``g`` moves the point along the overall scaling ``Y -> e^s Y,
  M -> e^{2s} M``, which no observable sees.

Points always enter and leave as ``seesaw.PARAMETERS`` rows; only the network sees the features.
"""

from __future__ import annotations

import numpy as np

from rayflavor.physics import casas_ibarra
from rayflavor.physics.seesaw import PRIOR

SYSTEMS = ("paper", "casas-ibarra", "casas-ibarra-m3edge")
#: Smallest distance from the heaviest-M3 face [log10] that ``casas-ibarra-m3edge`` resolves.
EDGE_FLOOR = 1e-6
_G = casas_ibarra.COORDINATES.index("log10_h2_over_m3_ev")
_G_LO = PRIOR["log10_h2_over_m3_ev"][0]
#: Casas-Ibarra coordinates that the network sees as (cos 2 beta, sin 2 beta) (``beta2``, ``beta3``).
_CIRCLE = (7, 8)
_KEEP = [k for k in range(len(casas_ibarra.COORDINATES)) if k not in _CIRCLE]


def check(system: str) -> str:
    """``system`` if known, else ValueError in one line."""
    if system not in SYSTEMS:
        raise ValueError(f"coordinates must be one of {', '.join(SYSTEMS)}, not {system!r}")
    return system


def features(system: str) -> tuple[str, ...]:
    """Names of the network's features in ``system`` (23 for ``paper``, 25 for the Casas-Ibarra ones)."""
    from rayflavor.physics import seesaw

    if check(system) == "paper":
        return seesaw.PARAMETERS
    names = [casas_ibarra.COORDINATES[k] for k in _KEEP]
    if system == "casas-ibarra-m3edge":
        names[names.index("log10_h2_over_m3_ev")] = "ln_m3_edge"
    return tuple(names) + ("cos_alpha21", "sin_alpha21", "cos_alpha31", "sin_alpha31")


def encode(g: np.ndarray, system: str) -> np.ndarray:
    """Seesaw parameters (N, 23) -> the network's features in ``system`` (NaN rows where undefined)."""
    if check(system) == "paper":
        return np.asarray(g, dtype=np.float64)
    c = casas_ibarra.to_coordinates(g)
    if system == "casas-ibarra-m3edge":
        with np.errstate(invalid="ignore"):
            c[:, _G] = np.log(np.maximum(c[:, _G] - _G_LO, EDGE_FLOOR))
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
    if system == "casas-ibarra-m3edge":
        with np.errstate(over="ignore"):
            c[:, _G] = _G_LO + np.exp(c[:, _G])
    return casas_ibarra.from_coordinates(c)
