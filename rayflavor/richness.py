"""How much of the model space a scan has seen: species richness from independent islands.

Every island of a scan is an independent, seeded sample of the models its settings can reach.
Treat each island as one *sampling unit* and each physically distinct model (a light texture,
or a charge assignment) as a *species*; the record of which island found which species is
incidence data, and the incidence-based **Chao2** estimator (Chao 1987; Chao et al. 2005, the
form used by EstimateS) gives a lower-bound estimate of the number of species the same settings
would eventually find, with its uncertainty:

    S_obs  species found by any island,        m  islands (sampling units),
    Q1     species found by exactly one island, Q2  by exactly two,  A = (m - 1) / m,

    S_chao2 = S_obs + A Q1^2 / (2 Q2)                    (Q2 > 0)
            = S_obs + A Q1 (Q1 - 1) / 2                  (Q2 = 0, bias-corrected form)

    var = Q2 [ A/2 (Q1/Q2)^2 + A^2 (Q1/Q2)^3 + A^2/4 (Q1/Q2)^4 ]          (Q2 > 0)
        = A Q1 (Q1 - 1) / 2 + A^2 Q1 (2 Q1 - 1)^2 / 4 - A^2 Q1^4 / (4 S_chao2)   (Q2 = 0)

and the 95% interval is the log-normal one of Chao (1987), which never goes below S_obs:
``T = S_chao2 - S_obs``, ``K = exp(1.96 sqrt(ln(1 + var / T^2)))``, interval
``[S_obs + T / K, S_obs + T K]``.

Chao2 assumes the islands are independent draws, which seeded islands are (islands that exchange
migrants are not: docs/methods-fn.md#migration); it is a *lower
bound* when some species are much harder to find than others (heterogeneous detection), so the
honest reading is "at least this many, probably more". With very few islands (m < 5) or no
species found twice, the interval is wide; the estimate says so rather than hiding it. With one
island, or nothing found, there is no estimate. :func:`estimate_words` puts this into words, and
every figure, table and text output that shows the estimate uses them, so that none claims more
than the estimator gives (a share "seen" only beside its interval, never without an estimate).

**Repeats between islands** give a second, assumption-light figure: a lower bound on the number of
species that does not need any species found twice. ``n_i`` species found by island i give
``P = sum_{i<j} n_i n_j`` pairs of finds from two different islands, ``C = sum_s k_s (k_s - 1) / 2``
of which are repeats (``k_s`` islands found species s). If island i finds species s with
probability ``q_s`` scaled by its effort, the expected number of repeats is
``P * sum_s p_s^2`` (``p_s`` the share of species s among finds), and by Cauchy-Schwarz
``sum_s p_s^2 >= 1 / N`` for N species, with equality only when every species is equally easy to
find (heterogeneity makes repeats *more* likely).  So ``N >= P / E[C]``, and with ``E[C]`` at most
the one-sided 95% Poisson upper limit of the observed C (:func:`poisson_upper`; 3.0 for none):

    N  >=  P / poisson_upper(C)          (95%, :func:`repeat_bound`)

It assumes only independent islands with the same settings (the birthday problem, read
backwards); islands that exchanged points make repeats more likely, so the bound stays a lower
bound.  It is shown beside the Chao2 estimate when it exceeds the species found.

The **discovery curve** (distinct species against core-hours) uses the same records: islands run
side by side from a common start, so at island-time ``t`` the scan has spent
``sum_i min(t, T_i)`` core-seconds, ``T_i`` being island i's busy time.

Pure numpy statistics that import no other rayflavor module: the storage layer's dedupe prints
the estimate after every scan, and the analysis layer draws the discovery curve, so it sits below
both (docs/architecture.md).

>>> est = chao2([0, 0, 1, 1, 2], ["a", "b", "a", "c", "d"])
>>> est.observed, est.singletons, est.doubletons, est.units
(4, 3, 1, 3)
>>> round(est.estimate, 2)
7.0
>>> estimate_phrase(chao2([0, 0, 0], ["a", "b", "c"]))
'3 light textures found by 1 island; no estimate (needs >= 2 islands)'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Richness:
    """A species-richness estimate with its 95% interval (all counts of species)."""

    observed: int
    estimate: float
    std: float
    low: float
    high: float
    singletons: int  # Q1: found by exactly one island
    doubletons: int  # Q2: found by exactly two islands
    units: int  # m: islands that were sampled
    #: the islands exchanged points (migration or a shared restart archive): not independent
    #: sampling units, so the estimate is biased low and its interval too narrow
    dependent: bool = False
    #: the 95% lower bound from the repeats between islands (:func:`repeat_bound`; 0: not computed)
    at_least: float = 0.0

    @property
    def completeness(self) -> float:
        """Observed over estimated: the fraction of the reachable species already found. Shown
        only beside its interval and only when :attr:`has_estimate` (:func:`estimate_words`)."""
        return self.observed / self.estimate if self.estimate > 0 else 1.0  # nothing found, nothing estimated unseen

    @property
    def has_estimate(self) -> bool:
        """Whether the records support an estimate of the total: at least 2 islands and something found."""
        return self.units >= 2 and self.observed > 0

    def line(self, what: str = "light textures") -> str:
        """One line for ``rayflavor dedupe`` (and ``analyze``): :func:`estimate_phrase` with the
        counts behind it."""
        line = estimate_phrase(self, what)
        if self.has_estimate:
            line += (f"; Chao2 over {self.units} islands, {self.singletons} found by one island, "
                     f"{self.doubletons} by two")
        return line


def _count(x: float) -> str:
    """A number of species as text: whole numbers, 3 significant figures from 10^7 up."""
    return f"{x:.0f}" if x < 1e7 else f"{x:.3g}"


def _percent(x: float) -> int | str:
    """A fraction in whole percent, rounded down (never 100 before everything is seen, "<1" for a
    fraction below 1 % that is not 0)."""
    return "<1" if 0 < x < 0.01 else math.floor(100 * x + 1e-9)


def estimate_words(r: Richness) -> dict[str, str]:
    """The estimate of the total in words: the one place that decides what every figure, table and
    text output says about it.

    ``"found"``: the species found (``"96"``); ``"total"``: the estimate with its 95% interval
    (``"140 (95% interval 110-210)"``) or why there is none (``"no estimate (needs >= 2 islands)"``,
    ``"no estimate (nothing found)"``); ``"seen"``: the found fraction of the estimate with its
    interval (``"68% (45-87%)"``; ``""`` without an estimate: no share of a total that is not
    estimated); ``"caveat"``: what to read into an estimate from species none of which was found
    twice, or from islands that exchanged points (:attr:`Richness.dependent`; ``""`` otherwise). Percentages are rounded down.
    """
    if not r.has_estimate:
        why = "needs >= 2 islands" if r.units < 2 else "nothing found"
        return {"found": str(r.observed), "total": f"no estimate ({why})", "seen": "", "caveat": ""}
    total = f"{_count(r.estimate)} (95% interval {_count(r.low)}-{_count(r.high)})"
    # found / total: the interval of the total, upside down
    seen = f"{_percent(r.completeness)}% ({_percent(r.observed / r.high)}-{_percent(r.observed / r.low)}%)"
    caveats = (["none found twice: read the estimate as its order of magnitude"]
               if r.doubletons == 0 and r.singletons > 1 else [])
    if r.at_least > r.observed:
        caveats.append(f"at least {_count(r.at_least)} by the repeats between islands (95%)")
    if r.dependent:
        caveats.append("the islands exchanged points: read it as a loose lower bound")
    caveat = "; ".join(caveats)
    return {"found": str(r.observed), "total": total, "seen": seen, "caveat": caveat}


def estimate_phrase(r: Richness, what: str = "light textures") -> str:
    """The estimate as one phrase (:func:`estimate_words`), e.g. ``"96 light textures found;
    estimated total 140 (95% interval 110-210), 68% (45-87%) of it seen"`` or ``"96 light textures
    found by 1 island; no estimate (needs >= 2 islands)"``."""
    w = estimate_words(r)
    if not r.has_estimate:
        by = f"by {r.units} island{'s' if r.units != 1 else ''}"
        return f"{w['found']} {what} found {by}; {w['total']}"
    s = f"{w['found']} {what} found; estimated total {w['total']}, {w['seen']} of it seen"
    return f"{s}; {w['caveat']}" if w["caveat"] else s


def incidence_counts(units: np.ndarray, species: np.ndarray) -> tuple[np.ndarray, int]:
    """(for each distinct species, the number of distinct units that found it; number of units).

    ``units``, ``species``: one entry per record (e.g. per stored model: its island and its
    texture key). Repeats of a species within one unit count once (incidence, not abundance).
    """
    counts, per_unit = _incidence(units, species)
    return counts, len(per_unit)


def _incidence(units: np.ndarray, species: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(units per distinct species, distinct species per unit) from records, one pass of
    ``np.unique`` over the (species, unit) pairs."""
    units = np.asarray(units)
    species = np.asarray(species)
    if units.shape != species.shape[:1] and units.shape != species.shape:
        raise ValueError("units and species must have one entry per record")
    if units.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, u = np.unique(units, return_inverse=True)
    _, s = np.unique(species, return_inverse=True, axis=0 if species.ndim > 1 else None)
    pairs = np.unique(np.stack([s.ravel(), u.ravel()], axis=1), axis=0)
    return np.bincount(pairs[:, 0]), np.bincount(pairs[:, 1])


def poisson_upper(c: int, level: float = 0.95) -> float:
    """The one-sided ``level`` upper confidence limit of a Poisson mean from an observed count
    ``c``: the mean under which ``P(X <= c) = 1 - level`` (exact below 50 by bisection on the
    CDF, the Wilson-Hilferty form of the equivalent chi-square quantile above).

    >>> round(poisson_upper(0), 4), round(poisson_upper(1), 3)   # -ln 0.05; the tabulated 4.744
    (2.9957, 4.744)
    """
    if c < 0:
        raise ValueError(f"a count is not negative, got {c}")
    alpha = 1.0 - level
    if c >= 50:
        z = math.sqrt(2.0) * _erfinv(2.0 * level - 1.0)
        k = c + 1.0
        return k * (1.0 - 1.0 / (9.0 * k) + z / (3.0 * math.sqrt(k))) ** 3
    lo, hi = 0.0, 10.0 * (c + 1) + 10.0
    logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, c + 1)))]) if c else np.zeros(1)
    j = np.arange(c + 1)
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        cdf = float(np.exp(-lam + j * math.log(lam) - logfact).sum())
        lo, hi = (lam, hi) if cdf > alpha else (lo, lam)
    return 0.5 * (lo + hi)


def _erfinv(y: float) -> float:
    """The inverse error function by Newton steps on ``math.erf`` (``|y| < 1``)."""
    x = 0.0
    for _ in range(60):
        x -= (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def repeat_bound(counts: np.ndarray, per_unit: np.ndarray, level: float = 0.95) -> float:
    """The ``level`` lower bound on the number of species from the repeats between units (module
    docstring): ``P / poisson_upper(C)``, ``P`` the pairs of finds from two different units
    (``per_unit``: species found by each unit), ``C`` the repeats among them (``counts``: units
    per species, as :func:`incidence_counts` gives).  0 with fewer than 2 units that found anything.

    >>> repeat_bound(np.array([1, 1, 1, 1]), np.array([2, 2])) == 4 / poisson_upper(0)
    True
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = np.asarray(per_unit, dtype=np.float64)
    if np.count_nonzero(n) < 2:
        return 0.0
    pairs = (n.sum() ** 2 - (n**2).sum()) / 2.0
    repeats = int(round((counts * (counts - 1) / 2.0).sum()))
    return float(pairs / poisson_upper(repeats, level))


def chao2_from_counts(counts: np.ndarray, m: int, per_unit: np.ndarray | None = None) -> Richness:
    """Chao2 from per-species incidence counts (module docstring); ``m`` sampling units;
    ``per_unit``: species found by each unit, for the bound from repeats (:func:`repeat_bound`)."""
    at_least = 0.0 if per_unit is None else repeat_bound(counts, per_unit)
    return dataclasses.replace(_chao2(counts, m), at_least=at_least)


def _chao2(counts: np.ndarray, m: int) -> Richness:
    counts = np.asarray(counts, dtype=np.int64)
    s_obs = int(np.count_nonzero(counts))
    q1 = int(np.sum(counts == 1))
    q2 = int(np.sum(counts == 2))
    if m < 2 or s_obs == 0:
        return Richness(s_obs, float(s_obs), 0.0, float(s_obs), float(s_obs), q1, q2, m)
    a = (m - 1) / m
    if q2 > 0:
        s_hat = s_obs + a * q1 * q1 / (2.0 * q2)
        r = q1 / q2
        var = q2 * (a / 2 * r**2 + a**2 * r**3 + a**2 / 4 * r**4)
    else:
        s_hat = s_obs + a * q1 * (q1 - 1) / 2.0
        var = a * q1 * (q1 - 1) / 2 + a**2 * q1 * (2 * q1 - 1) ** 2 / 4 - a**2 * q1**4 / (4 * s_hat)
    var = max(var, 0.0)
    t = s_hat - s_obs
    if t <= 0 or var == 0:
        return Richness(s_obs, float(s_hat), math.sqrt(var), float(s_obs), float(s_hat), q1, q2, m)
    # log K = 1.96 sqrt(ln(1 + var / T^2)), in logs: var / T^2 over- or underflows for extreme counts
    log_ratio = math.log(var) - 2.0 * math.log(t)
    log1p = math.log1p(math.exp(log_ratio)) if log_ratio < 700 else log_ratio
    log_k = 1.96 * math.sqrt(log1p)
    low = s_obs + math.exp(math.log(t) - log_k)
    high = s_obs + math.exp(min(math.log(t) + log_k, 700.0))
    return Richness(s_obs, float(s_hat), math.sqrt(var), low, high, q1, q2, m)


def chao2(units, species, m: int | None = None) -> Richness:
    """Chao2 (with the bound from repeats) from records, one per stored model: the island that
    found it and its species key; ``m``: the sampling units, when islands that found nothing count
    too (default: the units in the records)."""
    counts, per_unit = _incidence(units, species)
    return chao2_from_counts(counts, len(per_unit) if m is None else m, per_unit)


def discovery_curve(units: np.ndarray, times: np.ndarray, species: np.ndarray,
                    busy: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(core-hours, distinct species found so far), one point per first discovery.

    ``times``: seconds since the start of the record's island at which it was found;
    ``busy``: each island's total busy seconds (default: its last record's time). Islands are
    taken to run side by side from a common start (module docstring).
    """
    units = np.asarray(units)
    times = np.asarray(times, dtype=np.float64)
    species = np.asarray(species)
    if units.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.argsort(times, kind="stable")
    _, s = np.unique(species, return_inverse=True, axis=0 if species.ndim > 1 else None)
    s = s.ravel()[order]
    _, first = np.unique(s, return_index=True)
    first = np.sort(first)
    t_first = times[order][first]
    ids = np.unique(units)
    if busy is None:
        busy = {i: times[units == i].max() for i in ids}
    b = np.array([float(busy[i]) for i in ids])
    core_s = np.minimum(t_first[:, None], b[None, :]).sum(axis=1)
    return core_s / 3600.0, np.arange(1, len(first) + 1)


__all__ = ["Richness", "chao2", "chao2_from_counts", "discovery_curve", "estimate_phrase", "estimate_words",
           "incidence_counts", "poisson_upper", "repeat_bound"]
