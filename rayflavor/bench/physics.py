"""Throughput of the exact physics: models evaluated per second on one core.

Every back end is timed on the same points: ``numba`` (the default: one fused compiled pass per
model, closed-form decompositions with a Jacobi fallback), ``jacobi`` (numpy composition around
compiled Jacobi kernels) and ``lapack`` (numpy construction + ``numpy.linalg.svd``, the
reference), so the speed-ups are measured in the same run.  The process is single-threaded
(numba kernels are serial; BLAS is not used).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from rayflavor.physics import fn, seesaw

BACKENDS = ("numba", "jacobi", "lapack")


def _time(f: Callable[[], object], min_seconds: float) -> float:
    """Best wall time of ``f`` over repeats lasting at least ``min_seconds`` in total."""
    f()  # warm-up (compilation, caches)
    best, spent = np.inf, 0.0
    while spent < min_seconds or best == np.inf:
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return best


def run(sizes: Iterable[int] = (1, 1000, 100_000), min_seconds: float = 1.0, seed: int = 0) -> list[dict]:
    """Rows ``{model, backend, batch, models_per_s}``."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        xs = seesaw.sample_prior(n, rng)
        xf = fn.random_parameters(n, rng, max_charge=4, log10_lambda_range=(12.0, 16.0))
        for model, func, x in (("seesaw", seesaw.evaluate, xs), ("fn", fn.evaluate, xf)):
            for backend in BACKENDS:
                dt = _time(lambda: func(x, backend=backend), min_seconds)
                rows.append({"model": model, "backend": backend, "batch": n, "models_per_s": n / dt})
    return rows


def format_rows(rows: list[dict]) -> str:
    head = "".join(f"{b + ' [1/s/core]':>20}" for b in BACKENDS)
    lines = [f"{'model':<8}{'batch':>9}{head}{'numba/lapack':>14}"]
    key = {(r["model"], r["batch"], r["backend"]): r["models_per_s"] for r in rows}
    for model in ("seesaw", "fn"):
        for n in sorted({r["batch"] for r in rows}):
            rates = [key[(model, n, b)] for b in BACKENDS]
            cells = "".join(f"{v:>20.3g}" for v in rates)
            lines.append(f"{model:<8}{n:>9}{cells}{rates[0] / rates[-1]:>14.1f}")
    return "\n".join(lines)
