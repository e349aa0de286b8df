"""The driver's peak memory while ``collect_solutions`` gathers the solutions of a large sample set.

    python jobs/bench_collect.py [--n 1000000] [--shards 20] [--fraction 0.77] [--work DIR]

Writes a run with ``--n`` samples in ``--shards`` parts (the shard size of ``rayflavor diffusion
sample``: 50 000 samples) and a ``solution`` flag on a ``--fraction`` of the rows (0.77: the
chain's final sample, docs/experiments.md), then collects them twice, each time in a fresh process:

* ``streamed``: :func:`rayflavor.orchestration.diffusion_sample.collect_solutions` (part by part);
* ``in-memory``: the collection as it was before it streamed (every part's solution rows
  concatenated, deduplicated, written in one piece), kept here as the baseline.

Per variant: the peak RSS of the process minus its RSS after the imports (MiB), the peak of
Arrow's memory pool (MiB), the rows written and the wall time; and whether the two files are equal.
The rows are real seesaw points and observables: ``block`` prior points are evaluated once and
every part holds them with its own shift of the first parameter (so no point repeats) and every
other float scaled by 1 + 10^-12 u (so no value repeats, as in real shards, and Parquet's
dictionary encoding gains nothing it would not gain on real ones); the collection's cost does not
depend on the observables' values.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_run(run: Path, n: int, shards: int, fraction: float, seed: int = 0, block: int = 20_000) -> None:
    """Sample parts of ``n`` rows in ``shards`` parts under ``run/samples/bench`` (see the module docstring)."""
    import pyarrow as pa

    from rayflavor.methods.diffusion.data import evaluated_table
    from rayflavor.methods.diffusion.settings import KIND_FIELDS
    from rayflavor.physics import seesaw
    from rayflavor.storage import runs

    rng = np.random.default_rng(seed)
    base = evaluated_table(seesaw.sample_prior(block, rng))
    first = seesaw.PARAMETERS[0]
    d = runs.samples_dir(run, "bench")
    runs.write_json({"network": "pre", "ordering": "NO"}, d / "manifest.json")
    sizes = [n // shards + (i < n % shards) for i in range(shards)]
    for i, size in enumerate(sizes):
        t = base.take(pa.array(np.arange(size) % block))
        shift = np.repeat(np.arange(-(-size // block)), block)[:size] * 1e-9 + i * 1e-6
        t = t.set_column(t.schema.get_field_index(first), first, pa.array(t.column(first).to_numpy() + shift))
        jitter = 1 + 1e-12 * rng.random(size)  # every float distinct, as in real shards (no dictionary gains)
        for j, field in enumerate(t.schema):
            if pa.types.is_float64(field.type) and field.name != first:
                t = t.set_column(j, field.name, pa.array(t.column(j).to_numpy() * jitter))
        sol = rng.random(size) < fraction
        t = t.set_column(t.schema.get_field_index("solution"), "solution", pa.array(sol))
        t = t.append_column("ordering", pa.array(["NO"] * size, pa.string()))
        for column in KIND_FIELDS:
            t = t.append_column(column, pa.array(np.zeros(size, np.int32)))
        runs.write_part(d, i, t, {"n": size, "solutions": int(sol.sum())})


def collect_in_memory(run) -> int:
    """The collection before it streamed (the baseline): rows written."""
    from rayflavor.bench.collect import collect_in_memory as collect
    from rayflavor.storage import runs

    table = collect(run)
    if table is None:
        return 0
    runs.write_table(table, runs.solutions_path(run))
    return table.num_rows


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(run: str, variant: str) -> dict:
    """One collection in this process: peak RSS over the RSS after the imports, Arrow's peak, rows, wall."""
    import gc

    import pyarrow as pa
    import pyarrow.compute  # noqa: F401  (imported here so that their import is not counted)
    import pyarrow.dataset  # noqa: F401

    from rayflavor.orchestration.diffusion_sample import collect_solutions

    fn = collect_solutions if variant == "streamed" else collect_in_memory
    gc.collect()
    base = _rss_mib()
    t0 = time.perf_counter()
    rows = fn(run)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"variant": variant, "rows": rows, "peak_rss_delta_mib": round(peak - base, 1),
            "rss_after_imports_mib": round(base, 1), "arrow_peak_mib": round(pa.default_memory_pool().max_memory() / 2**20, 1),
            "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--fraction", type=float, default=0.77)
    ap.add_argument("--work", default=None, help="directory for the run (default: a temporary one)")
    ap.add_argument("--measure", nargs=2, metavar=("RUN", "VARIANT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        print("RESULT " + json.dumps(measure(*a.measure)), flush=True)
        return
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-collect-"))
    run = work / "run"
    t0 = time.perf_counter()
    make_run(run, a.n, a.shards, a.fraction)
    print(f"{a.n} samples in {a.shards} parts written in {time.perf_counter() - t0:.0f} s -> {run}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    results = []
    for variant in ("in-memory", "streamed"):
        out = subprocess.run([sys.executable, __file__, "--measure", str(run), variant], env=env, check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(next(ln for ln in out.splitlines() if ln.startswith("RESULT "))[7:]))
        (run / "solutions.parquet").rename(run / f"solutions-{variant}.parquet")
    import pyarrow.parquet as pq

    same = pq.read_table(run / "solutions-in-memory.parquet").equals(pq.read_table(run / "solutions-streamed.parquet"))
    for r in results:
        r["file_mib"] = round((run / f"solutions-{r['variant']}.parquet").stat().st_size / 2**20, 1)
        print(json.dumps(r))
    print(f"files equal: {same}")


if __name__ == "__main__":
    main()
