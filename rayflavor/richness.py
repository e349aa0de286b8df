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
migrants are not: docs/methods-fn.md#migration; islands that avoid each other's finds, a
scan-wide tabu, suppress the species found twice by design, and get no estimate); it is a *lower
bound* when some species are much harder to find than others (heterogeneous detection), so the
honest reading is "at least this many, probably more". With very few islands (m < 5) or no
species found twice, the interval is wide; the estimate says so rather than hiding it. With one
island, or nothing found, there is no estimate. :func:`estimate_words` puts this into words, and
every figure, table and text output that shows the estimate uses them, so that none claims more
than the estimator gives (a share "seen" only beside its interval, never without an estimate).

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
    #: the islands avoided each other's finds (a scan-wide tabu, ``share_found``): a species found
    #: by one island is steered away from by the others, so doubletons are suppressed by design
    #: and Chao2 does not apply at all (no estimate)
    avoided: bool = False

    @property
    def completeness(self) -> float:
        """Observed over estimated: the fraction of the reachable species already found. Shown
        only beside its interval and only when :attr:`has_estimate` (:func:`estimate_words`)."""
        return self.observed / self.estimate if self.estimate > 0 else 1.0  # nothing found, nothing estimated unseen

    @property
    def has_estimate(self) -> bool:
        """Whether the records support an estimate of the total: at least 2 islands, something
        found, and islands that did not avoid each other's finds."""
        return self.units >= 2 and self.observed > 0 and not self.avoided

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
        why = ("needs >= 2 islands" if r.units < 2 else "nothing found" if r.observed == 0
               else "the islands avoided each other's finds")
        return {"found": str(r.observed), "total": f"no estimate ({why})", "seen": "", "caveat": ""}
    total = f"{_count(r.estimate)} (95% interval {_count(r.low)}-{_count(r.high)})"
    # found / total: the interval of the total, upside down
    seen = f"{_percent(r.completeness)}% ({_percent(r.observed / r.high)}-{_percent(r.observed / r.low)}%)"
    caveats = (["none found twice: read the estimate as its order of magnitude"]
               if r.doubletons == 0 and r.singletons > 1 else [])
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
    units = np.asarray(units)
    species = np.asarray(species)
    if units.shape != species.shape[:1] and units.shape != species.shape:
        raise ValueError("units and species must have one entry per record")
    if units.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    _, u = np.unique(units, return_inverse=True)
    _, s = np.unique(species, return_inverse=True, axis=0 if species.ndim > 1 else None)
    u, s = u.ravel(), s.ravel()
    pairs = np.unique(np.stack([s, u], axis=1), axis=0)
    return np.bincount(pairs[:, 0]), int(u.max()) + 1


def chao2_from_counts(counts: np.ndarray, m: int) -> Richness:
    """Chao2 from per-species incidence counts (module docstring); ``m`` sampling units."""
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


def chao2(units, species) -> Richness:
    """Chao2 from records (one per stored model: the island that found it and its species key)."""
    counts, m = incidence_counts(np.asarray(units), np.asarray(species))
    return chao2_from_counts(counts, m)


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
           "incidence_counts"]
