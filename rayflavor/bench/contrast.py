"""The FN paper's IO m_ee contrast as a measured two-sample test over seeds.

The paper (arXiv:2606.20000, sec. IV) says inverted-ordering models have larger m_ee in the
down-leading regime than in the up-leading one.  :func:`run_contrast` (``rayflavor bench findings
--contrast io-mee``) runs the ``io-up`` and ``io-down`` recipe scans once per seed, interleaved (up
seed k, down seed k, up seed k+1, ...); like the findings scans, a finished scan is kept and an
interrupted one resumed.  Seed ``k`` is the base seed ``seed + k * islands``, so no island seed is
shared between two sampling units.  Seed 0 is the findings' own ``OUT/io-up`` and ``OUT/io-down``
scan (the same command), the others go to ``OUT/contrast-io-mee/<scan>-seed<S>``.

Each finished scan is one sampling unit: the median m_ee [eV] of its valid IO models.  A seed whose
scan found no IO model is reported and left out.  :func:`compare` tests the per-seed medians of the
two regimes with the exact two-sided Mann-Whitney U test
(:func:`rayflavor.analysis.two_sample.mann_whitney`) and gives the difference of the regimes'
medians (down - up) with a 95 % bootstrap interval; the verdict reads "supported" when p < 0.05
and the down-leading medians tend to be larger, "opposite" when p < 0.05 and they tend to be
smaller, "not supported" otherwise.

>>> r = compare({1: 0.017, 2: 0.018, 3: 0.016}, {1: 0.020, 2: 0.021, 3: None})
>>> r["n"], r["left_out"], round(r["p"], 3)
({'up': 3, 'down': 2}, {'up': [], 'down': [3]}, 0.2)
>>> r["verdict"]
'down-leading IO m_ee larger: not supported, p = 0.2 (2 down-leading and 3 up-leading seeds)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from rayflavor.analysis.two_sample import mann_whitney, median_difference_ci
from rayflavor.bench.findings import RecipeError, run_recipe, scan_status

#: significance level of the verdict
ALPHA = 0.05


@dataclass(frozen=True)
class Contrast:
    """A two-regime contrast: the recipe scans of each regime and the models whose m_ee is compared."""

    key: str
    claim: str  # what "supported" means, the start of the verdict line
    up: str  # recipe scan of the up-leading regime
    down: str  # recipe scan of the down-leading regime
    ordering: str  # the models compared


CONTRASTS: dict[str, Contrast] = {
    "io-mee": Contrast("io-mee", "down-leading IO m_ee larger", "io-up", "io-down", "IO"),
}


def contrast_seeds(seed: int, seeds: int, islands: int) -> list[int]:
    """The base seeds of the ``seeds`` sampling units: ``seed + k * islands`` (island ``i`` of a scan
    runs with its base seed + i, so the units share no island seed)."""
    return [seed + k * islands for k in range(seeds)]


def contrast_dir(loc, key: str, scan: str, seed: int, base_seed: int):
    """Where the contrast ``key`` keeps recipe scan ``scan`` of base seed ``seed``: the findings'
    scan ``loc / scan`` (the same command) for the run's ``base_seed``, else its own directory."""
    return loc / scan if seed == base_seed else loc / f"contrast-{key}" / f"{scan}-seed{seed}"


def seed_median(models: pl.DataFrame, ordering: str) -> tuple[int, float | None]:
    """How many of a scan's valid models have ``ordering``, and their median m_ee [eV] (None: none)."""
    mee = models.filter(pl.col("ordering") == ordering)["m_ee"]
    return mee.len(), (float(mee.median()) if mee.len() else None)


def compare(up: dict[int, float | None], down: dict[int, float | None], *, claim: str = CONTRASTS["io-mee"].claim,
            alpha: float = ALPHA) -> dict:
    """The two-sample comparison of per-seed medians (seed -> median m_ee [eV], None for a seed
    without such models, which is left out): n per regime, the median of each regime's per-seed
    medians, the effect ``median(down) - median(up)`` with a 95 % bootstrap interval, the exact
    two-sided Mann-Whitney p-value, ``prob_down_greater`` (U / (n_down n_up)) and the verdict line."""
    kept = {r: {s: v for s, v in d.items() if v is not None} for r, d in (("up", up), ("down", down))}
    left = {r: sorted(s for s, v in d.items() if v is None) for r, d in (("up", up), ("down", down))}
    n = {r: len(v) for r, v in kept.items()}
    out = {"n": n, "left_out": left, "per_seed": {"up": dict(up), "down": dict(down)},
           "median": {r: (float(np.median(list(v.values()))) if v else None) for r, v in kept.items()},
           "effect": None, "effect_ci": None, "p": None, "prob_down_greater": None}
    if not (n["up"] and n["down"]):
        missing = " and ".join(f"{r}-leading" for r in ("down", "up") if not n[r])
        out["verdict"] = f"{claim}: not testable (no seed with such a model {missing})"
        return out
    a, b = list(kept["down"].values()), list(kept["up"].values())
    test = mann_whitney(a, b)
    out.update(effect=out["median"]["down"] - out["median"]["up"], effect_ci=list(median_difference_ci(a, b)),
               p=test.p, prob_down_greater=test.prob_a_greater)
    if test.p < alpha:
        word = "supported" if test.prob_a_greater > 0.5 else "opposite"
    else:
        word = "not supported"
    out["verdict"] = (f"{claim}: {word}, p = {test.p:.2g} ({n['down']} down-leading and {n['up']} up-leading seeds)")
    return out


def format_contrast(result: dict, contrast: Contrast) -> list[str]:
    """The lines :func:`run_contrast` prints: one per seed, the sample sizes, medians, effect, p and verdict."""
    def g(v, unit=""):
        return "none" if v is None else f"{v:.4g}{unit}"

    lines = [f"seed | {contrast.up}: median m_ee of {contrast.ordering} models [eV] | {contrast.down}: the same"]
    for s in sorted(set(result["per_seed"]["up"]) | set(result["per_seed"]["down"])):
        lines.append(f"{s} | {g(result['per_seed']['up'].get(s))} | {g(result['per_seed']['down'].get(s))}")
    n, m = result["n"], result["median"]
    lines.append(f"n (seeds with {contrast.ordering} models): {n['up']} up-leading, {n['down']} down-leading; "
                 f"median of the per-seed medians: {g(m['up'], ' eV')} up, {g(m['down'], ' eV')} down")
    left = [f"{r}-leading seed(s) {', '.join(map(str, s))}" for r, s in result["left_out"].items() if s]
    if left:
        lines.append(f"left out (no {contrast.ordering} model): " + "; ".join(left))
    if result["p"] is not None:
        lo, hi = result["effect_ci"]
        lines.append(f"effect, down - up: {result['effect']:+.3g} eV (95% bootstrap interval {lo:+.3g} to {hi:+.3g}); "
                     f"P(down > up) = {result['prob_down_greater']:.2f}; exact two-sided Mann-Whitney U: "
                     f"p = {result['p']:.3g}")
    lines.append(result["verdict"])
    return lines


def run_contrast(loc, key: str, *, seeds: int, islands: int, time_limit: str, seed: int, address: str | None,
                 dry_run: bool, echo: Callable[[str], object] = print, ran: tuple[str, ...] = ()) -> dict | None:
    """Run contrast ``key`` (:data:`CONTRASTS`) over ``seeds`` seeds per regime into ``loc`` (module
    docstring), print it and write ``contrast-<key>.json`` into ``loc``; returns :func:`compare`'s
    result (None for a dry run).  ``ran``: the recipe scans the findings ran just before into ``loc``
    (a dry run then names seed 0's scans instead of printing their commands twice).  RecipeError if a
    scan fails or cannot be read."""
    c = CONTRASTS[key]
    units = contrast_seeds(seed, seeds, islands)
    for s in units:
        for scan in (c.up, c.down):
            if dry_run and s == seed and scan in ran:
                echo(f"{scan} seed {s}: the findings' own scan above ({(loc / scan).uri})")
                continue
            run_recipe(contrast_dir(loc, key, scan, s, seed), scan, islands=islands, time_limit=time_limit, seed=s,
                       address=address, dry_run=dry_run, echo=echo, label=f"{scan} seed {s}")
    if dry_run:
        return None
    medians: dict[str, dict[int, float | None]] = {c.up: {}, c.down: {}}
    counts: dict[str, dict[int, int]] = {c.up: {}, c.down: {}}
    for scan in (c.up, c.down):
        for s in units:
            sub = contrast_dir(loc, key, scan, s, seed)
            state = scan_status(sub)
            if state != "finished":
                raise RecipeError(f"{sub.uri}: not a finished scan (status {state}); rerun the same command to resume it")
            models = pl.read_parquet((sub / "models.parquet").read_bytes(), columns=["ordering", "m_ee"])
            counts[scan][s], medians[scan][s] = seed_median(models, c.ordering)
    result = compare(medians[c.up], medians[c.down], claim=c.claim)
    result.update(contrast=key, counts={"up": counts[c.up], "down": counts[c.down]}, islands=islands,
                  time_limit=time_limit, seeds=units)
    for line in format_contrast(result, c):
        echo(line)
    (loc / f"contrast-{key}.json").write_json(result)
    return result


__all__ = ["ALPHA", "CONTRASTS", "Contrast", "compare", "contrast_dir", "contrast_seeds", "format_contrast",
           "run_contrast", "seed_median"]
