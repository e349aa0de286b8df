"""Migration between NSGA-III islands: the pure policy of an archipelago (numpy only, no Ray).

The design follows pygmo's archipelago (``pygmo.archipelago``, ``pygmo.topology``,
``s_policy``/``r_policy``): islands on the vertices of a *topology* exchange individuals along
its edges; a *selection policy* picks an island's emigrants ("select best"), a *replacement
policy* merges the immigrants it receives ("fair replace": an immigrant replaces the worst member
only if it is better).  This module holds those pieces; the exchange itself (who holds the
emigrants, who receives what, when) is the scan driver's
(:mod:`rayflavor.orchestration.migration`).

Topologies (:data:`TOPOLOGIES`), on islands ``0 .. n-1``:

``none``
    no edges: independent islands (the FN paper's setting, and the default);
``ring``
    island ``i`` exchanges with ``i - 1`` and ``i + 1`` (mod ``n``), both ways (pygmo's ``ring``);
``full``
    every island with every other (pygmo's ``fully_connected``).

"Best" and "worst" are by the sum of an island's survival objectives (the shaped residuals for
the fast engine, with the tabu penalty on found models; the paper's losses for the paper engine):
the same ranking an island's restart uses to keep its best points.  Every random choice takes a
generator from :func:`stream`, seeded by the island's seed, so a migration is reproducible from
the seeds and the order of the batches received.

>>> [neighbours("ring", 4, i) for i in range(4)]
[(1, 3), (0, 2), (1, 3), (0, 2)]
>>> neighbours("full", 3, 1), neighbours("none", 3, 1)
((0, 2), ())
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

TOPOLOGIES = ("none", "ring", "full")
#: tags of the random streams of :func:`stream` (ASCII "immi", "arch"): apart from every other
#: stream an island draws (its runs use ``SeedSequence(seed)`` and ``SeedSequence(seed, spawn_key=(k,))``)
IMMIGRATION = 0x696D6D69
ARCHIVE = 0x61726368


def neighbours(topology: str, n: int, i: int) -> tuple[int, ...]:
    """The islands island ``i`` of ``n`` exchanges migrants with (sorted; never ``i`` itself)."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"unknown topology {topology!r} (use {', '.join(TOPOLOGIES)})")
    if not 0 <= i < n:
        raise ValueError(f"island {i} is not one of {n} islands")
    if topology == "none" or n < 2:
        return ()
    if topology == "ring":
        return tuple(sorted({(i - 1) % n, (i + 1) % n} - {i}))
    return tuple(j for j in range(n) if j != i)


def sources(topology: str, n: int, i: int, posted: Iterable[int]) -> list[int]:
    """Which of the islands in ``posted`` (those holding emigrants now) send to island ``i``,
    sorted: :func:`neighbours` without building the full list for a large ``full`` archipelago."""
    if topology == "full":
        return sorted(j for j in posted if j != i and 0 <= j < n)
    near = set(neighbours(topology, n, i))
    return sorted(j for j in posted if j in near)


def stream(seed: int, tag: int, k: int) -> np.random.Generator:
    """The random generator of the ``k``-th draw of kind ``tag`` of the island with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(tag), int(k)]))


def best_distinct(loss: np.ndarray, keys: list[bytes], n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of up to ``n`` rows with the smallest finite ``loss``, at most one per key (a
    charge assignment), none of them ``exclude``-d; best first, ties in row order ("select best").

    >>> best_distinct(np.array([3.0, 1.0, 2.0, 0.5]), [b"a", b"b", b"b", b"c"], 2).tolist()
    [3, 1]
    """
    loss = np.asarray(loss, dtype=np.float64)
    rows, seen = [], set()
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    for i in np.argsort(loss, kind="stable"):
        if (exclude is not None and exclude[i]) or keys[i] in seen or not np.isfinite(loss[i]):
            continue
        seen.add(keys[i])
        rows.append(i)
        if len(rows) == n:
            break
    return np.asarray(rows, dtype=np.int64)


def fair_replace(pop_loss: np.ndarray, new_loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pygmo's "fair replace": the best immigrants take the places of the worst members, each
    only if strictly better.  Returns ``(members, immigrants)``: member ``members[k]`` is
    replaced by immigrant ``immigrants[k]``.  Ties are broken by row order (deterministic).

    >>> fair_replace(np.array([1.0, 9.0, 5.0]), np.array([4.0, 0.0, 7.0]))
    (array([1, 2]), array([1, 0]))
    """
    pop_loss, new_loss = np.asarray(pop_loss, np.float64), np.asarray(new_loss, np.float64)
    worst = np.argsort(-pop_loss, kind="stable")  # worst first
    best = np.argsort(new_loss, kind="stable")  # best first
    k = min(len(worst), len(best))
    better = new_loss[best[:k]] < pop_loss[worst[:k]]
    # both orders are monotone, so once an immigrant is not better none after it is
    m = int(np.argmin(better)) if not better.all() else k
    return worst[:m], best[:m]


def choose(n_available: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``min(n, n_available)`` distinct indices of ``range(n_available)`` drawn with ``rng``
    (all of them, in order, when there are no more than ``n``)."""
    if n_available <= n:
        return np.arange(n_available)
    return np.sort(rng.choice(n_available, size=n, replace=False))


def merge_archive(X: np.ndarray, loss: np.ndarray, keys: list[bytes], X_new: np.ndarray, loss_new: np.ndarray,
                  keys_new: list[bytes], size: int) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """A scan-wide archive of near-valid points: the ``size`` rows of smallest loss among the old
    and the new ones, one per key (a charge assignment; an old row wins a tie).  Returns the new
    ``(X, loss, keys)``, best first."""
    X_new = np.asarray(X_new, np.float64)
    allX = np.concatenate([np.asarray(X, np.float64).reshape(-1, X_new.shape[1]), X_new])
    all_loss = np.concatenate([np.asarray(loss, np.float64), np.asarray(loss_new, np.float64)])
    all_keys = [*keys, *keys_new]
    rows = best_distinct(all_loss, all_keys, size)
    return allX[rows], all_loss[rows], [all_keys[r] for r in rows]


__all__ = ["ARCHIVE", "IMMIGRATION", "TOPOLOGIES", "best_distinct", "choose", "fair_replace", "merge_archive",
           "neighbours", "sources", "stream"]
