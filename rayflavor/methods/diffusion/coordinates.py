"""The coordinate systems a diffusion network can work in (its data space before the [-1, 1] map).

* ``paper``: the 23 seesaw parameters themselves (``seesaw.PARAMETERS``), as in the paper;
* ``casas-ibarra`` (beyond the paper): :mod:`rayflavor.physics.casas_ibarra`, an exact bijection in
  which dm21, dm31 and the mixing angles and phases are coordinates, so the 3 sigma windows are
  slabs the network can resolve rather than shells ~10^-3 of the prior box thin
  (docs/experiments.md#2026-12-02-casas-ibarra).

Points always enter and leave as ``seesaw.PARAMETERS`` rows; only the network sees the coordinates.
"""

from __future__ import annotations

import numpy as np

from rayflavor.physics import casas_ibarra

SYSTEMS = ("paper", "casas-ibarra")


def check(system: str) -> str:
    """``system`` if known, else ValueError in one line."""
    if system not in SYSTEMS:
        raise ValueError(f"coordinates must be one of {', '.join(SYSTEMS)}, not {system!r}")
    return system


def encode(g: np.ndarray, system: str) -> np.ndarray:
    """Seesaw parameters (N, 23) -> coordinates (N, 23) of ``system`` (NaN rows where undefined)."""
    if check(system) == "paper":
        return np.asarray(g, dtype=np.float64)
    return casas_ibarra.to_coordinates(g)


def decode(c: np.ndarray, system: str) -> np.ndarray:
    """Coordinates (N, 23) of ``system`` -> seesaw parameters (N, 23)."""
    if check(system) == "paper":
        return np.asarray(c, dtype=np.float64)
    return casas_ibarra.from_coordinates(c)
