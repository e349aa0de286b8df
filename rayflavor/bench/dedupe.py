"""A synthetic scan at any size, and the dedupe timed on it (``rayflavor bench cluster``).

:func:`synthetic_parts` writes schema-correct model rows as a committed scan, with a known number
of duplicates; :func:`bench_dedupe` times two dedupes of it in child processes (wall time and peak
resident memory).  The tests of the dedupe use the same synthetic scans.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from rayflavor.physics import fn
from rayflavor.storage.dedupe import DedupeError
from rayflavor.storage.island_store import IslandStore
from rayflavor.storage.location import Location, resolve
from rayflavor.storage.parquet import empty_table, to_table


def synthetic_models(n: int, rng: np.random.Generator, charges: np.ndarray, generation0: int = 0) -> dict[str, np.ndarray]:
    """``n`` model rows in the columns :meth:`Island.drain` gives (the input of
    :func:`~rayflavor.storage.parquet.to_table`) for the charge rows ``charges`` (n, 18):
    random continuous parameters, observables near their central values, exponents computed
    from the charges. Not physics -- a load of the right shape and types for benchmarks."""
    cols: dict[str, np.ndarray] = {}
    for k, name in enumerate(fn.CHARGES):
        cols[name] = charges[:, k].astype(np.int64)
    for name in fn.PARAMETERS[18:]:
        cols[name] = rng.uniform(0.5, 2.0, n)
    ref = empty_table()
    skip = set(fn.PARAMETERS) | {"island", "seed", "generation", "found_at"}
    exps = fn.exponents(charges)
    for k, name in enumerate(fn.EXPONENTS):
        cols[name] = exps[:, k]
    for f in ref.schema:
        if f.name in skip or f.name in cols:
            continue
        if f.name == "ordering":
            cols[f.name] = np.where(rng.random(n) < 0.8, "NO", "IO")
        elif pa.types.is_boolean(f.type):
            cols[f.name] = np.ones(n, dtype=bool)
        elif pa.types.is_integer(f.type):
            cols[f.name] = rng.integers(0, 20, n)
        else:
            cols[f.name] = rng.lognormal(0.0, 0.3, n)  # positive: masses, angles, dm2, losses
    cols["generation"] = generation0 + np.arange(n)
    cols["found_at"] = np.full(n, 1.7e9) + np.arange(n) * 1e-3
    return cols


def synthetic_parts(out: Location | str, n_rows: int, n_islands: int = 64, *, rows_per_part: int = 2_900,
                    duplicate_fraction: float = 0.2, seed: int = 0, only: range | None = None) -> dict:
    """Write ``n_rows`` synthetic, schema-correct model rows as a committed scan at ``out``:
    ``n_islands`` islands, parts of ``rows_per_part`` rows each (default: the average part of a
    6-hour 64-island scan, :data:`~rayflavor.storage.island_store.FLUSH_SECONDS`), committed
    through :class:`IslandStore` like a scan's.  Exactly ``round(n_rows * duplicate_fraction)``
    rows repeat the charge assignment of an earlier row (in any island), so a dedupe must find
    ``unique = n_rows - that``.  ``only``: write just these islands (the rows of each island do
    not depend on which others are written, so processes may split the work).
    Returns {"rows", "unique", "parts", "seconds"} (``parts``: written by this call)."""
    if not 0.0 <= duplicate_fraction < 1.0 or n_rows < 0 or n_islands < 1 or rows_per_part < 1:
        raise ValueError("synthetic_parts: need n_rows >= 0, n_islands >= 1, rows_per_part >= 1, 0 <= duplicate_fraction < 1")
    if n_rows >= 19**7:
        raise ValueError(f"synthetic_parts: at most {19**7 - 1} rows")
    out = resolve(out) if not isinstance(out, Location) else out
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(np.arange(-fn.MAX_CHARGE, fn.MAX_CHARGE + 1)) for _ in range(7)])
    n_dup = int(round(n_rows * duplicate_fraction))
    n_unique = n_rows - n_dup
    # row r carries assignment ids[r]: ids 0..n_unique-1 each once, then n_dup repeats of earlier ids
    ids = np.concatenate([np.arange(n_unique), rng.integers(0, max(n_unique, 1), n_dup)]) if n_rows else np.empty(0, np.int64)
    rng.shuffle(ids)
    per_island = np.array_split(ids, n_islands)
    n_parts = 0
    for i, island_ids in enumerate(per_island):
        if only is not None and i not in only:
            continue
        irng = np.random.default_rng([seed, i])
        store = IslandStore(out, i)
        gen = 0
        for start in range(0, len(island_ids), rows_per_part):
            chunk = island_ids[start:start + rows_per_part]
            q = _charges_for(chunk, perms, seed)
            table = to_table(synthetic_models(len(chunk), irng, q, gen), island=i, seed=seed + i)
            store.commit(table, {"generation": gen}, {"x": np.zeros(4)}, {"synthetic": True})
            gen += len(chunk)
            n_parts += 1
    return {"rows": n_rows, "unique": n_unique, "parts": n_parts, "seconds": time.perf_counter() - t0}


def _charges_for(ids: np.ndarray, perms: np.ndarray, seed: int) -> np.ndarray:
    """The charge row of each assignment id (a pure function of the id: duplicates repeat it)."""
    q = np.empty((len(ids), 18), dtype=np.int64)
    v = ids.astype(np.int64)
    # digits 0-6: the id itself (distinct ids -> distinct rows); 7-17: a hash of the id
    for k in range(7):
        q[:, k] = perms[k][v % 19]
        v = v // 19
    h = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    for k in range(7, 18):
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        q[:, k] = (h % np.uint64(19)).astype(np.int64) - fn.MAX_CHARGE
    return q


_CHILD = """
import json, resource, sys, time
from rayflavor.storage.dedupe import dedupe
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c = dedupe(sys.argv[1], sys.argv[2], compact=sys.argv[3] == "1")
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_mb": peak / 1024, "baseline_mb": base / 1024, "found": c.found,
                  "unique": c.unique, "damaged": c.damaged, "parts": c.parts, "compaction": c.compaction}))
"""


def time_dedupe(out: Location | str, data_name: str = fn.DEFAULT_DATA, *, compact: bool = True) -> dict:
    """Run :func:`~rayflavor.storage.dedupe.dedupe` on ``out`` in a child process; its wall time [s] and peak resident
    memory [MB] (``ru_maxrss`` of the child: polars allocates outside Python, so tracemalloc
    would miss it), ``baseline_mb`` (after imports), and the counts."""
    import json
    import subprocess
    import sys

    out = resolve(out) if not isinstance(out, Location) else out
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    res = subprocess.run([sys.executable, "-c", _CHILD, out.uri, data_name, "1" if compact else "0"],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise DedupeError(f"timed dedupe of {out.uri} failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_dedupe(n_rows: int, *, out: Location | str | None = None, n_islands: int = 64, rows_per_part: int = 2_900,
                 duplicate_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write ``n_rows`` synthetic rows (:func:`synthetic_parts`) to ``out`` (default: a new
    temporary directory, removed afterwards), then time two dedupes in child processes: the
    first compacts the parts (one per island) and dedupes, the second dedupes the compacted
    scan.  Returns {"rows", "parts", "write_seconds", "first": {...}, "second": {...}} with each
    dedupe's ``seconds``, ``peak_mb``, counts (:func:`time_dedupe`)."""
    import shutil

    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="rayflavor-bench-dedupe-")
        out = tmp
    try:
        w = synthetic_parts(out, n_rows, n_islands, rows_per_part=rows_per_part,
                            duplicate_fraction=duplicate_fraction, seed=seed)
        first = time_dedupe(out, compact=True)
        second = time_dedupe(out, compact=True)
        for r in (first, second):
            if r["found"] != n_rows or r["unique"] != w["unique"]:
                raise DedupeError(f"bench dedupe: found {r['found']} unique {r['unique']}, expected {n_rows} and {w['unique']}")
        return {"rows": n_rows, "unique": w["unique"], "parts": w["parts"], "islands": n_islands,
                "write_seconds": w["seconds"], "first": first, "second": second}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def bench_dedupe_table(sizes: Iterable[int], *, echo: Callable[[str], object] = print) -> None:
    """:func:`bench_dedupe` at each size in ``sizes`` (rows), one line of the table per size."""
    echo(f"{'rows':>10} {'parts':>6} {'write s':>8} {'dedupe s (compacting)':>22} {'peak MB':>8} "
         f"{'dedupe s (compacted)':>21} {'peak MB':>8} {'unique':>10}")
    for n in sizes:
        r = bench_dedupe(n)
        echo(f"{n:>10} {r['parts']:>6} {r['write_seconds']:>8.1f} {r['first']['seconds']:>22.1f} "
             f"{r['first']['peak_mb']:>8.0f} {r['second']['seconds']:>21.1f} {r['second']['peak_mb']:>8.0f} "
             f"{r['unique']:>10}")
