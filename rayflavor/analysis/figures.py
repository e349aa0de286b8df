"""Figures of FN scans (FN paper figs. 3-7) and diffusion runs (diffusion paper figs. 2-5).

Every band and limit line comes from the data file (:mod:`rayflavor.physics.bands`,
``DataSet.bound``), never from constants here.  Figures are sized for A4 width (7 in) with
labelled axes and units; quantities spanning decades are on log axes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from rayflavor.physics import bands, fn, seesaw  # noqa: E402
from rayflavor.physics.data import DataSet  # noqa: E402

A4_WIDTH = 7.0
ORDER_COLOURS = {"NO": "tab:blue", "IO": "tab:orange"}
REGIME_COLOURS = {"up": "tab:red", "down": "tab:green"}
plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "figure.dpi": 150})


def require_data(kind: str, data: DataSet) -> None:
    """Raise :class:`~rayflavor.physics.data.DataError` (one line) before any drawing when ``data``
    lacks what the figures of ``kind`` (``"fn"``/``"seesaw"``) need: the band inputs of each
    ordering drawn, the central values used, the limit lines."""
    probe = np.array([1e-3])
    if kind == "fn":
        data.require(fn.MASSES, positive=fn.MASSES)
        for ordering in ("NO", "IO"):
            bands.mee_band(data, ordering, probe, samples=2)
        return
    bands.mee_band(data, "NO", probe, n_sigma=2.0, samples=2)
    for name in ("dm21", "dm3l", "sin2_theta12", "sin2_theta13"):
        data.get(name, "NO")
    for name in ("m_bb", "m_sum", "m_beta"):
        data.bound(name)


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite entries (a histogram of a NaN or inf fails; scatter plots drop them themselves)."""
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def hist_bins(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` bin edges over the finite ``values``, always ``n + 1`` finite, strictly increasing
    numbers.  numpy's own edges fail ("Too many bins for data range") when the values' spread is
    a few units in their last place, as for a phase found twice at 180 degrees up to rounding; such
    a spread (below 10^-9 of the values' size) gets a window of 10^-3 of it around the values
    instead.  No finite value: edges around 0."""
    v = _finite(values)
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 0.0)
    scale = max(abs(lo), abs(hi), 1.0)
    if hi / 2 - lo / 2 <= 5e-10 * scale:  # halves: hi - lo itself may overflow
        big = np.finfo(np.float64).max
        mid, half = lo / 2 + hi / 2, 5e-4 * scale
        lo, hi = max(mid - half, -big), min(mid + half, big)
    t = np.linspace(0.0, 1.0, n + 1)
    edges = lo * (1.0 - t) + hi * t  # a convex combination: finite wherever lo and hi are
    edges[0], edges[-1] = lo, hi
    return edges


def _save(fig, out: Path, name: str, fmt: str) -> Path:
    path = out / f"{name}.{fmt}"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def mee_bands(data: DataSet, n_sigma: float = 3.0, orderings=("NO", "IO")) -> dict:
    """``{ordering: (grid, lo, hi)}``: the allowed m_ee region, computed once per figure set."""
    grid = np.logspace(-5, 0, 80)
    return {o: (grid, *bands.mee_band(data, o, grid, n_sigma=n_sigma)) for o in orderings}


def _mee_frame(ax, data: DataSet, allowed: dict, n_sigma: float = 3.0) -> None:
    for ordering, (grid, lo, hi) in allowed.items():
        ax.fill_between(grid, lo, hi, color=ORDER_COLOURS[ordering], alpha=0.15, lw=0,
                        label=f"{ordering} allowed ({n_sigma:g}$\\sigma$)")
    if "m_lightest" in data.bounds:
        ax.axvline(data.bound("m_lightest"), color="k", ls="--", lw=1, label="cosmology")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-5, 1)
    ax.set_xlabel(r"lightest neutrino mass $m_\mathrm{lightest}$ [eV]")
    ax.set_ylabel(r"$m_{ee}$ [eV]")


def fn_figures(frame: pl.LazyFrame, data: DataSet, out: Path, fmt: str = "png") -> list[Path]:
    """The FN paper's figs. 3-7 from a lazy frame of valid models."""
    from rayflavor.analysis.summary import fn_columns

    cols = ["m_lightest", "m_ee", "ordering", "regime", "max_exponent", "max_mass_error",
            "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "pmns_alpha1", "pmns_alpha2"]
    df = fn_columns(frame, data).select(cols).collect()
    paths = []
    allowed = mee_bands(data)

    def plane(name, title, draw):
        fig, ax = plt.subplots(figsize=(A4_WIDTH, 0.7 * A4_WIDTH))
        _mee_frame(ax, data, allowed)
        draw(ax)
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        paths.append(_save(fig, out, name, fmt))

    def by_category(column, colours, label):
        def draw(ax):
            for key, colour in colours.items():
                sub = df.filter(pl.col(column) == key)
                ax.scatter(sub["m_lightest"], sub["m_ee"], s=6, color=colour, label=f"{label} {key} ({sub.height})")
        return draw

    plane("fn_mee_ordering", f"{df.height} models by neutrino ordering", by_category("ordering", ORDER_COLOURS, ""))
    plane("fn_mee_regime", "models by leading flavon", by_category("regime", REGIME_COLOURS, "leading"))

    def by_exponent(ax):
        d = df.sort("max_exponent", descending=True)  # smallest maximal exponent drawn last, on top
        sc = ax.scatter(d["m_lightest"], d["m_ee"], s=6, c=d["max_exponent"], cmap="viridis_r")
        plt.colorbar(sc, ax=ax, label=r"maximal flavon exponent $\max n_{ij}$")

    plane("fn_mee_max_exponent", "models by maximal flavon exponent (smallest on top)", by_exponent)

    def by_error(ax):
        d = df.sort("max_mass_error", descending=True)
        sc = ax.scatter(d["m_lightest"], d["m_ee"], s=6, c=100 * d["max_mass_error"], cmap="plasma_r")
        plt.colorbar(sc, ax=ax, label="maximal relative charged-mass error [%]")

    plane("fn_mee_mass_error", "models by charged-fermion mass accuracy", by_error)
    paths.append(corner(df, ["pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "pmns_alpha1", "pmns_alpha2"],
                        [r"$\theta_{12}$ [deg]", r"$\theta_{13}$ [deg]", r"$\theta_{23}$ [deg]", r"$\delta$ [deg]",
                         r"$\alpha_1$ [deg]", r"$\alpha_2$ [deg]"], out, "fn_pmns_corner", fmt, colour_by="ordering"))
    return paths


def corner(df: pl.DataFrame, columns, labels, out: Path, name: str, fmt: str, colour_by: str | None = None) -> Path:
    """Pairwise scatter plots with histograms on the diagonal."""
    k = len(columns)
    fig, axes = plt.subplots(k, k, figsize=(A4_WIDTH, A4_WIDTH), squeeze=False)
    groups = [(None, df, "tab:blue")] if colour_by is None else [
        (g, df.filter(pl.col(colour_by) == g), ORDER_COLOURS.get(g, "tab:gray")) for g in sorted(df[colour_by].unique())
    ]
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            for g, sub, colour in groups:
                if i == j:
                    x = _finite(sub[columns[i]].to_numpy())
                    ax.hist(x, bins=hist_bins(x, 30), color=colour, alpha=0.6, label=g)
                else:
                    ax.scatter(sub[columns[j]], sub[columns[i]], s=2, color=colour)
            if i == k - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=8)
            elif j > 0 or i == 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=6)
    if colour_by is not None:
        axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle("PMNS predictions with Majorana phases")
    return _save(fig, out, name, fmt)


def heavy_masses_gev(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|M1|, |M2|, M3 [GeV] from the seesaw columns: M3 = v^2 / 10^{log10_h2_over_m3_ev} with <H> = v."""
    m3 = (fn.V_HIGGS_GEV**2) / (10.0 ** df["log10_h2_over_m3_ev"].to_numpy() * 1e-9)
    return df["m1_over_m3"].to_numpy() * m3, df["m2_over_m3"].to_numpy() * m3, m3


def seesaw_figures(frame: pl.LazyFrame, data: DataSet, out: Path, fmt: str = "png") -> list[Path]:
    """The diffusion paper's figs. 2-5 from a lazy frame of solutions; colour = chi2 (eq. 2.22)."""
    cols = list(seesaw.PARAMETERS[18:]) + ["chi2", "delta_cp", "m_sum", "sin2_theta23", "alpha31", "m_bb", "m_beta"]
    df = frame.select(cols).collect()
    chi2 = df["chi2"].to_numpy()
    paths = []
    m1, m2, m3 = heavy_masses_gev(df)
    fig, axes = plt.subplots(1, 3, figsize=(A4_WIDTH, 0.36 * A4_WIDTH))
    fig.subplots_adjust(wspace=0.5, right=0.86, bottom=0.2, top=0.85)
    masses = _finite(np.concatenate([m1, m2, m3]))
    masses = masses[masses > 0]  # log axes
    lo_all = masses.min() if masses.size else 1e9
    hi_all = masses.max() if masses.size else 1e16
    lim = (lo_all / 5, hi_all * 5)
    for ax, (x, y, xl, yl) in zip(axes, [(m1, m2, "|M_1|", "|M_2|"), (m1, m3, "|M_1|", "M_3"), (m2, m3, "|M_2|", "M_3")]):
        ax.fill_between(lim, lim, [lim[0], lim[0]], color="0.85", lw=0)  # below the diagonal: y < x, forbidden
        sc = ax.scatter(x, y, s=6, c=chi2, cmap="viridis")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(f"${xl}$ [GeV]")
        ax.set_ylabel(f"${yl}$ [GeV]")
    fig.colorbar(sc, cax=fig.add_axes([0.89, 0.2, 0.02, 0.65]), label=r"$\chi^2$ (eq. 2.22)")
    fig.suptitle(r"heavy-neutrino masses (grey: violates $|M_1| \leq |M_2| \leq M_3$)")
    paths.append(_save(fig, out, "seesaw_heavy_masses", fmt))

    fig, axes = plt.subplots(1, 2, figsize=(A4_WIDTH, 0.45 * A4_WIDTH), constrained_layout=True)
    delta = np.degrees(df["delta_cp"].to_numpy())
    axes[0].scatter(1e3 * df["m_sum"].to_numpy(), delta, s=6, c=chi2, cmap="viridis")
    axes[0].set_xlabel(r"$\sum m_i$ [meV]")
    axes[0].set_ylabel(r"$\delta_{CP}$ [deg]")
    sc = axes[1].scatter(np.degrees(np.arcsin(np.sqrt(df["sin2_theta23"].to_numpy()))), delta, s=6, c=chi2, cmap="viridis")
    axes[1].set_xlabel(r"$\theta_{23}$ [deg]")
    fig.colorbar(sc, ax=axes, label=r"$\chi^2$")
    paths.append(_save(fig, out, "seesaw_delta", fmt))

    fig, ax = plt.subplots(figsize=(A4_WIDTH / 2, 0.35 * A4_WIDTH))
    ax.hist(_finite(np.degrees(df["alpha31"].to_numpy())), bins=36, range=(0, 360), color="tab:blue")
    ax.set_xlabel(r"$\alpha_{31}$ [deg]")
    ax.set_ylabel("solutions")
    paths.append(_save(fig, out, "seesaw_alpha31", fmt))

    fig, axes = plt.subplots(1, 2, figsize=(A4_WIDTH, 0.45 * A4_WIDTH), constrained_layout=True)
    grid = np.logspace(-4, 0, 80)
    lo, hi = bands.mee_band(data, "NO", grid, n_sigma=2.0)
    dm21, dm3l = data.get("dm21", "NO").central, data.get("dm3l", "NO").central
    msum = grid + np.sqrt(grid**2 + dm21) + np.sqrt(grid**2 + dm3l)
    s12, s13 = data.get("sin2_theta12", "NO").central, data.get("sin2_theta13", "NO").central
    mbeta = np.sqrt(grid**2 * (1 - s12) * (1 - s13) + (grid**2 + dm21) * s12 * (1 - s13) + (grid**2 + dm3l) * s13)
    for ax, x, band_x, xl, bound in ((axes[0], df["m_sum"], msum, r"$\sum m_i$ [eV]", "m_sum"),
                                     (axes[1], df["m_beta"], mbeta, r"$m_\beta$ [eV]", "m_beta")):
        ax.fill_between(band_x, lo, hi, color="tab:blue", alpha=0.15, lw=0, label="NO allowed (95%)")
        sc = ax.scatter(x, df["m_bb"], s=6, c=chi2, cmap="viridis")
        ax.axhline(data.bound("m_bb"), color="k", ls=":", lw=1, label=r"$m_{\beta\beta}$ limit")
        ax.axvline(data.bound(bound), color="k", ls="--", lw=1, label="limit")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(r"$m_{\beta\beta}$ [eV]")
        ax.legend(fontsize=7, loc="lower right")
    fig.colorbar(sc, ax=axes, label=r"$\chi^2$")
    paths.append(_save(fig, out, "seesaw_mbb", fmt))
    return paths
