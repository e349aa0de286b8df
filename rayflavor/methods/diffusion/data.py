"""Tables of the diffusion method without I/O: dataset shards, the train/val split, training arrays.

Every table here is an Arrow table with the seesaw parameter columns (``seesaw.PARAMETERS``),
the observables of ``seesaw.evaluate`` and, for training sets, a ``split`` column of strings
(``train``/``val``) -- always typed ``string``, also when a table has no row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw

#: Fraction of every dataset shard and fine-tuning set held out for the validation loss.
VAL_FRACTION = 0.1


def split_column(n: int, rng: np.random.Generator, val_fraction: float = VAL_FRACTION) -> pa.Array:
    """``n`` strings, exactly ``round(val_fraction * n)`` of them ``val`` at random rows, the rest ``train``."""
    split = np.full(n, "train", dtype=object)
    split[rng.permutation(n)[: int(round(val_fraction * n))]] = "val"
    return pa.array(split.tolist(), pa.string())


def evaluated_table(x: np.ndarray, *, ordering: str = "NO", data: str = seesaw.DEFAULT_DATA) -> pa.Table:
    """The parameter points ``x`` (N, 23) and every 1-D observable of ``seesaw.evaluate``."""
    res = seesaw.evaluate(x, ordering=ordering, data=physics_data.load(data))
    cols = {name: x[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    return pa.table({k: np.asarray(v) for k, v in cols.items()})


def dataset_shard(n: int, seed: int, shard: int, *, data: str = seesaw.DEFAULT_DATA,
                  val_fraction: float = VAL_FRACTION) -> pa.Table:
    """Shard ``shard`` of a dataset: ``n`` prior points (eqs. 2.17-2.18) drawn with
    ``default_rng([seed, shard])``, their NO observables and labels, and a ``split`` column."""
    rng = np.random.default_rng([int(seed), int(shard)])
    x = seesaw.sample_prior(n, rng)
    t = evaluated_table(x, data=data)
    return t.append_column("split", split_column(n, rng, val_fraction))


def with_split(t: pa.Table, seed: int) -> pa.Table:
    """``t`` with a fresh 90/10 ``split`` column (seeded)."""
    return t.append_column("split", split_column(t.num_rows, np.random.default_rng(seed)))


def training_arrays(t: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, labels, is_val) of a table with the parameter, label and ``split`` columns; finite rows only."""
    g = np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1).astype(np.float64)
    lab = np.stack([t.column(c).to_numpy() for c in seesaw.LABELS], axis=1).astype(np.float64)
    val = np.asarray(t.column("split").to_pylist()) == "val"
    ok = np.isfinite(g).all(1) & np.isfinite(lab).all(1)
    return g[ok], lab[ok], val[ok]


def points(t: pa.Table) -> np.ndarray:
    """The parameter points of a table, (N, 23) float64."""
    return np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1).astype(np.float64)


def unique_points(t: pa.Table) -> pa.Table:
    """The rows of ``t`` with distinct seesaw parameter points (first occurrence, order kept)."""
    if t.num_rows == 0:
        return t
    _, first = np.unique(points(t), axis=0, return_index=True)
    return t.take(pa.array(np.sort(first)))


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def point_keys(g: np.ndarray) -> np.ndarray:
    """128-bit keys of the rows of ``g`` (N, D) float64, as (N, 2) uint64: equal rows (``-0.0 == 0.0``)
    get equal keys, different finite rows different keys except with probability ~N^2 / 2^128.

    Each value is mixed on its own (splitmix64 of its bits and its column), the two halves are sums
    of the mixed values with two sets of random odd multipliers, mixed again.

    >>> k = point_keys(np.array([[1.0, -0.0], [1.0, 0.0], [1.0, 2.0]]))
    >>> bool((k[0] == k[1]).all()), bool((k[0] == k[2]).all())
    (True, False)
    """
    cols = np.ascontiguousarray((np.asarray(g, dtype=np.float64) + 0.0).T).view(np.uint64)  # + 0.0: -0.0 -> 0.0
    d, n = cols.shape
    mult = np.random.default_rng(0x5EED).integers(0, 2**63, size=(2, d), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(d):
            m = _mix(cols[j] + np.uint64(0x9E3779B97F4A7C15) * np.uint64(j + 1))
            hi += m * mult[0, j]
            lo += m * mult[1, j]
        return np.stack([_mix(hi), _mix(lo)], axis=1)


class SeenPoints:
    """The parameter points met so far, as sorted 128-bit keys (:func:`point_keys`: 16 bytes per
    distinct point, never the rows), to keep the first occurrence of every point over a stream of
    tables: the same rows, in the same order, as :func:`unique_points` of their concatenation."""

    def __init__(self) -> None:
        self._hi = np.empty(0, np.uint64)
        self._lo = np.empty(0, np.uint64)

    def __len__(self) -> int:
        return len(self._hi)

    def first_rows(self, t: pa.Table) -> np.ndarray:
        """Indices (ascending) of the rows of ``t`` whose point was not met before, nor earlier in
        ``t``; they count as met from now on."""
        if t.num_rows == 0:
            return np.empty(0, np.int64)
        _, first = np.unique(points(t), axis=0, return_index=True)
        first = np.sort(first)
        keys = point_keys(points(t.take(pa.array(first))))
        left = np.searchsorted(self._hi, keys[:, 0], "left")
        right = np.searchsorted(self._hi, keys[:, 0], "right")
        new = right == left
        one = right - left == 1  # the high half met once: a duplicate unless the low half differs
        new[one] = self._lo[left[one]] != keys[one, 1]
        for i in np.flatnonzero(right - left > 1):  # the high half met more than once (almost never)
            new[i] = not (self._lo[left[i]:right[i]] == keys[i, 1]).any()
        hi = np.concatenate([self._hi, keys[new, 0]])
        order = np.argsort(hi, kind="stable")
        self._hi, self._lo = hi[order], np.concatenate([self._lo, keys[new, 1]])[order]
        return first[new]


def distinct_rows(g: np.ndarray, decimals: int = 6) -> int:
    """Number of distinct parameter rows after rounding to ``decimals`` decimal places.

    >>> distinct_rows(np.array([[0.1, 0.2], [0.1 + 1e-9, 0.2], [0.1, 0.3]]))
    2
    """
    return int(len(np.unique(np.round(np.asarray(g, dtype=np.float64), decimals), axis=0))) if len(g) else 0
