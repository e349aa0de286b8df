"""``rayflavor diffusion sample``: reverse process in Ray tasks, one Parquet part per shard.

Each task loads the network, generates its shard's points (seed ``[seed, shard]``), recomputes
every observable exactly with ``seesaw.evaluate`` and writes ``RUN/samples/<tag>/part-s.parquet``
with the parameters, observables, chi2 columns and the 3 sigma ``solution`` flag. The number
of generated points and solutions of the shard is stored in the part's schema metadata, so the
solution fraction is known even when only some rows are kept (``keep``).
A failed task is retried by Ray (``max_retries``); parts already on disk are not redone.
Afterwards every solution under ``RUN/samples`` goes to ``RUN/solutions.parquet``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from rayflavor.methods.diffusion import selection
from rayflavor.methods.diffusion.generate import generate, load_folded
from rayflavor.methods.diffusion.physics_guidance import PhysicsGuidance
from rayflavor.physics import data as physics_data
from rayflavor.physics import seesaw
from rayflavor.storage import runs

KEEP = ("all", "selected", "solutions")
META_KEY = b"rayflavor"


def settings_tag(s: dict) -> str:
    """Directory name of a sample set, readable and unique for its settings."""
    steps = s["steps"] or 1000
    clip = "" if s.get("clip") is None else f"-clip{s['clip']:g}"
    tau = "" if s.get("temperature", 1.0) == 1.0 else f"-tau{s['temperature']:g}"
    pg = f"-pg{s['physics']}" if s.get("physics") else ""
    return (f"{s['network']}-{s['sampler']}{steps}-g{s['guidance']:g}-{s['ordering']}{clip}{tau}{pg}"
            f"-n{s['n']}-s{s['seed']}")


def distinct_rows(g: np.ndarray, decimals: int = 6) -> int:
    """Number of distinct parameter rows after rounding to ``decimals`` decimal places.

    >>> distinct_rows(np.array([[0.1, 0.2], [0.1 + 1e-9, 0.2], [0.1, 0.3]]))
    2
    """
    return int(len(np.unique(np.round(np.asarray(g, dtype=np.float64), decimals), axis=0))) if len(g) else 0


def unique_points(t: pa.Table) -> pa.Table:
    """The rows of ``t`` with distinct seesaw parameter points (first occurrence, order kept)."""
    g = np.stack([t.column(c).to_numpy() for c in seesaw.PARAMETERS], axis=1)
    _, first = np.unique(g, axis=0, return_index=True)
    return t.take(pa.array(np.sort(first)))


def shard_table(s: dict, model_path: str, shard: int, n: int, threads: int = 1) -> pa.Table:
    """Generate, evaluate and filter one shard (pure function of its arguments)."""
    import torch

    torch.set_num_threads(threads)
    ds = physics_data.load(s["data"])
    net, norm, _ = load_folded(model_path)
    label = seesaw.target_labels(ds, s["ordering"])
    physics = (PhysicsGuidance(seesaw.solution_windows(ds, s["ordering"]), s["ordering"], iterations=s["physics"])
               if s.get("physics") else None)
    t0 = time.perf_counter()
    g = generate(net, norm, label, n, sampler=s["sampler"], steps=s["steps"], guidance=s["guidance"],
                 seed=int(s["seed"]) * 100_003 + shard, clip=s.get("clip"), temperature=s.get("temperature", 1.0),
                 physics=physics)
    t1 = time.perf_counter()
    res = seesaw.evaluate(g, ordering=s["ordering"], data=ds)
    t2 = time.perf_counter()
    cols = {name: g[:, j] for j, name in enumerate(seesaw.PARAMETERS)}
    cols.update({k: v for k, v in res.items() if np.ndim(v) == 1 and k not in cols})
    cols["ordering"] = np.full(n, s["ordering"])  # the ordering the labels and windows were taken for
    cols["physics_guidance"] = np.full(n, int(s.get("physics", 0)), dtype=np.int32)  # steps; 0 = network only
    sol = np.asarray(res["solution"], dtype=bool)
    sel = selection.select(res["chi2"], res["chi2_mass"], res["chi2_mixing"])
    keep = {"all": np.ones(n, bool), "selected": sel | sol, "solutions": sol}[s["keep"]]
    table = pa.table({k: np.asarray(v)[keep] for k, v in cols.items()})
    meta = {"n": n, "solutions": int(sol.sum()), "selected": int(sel.sum()), "kept": int(keep.sum()),
            "seconds_sample": t1 - t0, "seconds_evaluate": t2 - t1, "distinct_solutions": distinct_rows(g[sol])}
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


@ray.remote(num_cpus=1, max_retries=3)
def _sample_task(s: dict, model_path: str, out_dir: str, shard: int, n: int) -> dict:
    table = shard_table(s, model_path, shard, n)
    runs.write_table(table, runs.part_path(out_dir, shard))
    return json.loads(table.schema.metadata[META_KEY])


def part_stats(out_dir: str | Path) -> list[dict]:
    """The metadata of every finished part."""
    return [json.loads(pq.read_schema(runs.part_path(out_dir, i)).metadata[META_KEY])
            for i in runs.finished_parts(out_dir)]


def summarize(stats: list[dict]) -> dict:
    n = sum(p["n"] for p in stats)
    sols = sum(p["solutions"] for p in stats)
    sample_s = sum(p["seconds_sample"] for p in stats)
    return {"n": n, "solutions": sols, "fraction": sols / n if n else 0.0,
            "selected": sum(p["selected"] for p in stats),
            "distinct_solutions": sum(p.get("distinct_solutions", 0) for p in stats),
            "samples_per_s_per_core": n / sample_s if sample_s else float("nan")}


def default_shards(n: int) -> int:
    """One shard per 50 000 samples (at most 1000), but small sets still use every free CPU of
    the cluster, with shards of at least 5000 samples."""
    cpus = int(ray.available_resources().get("CPU", 1)) if ray.is_initialized() else 1
    return max(1, min(1000, max(-(-n // 50_000), min(cpus, n // 5000))))


def sample_set(run: str | Path, *, n: int, sampler: str = "ddim", steps: int | None = None, guidance: float = 8.0,
               ordering: str = "NO", shards: int | None = None, network: str | None = None, seed: int = 0,
               keep: str = "all", clip: float | None = None, temperature: float = 1.0, physics: int = 0,
               data: str = seesaw.DEFAULT_DATA, fallback_shards: int | None = None) -> tuple[dict, Path, Path]:
    """Fix the settings of a sample set and write its manifest: (settings, ``RUN/samples/<tag>``, network path).

    The shard split is part of the settings (each shard has its own seed): an existing set keeps
    the split it was started with unless ``shards`` is given; a new one gets ``shards``, else
    ``fallback_shards``, else :func:`default_shards`. ``physics``: Polyak steps of physics guidance
    per reverse step (:mod:`rayflavor.methods.diffusion.physics_guidance`; 0 = off, the paper).
    """
    network = runs.require_network(run, network)
    model_path = runs.network_path(run, network)
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}")
    s = {"network": network, "sampler": sampler, "steps": steps, "guidance": float(guidance), "ordering": ordering,
         "n": int(n), "shards": 0, "seed": int(seed), "keep": keep, "clip": clip, "data": data}
    if temperature != 1.0:
        s["temperature"] = float(temperature)
    if physics < 0:
        raise ValueError(f"physics guidance must be >= 0 steps, not {physics}")
    if physics:
        s["physics"] = int(physics)
    out = runs.samples_dir(run, settings_tag(s))
    mpath = out / "manifest.json"
    if shards is None and mpath.exists():  # a rerun keeps the split it started with, whatever the cluster size now
        shards = runs.read_json(mpath).get("shards")
    s["shards"] = int(shards or fallback_shards or default_shards(n))
    if mpath.exists() and runs.read_json(mpath) != s:
        raise ValueError(f"{out} holds samples with other settings; remove it or change --seed")
    runs.write_json(s, mpath)
    return s, out, model_path


def shard_sizes(s: dict) -> list[int]:
    """Rows of each shard of sample set ``s`` (they differ by at most one)."""
    n, k = s["n"], s["shards"]
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def sample_run(run: str | Path, *, n: int, sampler: str = "ddim", steps: int | None = None, guidance: float = 8.0,
               ordering: str = "NO", shards: int | None = None, network: str | None = None, seed: int = 0,
               keep: str = "all", clip: float | None = None, temperature: float = 1.0, physics: int = 0,
               data: str = seesaw.DEFAULT_DATA, log=print) -> dict:
    """Sample ``n`` points from network ``network`` (default: the latest) into ``RUN/samples/<tag>``."""
    s, out, model_path = sample_set(run, n=n, sampler=sampler, steps=steps, guidance=guidance, ordering=ordering,
                                    shards=shards, network=network, seed=seed, keep=keep, clip=clip,
                                    temperature=temperature, physics=physics, data=data)
    sizes = shard_sizes(s)
    done = set(runs.finished_parts(out))
    todo = [i for i in range(s["shards"]) if i not in done]
    t0 = time.perf_counter()
    ray.get([_sample_task.remote(s, str(model_path), str(out), i, sizes[i]) for i in todo])
    wall = time.perf_counter() - t0
    summary = summarize(part_stats(out))
    summary.update(tag=out.name, wall_seconds=wall, generated_shards=len(todo))
    n_sol = collect_solutions(run)
    log(sample_line(summary, n_sol))
    return summary


def sample_line(summary: dict, n_sol: int) -> str:
    """The one-line report of a finished sample set."""
    return (f"sample {summary['tag']}: {summary['solutions']} solutions ({summary['distinct_solutions']} distinct) "
            f"in {summary['n']} samples (fraction {summary['fraction']:.3g}); "
            f"{summary['samples_per_s_per_core']:.0f} samples/s per core; {summary['generated_shards']} shards "
            f"generated in {summary['wall_seconds']:.1f} s; RUN/solutions.parquet holds {n_sol}")


def collect_solutions(run: str | Path) -> int:
    """Gather every solution row of ``RUN/samples/*`` into ``RUN/solutions.parquet`` (distinct points).

    The file is written whenever any sample part exists, also when it holds no solution: then
    it is an empty table with the parts' columns (``rayflavor analyze`` reports "0 solutions").
    Parts written before they carried ``ordering`` or ``physics_guidance`` get them from their set's manifest.
    """
    root = Path(run) / "samples"
    tables = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        manifest = runs.read_json(d / "manifest.json") if (d / "manifest.json").is_file() else {}
        for i in runs.finished_parts(d):
            t = pq.read_table(runs.part_path(d, i), filters=[("solution", "==", True)]).replace_schema_metadata(None)
            if manifest.get("ordering") and "ordering" not in t.column_names:
                t = t.append_column("ordering", pa.array([manifest["ordering"]] * t.num_rows, pa.string()))
            if manifest and "physics_guidance" not in t.column_names:
                t = t.append_column("physics_guidance", pa.array([manifest.get("physics", 0)] * t.num_rows, pa.int32()))
            if t.num_rows or not tables:
                tables.append(t.append_column("sample_set", pa.array([d.name] * t.num_rows, pa.string())))
    if not tables:
        return 0
    table = pa.concat_tables(tables, promote_options="default")
    if table.num_rows:
        table = unique_points(table)
    runs.write_table(table, runs.solutions_path(run))
    return table.num_rows
