"""The seesaw diffusion paper's reported results beside rayflavor's.

:data:`PAPER` holds what the paper reports for its 104 solutions (sec. 3: figs. 2-5 and the
text); :func:`summary` computes the same quantities for any table of solutions (a run's, split
by physics guidance, or the network-free reference); :func:`side_by_side` prints them as one
Markdown table.  Units: Σm and m_ββ in meV, angles in degrees, heavy masses in GeV.

Conventions: δCP and α31 as in ``seesaw.evaluate`` (radians in [0, 2π)); "α31 near 0" means
within 10° of 0 on the circle; the m_ββ band is the NO band of
:func:`rayflavor.physics.bands.mee_band` at the solution's lightest mass ``m1`` (3σ windows of the
data set, all Majorana phases), evaluated on a log grid and interpolated.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rayflavor.physics import bands

#: the diffusion paper's reported results (arXiv sec. 3 and the issue's summary of them)
PAPER: dict[str, str] = {
    "solutions": "104 in 3×10⁷ (3.5×10⁻⁶)",
    "Σm median [meV]": "60.3",
    "δCP quartiles 25/50/75 % [deg]": "106 / — / 228",
    "heavy masses [GeV]": "10¹⁵–10¹⁶, M1–M3 strongly correlated",
    "α31 within 10° of 0": "none",
    "m_ββ inside the NO band": "all",
}

NEAR_ZERO_DEG = 10.0


def _circular_distance_deg(rad: np.ndarray) -> np.ndarray:
    d = np.degrees(np.mod(rad, 2 * np.pi))
    return np.minimum(d, 360.0 - d)


def in_mbb_band(m_lightest: np.ndarray, m_bb: np.ndarray, data, ordering: str = "NO") -> np.ndarray:
    """Whether each (m_lightest, m_ββ) [eV] lies inside the allowed band (3σ) of ``ordering``."""
    grid = np.logspace(-6, 0, 241)
    lo, hi = bands.mee_band(data, ordering, grid, n_sigma=3.0)
    x = np.log10(np.clip(np.asarray(m_lightest, dtype=np.float64), 1e-6, 1.0))
    lo_i = 10 ** np.interp(x, np.log10(grid), np.log10(np.maximum(lo, 1e-12)))
    hi_i = 10 ** np.interp(x, np.log10(grid), np.log10(hi))
    m = np.asarray(m_bb, dtype=np.float64)
    return (m >= lo_i * (1 - 1e-9)) & (m <= hi_i * (1 + 1e-9))


def summary(df: pl.DataFrame, data, samples: int | None = None) -> dict[str, str]:
    """The :data:`PAPER` quantities for a table of solutions (the columns of ``solutions.parquet``).
    ``samples``: how many points were generated for these solutions (for the fraction), if known."""
    n = df.height
    if n == 0:
        return {k: "—" for k in PAPER} | {"solutions": "0"}
    from rayflavor.analysis.figures import heavy_masses_gev

    m_sum = 1e3 * df["m_sum"].to_numpy()
    dcp = np.degrees(np.mod(df["delta_cp"].to_numpy(), 2 * np.pi))
    q = np.percentile(dcp, [25, 50, 75])
    m1, m2, m3 = heavy_masses_gev(df)
    heavy = np.concatenate([m1, m2, m3])
    heavy = heavy[np.isfinite(heavy) & (heavy > 0)]
    lo, hi = (np.percentile(np.log10(heavy), [2.5, 97.5]) if heavy.size else (np.nan, np.nan))
    corr = np.corrcoef(np.log10(m1), np.log10(m3))[0, 1] if n > 2 and np.std(np.log10(m1)) > 0 and np.std(np.log10(m3)) > 0 else np.nan
    near = float(np.mean(_circular_distance_deg(df["alpha31"].to_numpy()) < NEAR_ZERO_DEG))
    band = float(np.mean(in_mbb_band(df["m1"].to_numpy(), df["m_bb"].to_numpy(), data)))
    sols = f"{n}" if samples is None else f"{n} in {samples:.3g} ({n / samples:.2g})"
    return {
        "solutions": sols,
        "Σm median [meV]": f"{np.median(m_sum):.1f}",
        "δCP quartiles 25/50/75 % [deg]": f"{q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f}",
        "heavy masses [GeV]": f"10^{lo:.2f}–10^{hi:.2f} (95 %), corr(log M1, log M3) {corr:.2f}",
        "α31 within 10° of 0": f"{100 * near:.1f} %",
        "m_ββ inside the NO band": f"{100 * band:.1f} %",
    }


def side_by_side(columns: dict[str, dict[str, str]]) -> str:
    """A Markdown table: one row per :data:`PAPER` quantity, the paper first, then ``columns``."""
    names = ["the paper", *columns]
    lines = ["| quantity | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in PAPER:
        lines.append(f"| {k} | {PAPER[k]} | " + " | ".join(c.get(k, "—") for c in columns.values()) + " |")
    return "\n".join(lines)


__all__ = ["NEAR_ZERO_DEG", "PAPER", "in_mbb_band", "side_by_side", "summary"]
