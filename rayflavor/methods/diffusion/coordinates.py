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
* ``casas-ibarra-box`` (beyond the paper): as ``casas-ibarra``, with the three heavy-mass magnitudes
  replaced by logits of their distance from the prior box's faces, so that *every* feature vector
  decodes to a point inside the box (up to the periodic phases ``arg_m1``, ``arg_m2``):

  - ``logit_m1_over_m3``, ``logit_m2_over_m3`` = ``ln((r - r_lo) / (1 - r))`` for ``r = |M_k|/M3``
    in ``(r_lo, 1)``, ``r_lo = 1e-5``: the solutions crowd at ``r -> 1`` (the Jacobian's ``(r1 r2)^3``),
    a face the network smeared (KS 0.05-0.06 on M2/M3, docs/experiments.md#2026-12-07-box);
  - ``logit_g_box = ln((g - g_min) / (g_hi - g))`` with ``g = log10_h2_over_m3_ev`` and
    ``g_min = max(g_lo, g + 2 log10 A)``, ``A`` the largest ``|Re Y|``, ``|Im Y|``: with every other
    coordinate fixed, ``g`` moves the point along ``Y ~ 10^{-g/2}`` (the overall scaling, which no
    observable sees), and ``g_min`` is where the largest Yukawa reaches the box's face ``|Y| = 1``
    or M3 the heaviest-M3 face, whichever comes first. A quarter of the ``casas-ibarra-m3edge``
    network's samples decoded outside the Yukawa box and were lost.

  Distances below :data:`EDGE_FLOOR` (``g``) and :data:`RATIO_FLOOR` (the ratios) are read as the floor; a point whose ``g_min`` lies above
  ``g_hi`` (no scale puts it in the box) has no features (NaN).

Points always enter and leave as ``seesaw.PARAMETERS`` rows; only the network sees the features.
"""

from __future__ import annotations

import numpy as np

from rayflavor.physics import casas_ibarra
from rayflavor.physics.seesaw import PRIOR

SYSTEMS = ("paper", "casas-ibarra", "casas-ibarra-m3edge", "casas-ibarra-box")
#: Smallest distance from the heaviest-M3 face [log10] that ``casas-ibarra-m3edge`` resolves.
EDGE_FLOOR = 1e-6
#: Smallest distance of a mass ratio from its faces that ``casas-ibarra-box`` resolves.
RATIO_FLOOR = 1e-12
_G = casas_ibarra.COORDINATES.index("log10_h2_over_m3_ev")
_G_LO, _G_HI = PRIOR["log10_h2_over_m3_ev"]
_R_LO, _R_HI = PRIOR["mass_ratio"]
_Y_MAX = PRIOR["y"][1]
#: Casas-Ibarra coordinates of |M1|/M3 and |M2|/M3.
_RATIOS = (18, 19)
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
    if system == "casas-ibarra-box":
        for old in ("m1_over_m3", "m2_over_m3"):
            names[names.index(old)] = f"logit_{old}"
        names[names.index("log10_h2_over_m3_ev")] = "logit_g_box"
    return tuple(names) + ("cos_alpha21", "sin_alpha21", "cos_alpha31", "sin_alpha31")


def encode(g: np.ndarray, system: str) -> np.ndarray:
    """Seesaw parameters (N, 23) -> the network's features in ``system`` (NaN rows where undefined)."""
    if check(system) == "paper":
        return np.asarray(g, dtype=np.float64)
    c = casas_ibarra.to_coordinates(g)
    if system == "casas-ibarra-m3edge":
        with np.errstate(invalid="ignore"):
            c[:, _G] = np.log(np.maximum(c[:, _G] - _G_LO, EDGE_FLOOR))
    if system == "casas-ibarra-box":
        x = np.asarray(g, dtype=np.float64)
        with np.errstate(all="ignore"):
            g_min = _g_min(x[:, 20], np.abs(x[:, :18]).max(axis=1))
            c[:, _G] = _logit(c[:, _G], g_min, _G_HI, EDGE_FLOOR)
            c[:, _RATIOS] = _logit(c[:, _RATIOS], _R_LO, _R_HI, RATIO_FLOOR)
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
    if system == "casas-ibarra-box":
        return _decode_box(c)
    return casas_ibarra.from_coordinates(c)


def _g_min(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Smallest ``g`` on the overall-scaling line through a point at ``g`` with largest Yukawa ``a``
    that stays in the prior box: the Yukawa face (``a 10^{-(g' - g)/2} = 1``) or the heaviest-M3 face."""
    return np.maximum(_G_LO, g + 2.0 * np.log10(a / _Y_MAX))


def _logit(v: np.ndarray, lo: np.ndarray | float, hi: float, floor: float) -> np.ndarray:
    """``ln((v - lo) / (hi - v))``, distances floored at ``floor``; NaN where ``lo >= hi``."""
    out = np.log(np.maximum(v - lo, floor)) - np.log(np.maximum(hi - v, floor))
    return np.where(np.less(lo, hi), out, np.nan)


def _expit_between(f: np.ndarray, lo: np.ndarray | float, hi: float) -> np.ndarray:
    """Inverse of :func:`_logit`: a value in ``(lo, hi)`` for every finite ``f``."""
    return lo + (hi - lo) / (1.0 + np.exp(-f))


def _decode_box(c: np.ndarray) -> np.ndarray:
    """``casas-ibarra-box`` coordinates (logits in the heavy-mass columns) -> seesaw parameters."""
    c = c.copy()
    with np.errstate(over="ignore"):
        c[:, _RATIOS] = _expit_between(c[:, _RATIOS], _R_LO, _R_HI)
    f = c[:, _G].copy()
    c[:, _G] = 0.0
    x = casas_ibarra.from_coordinates(c)  # at g = 0; Y ~ 10^{-g/2} along the scaling line
    with np.errstate(all="ignore"):
        g_min = _g_min(np.zeros(len(c)), np.abs(x[:, :18]).max(axis=1))
        g = np.where(g_min < _G_HI, _expit_between(f, g_min, _G_HI), np.nan)
        x[:, :18] *= 10.0 ** (-0.5 * g)[:, None]
    x[:, 20] = g
    x[~np.isfinite(x).all(axis=1)] = np.nan
    return x
