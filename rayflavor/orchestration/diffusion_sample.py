"""``rayflavor diffusion sample``: reverse process in Ray tasks, one Parquet part per shard.

Each task generates its shard (:func:`rayflavor.methods.diffusion.sampleset.shard_table`: the
network's points, every observable recomputed exactly, chi2 and the 3 sigma ``solution`` flag)
and writes ``RUN/samples/<tag>/part-s.parquet``. The shard's counts (generated points,
solutions, ...) go to the part's schema metadata, so the solution fraction is known even when
only some rows are kept. A failed task is retried by Ray (``max_retries``); parts already on
disk (with a readable footer and the shard's count) are not redone. Afterwards every solution
under ``RUN/samples`` goes to ``RUN/solutions.parquet``.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
import ray

from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.data import SeenPoints
from rayflavor.methods.diffusion.sampleset import (SampleSet, check_network, default_shards, drawn_note, flat_manifest,
                                                   network_only, shard_sizes, shard_table, summarize)
from rayflavor.methods.diffusion.settings import KIND_FIELDS, SamplingSettings
from rayflavor.orchestration.diffusion_progress import wait_tasks
from rayflavor.physics import seesaw
from rayflavor.storage import runs


@ray.remote(num_cpus=1, max_retries=3)
def _sample_task(manifest: dict, model_uri: str, out_uri: str, shard: int) -> dict:
    """Shard ``shard``, written to the run's storage from whichever node runs it."""
    table, meta = shard_table(SampleSet.from_manifest(manifest), runs.loc(model_uri), shard)
    runs.write_part(out_uri, shard, table, meta)
    return meta


def done_shards(s: SampleSet, out: runs.Location) -> set[int]:
    """Shards of set ``s`` whose part in ``out`` is complete: a readable footer and the shard's count."""
    sizes = shard_sizes(s.n, s.shards)
    return {i for i in runs.finished_parts(out) if i < s.shards and runs.part_ok(runs.part_path(out, i), meta_n=sizes[i])}


def sample_set(run: runs.Where, sampling: SamplingSettings, *, network: str | None = None, seed: int,
               keep: str, data: str = seesaw.DEFAULT_DATA,
               fallback_shards: int | None = None) -> tuple[SampleSet, runs.Location, runs.Location]:
    """Fix the settings of a sample set and write its manifest: (set, ``RUN/samples/<tag>``, network path).

    The shard split is part of the settings (each shard has its own seed): an existing set keeps
    the split it was started with unless ``sampling.shards`` is given; a new one gets
    ``sampling.shards``, else ``fallback_shards``, else :func:`default_shards` of its size (never of
    the CPUs present: the split decides the samples, and the shards are the autoscaler's demand).
    """
    network = runs.require_network(run, network)
    model_path = runs.network_path(run, network)
    _, norm, checkpoint = training.load_model(model_path)
    check_network(network, norm, checkpoint, sampling)
    s = SampleSet(network=network, sampling=sampling, seed=seed, keep=keep, data=data)
    out = runs.samples_dir(run, s.tag())
    mpath = out / "manifest.json"
    old = SampleSet.from_manifest(runs.read_json(mpath)) if mpath.exists() else None
    shards = sampling.shards or (old.shards if old else None) or fallback_shards or default_shards(s.n)
    s = s.with_shards(min(int(shards), s.n))
    if old is not None and old != s:
        raise ValueError(f"{out} holds samples with other settings; remove it or change --seed")
    runs.write_json(s.manifest(), mpath)
    return s, out, model_path


def sample_run(run: runs.Where, sampling: SamplingSettings, *, network: str | None = None,
               seed: int, keep: str, data: str = seesaw.DEFAULT_DATA, log=print) -> dict:
    """Sample ``sampling.n`` points from network ``network`` (default: the newest) into ``RUN/samples/<tag>``."""
    s, out, model_path = sample_set(run, sampling, network=network, seed=seed, keep=keep, data=data)
    sizes = shard_sizes(s.n, s.shards)
    done = done_shards(s, out)
    todo = [i for i in range(s.shards) if i not in done]
    t0 = time.perf_counter()
    wait_tasks({_sample_task.remote(s.manifest(), model_path.uri, out.uri, i): sizes[i] for i in todo},
               f"sample {s.network}", s.n, "samples", done=sum(sizes[i] for i in done), log=log)
    wall = time.perf_counter() - t0
    summary = summarize(runs.part_stats(out))
    summary.update(tag=out.name, wall_seconds=wall, generated_shards=len(todo))
    n_sol = collect_solutions(run)
    log(sample_line(summary, n_sol))
    return summary


def sample_line(summary: dict, n_sol: int) -> str:
    """The one-line report of a finished sample set."""
    return (f"sample {summary['tag']}: {summary['solutions']} solutions ({summary['distinct_solutions']} distinct) "
            f"in {summary['n']} samples (fraction {summary['fraction']:.3g}{drawn_note(summary)}); "
            f"{summary['samples_per_s_per_core']:.0f} samples/s per core; {summary['generated_shards']} shards "
            f"generated in {summary['wall_seconds']:.1f} s; RUN/solutions.parquet holds {n_sol}")


def collect_solutions(run: runs.Where) -> int:
    """Gather every solution row of ``RUN/samples/*`` into ``RUN/solutions.parquet`` (distinct points).

    The file is written whenever any sample part exists, also when it holds no solution: then
    it is an empty table with the parts' columns (``rayflavor analyze`` reports "0 solutions").
    Parts written before they carried ``ordering``, ``physics_guidance``, ``projection`` or
    ``orbit_sweeps`` get them from their set's manifest.

    Streamed, one part at a time: the rows are those of :func:`~rayflavor.methods.diffusion.data.unique_points` over all the parts'
    solutions (sets in listing order, parts in index order, the first row of every point), written
    part by part; the driver holds one part's solutions and 16 bytes per distinct point
    (:class:`~rayflavor.methods.diffusion.data.SeenPoints`). A first pass reads each part's footer
    and ``solution`` column only, for the columns of the file.
    """
    sources = list(_solution_sources(runs.loc(run) / "samples"))
    if not sources:
        return 0
    schemas = [schema for i, (*_, schema, count) in enumerate(sources) if count or i == 0]  # as before streaming
    schema = pa.unify_schemas(schemas, promote_options="default")
    seen, n = SeenPoints(), 0
    # floats are (nearly) all distinct: a dictionary per row group (one per part) would only add its size
    words = [f.name for f in schema if not pa.types.is_floating(f.type)]
    with runs.parquet_writer(runs.solutions_path(run), schema, use_dictionary=words) as writer:
        for name, manifest, part, _, count in sources:
            if not count:
                continue
            t = _solution_rows(name, manifest, part)
            t = t.take(pa.array(seen.first_rows(t)))
            # the file's columns, in its order (missing ones null), as concat_tables(promote_options="default")
            writer.write_table(pa.concat_tables([schema.empty_table(), t], promote_options="default"))
            n += t.num_rows
    return n


def _solution_rows(name: str, manifest: dict, part: runs.Location) -> pa.Table:
    """The solution rows of one sample part, with the set's columns (:func:`_with_set_columns`)."""
    return _with_set_columns(runs.read_table(part, filters=[("solution", "==", True)]), name, manifest)


def _with_set_columns(t: pa.Table, name: str, manifest: dict) -> pa.Table:
    """Rows of a part of sample set ``name`` with the columns of its manifest they lack and
    ``sample_set`` (schema metadata dropped)."""
    t = t.replace_schema_metadata(None)
    if manifest.get("ordering") and "ordering" not in t.column_names:
        t = t.append_column("ordering", pa.array([manifest["ordering"]] * t.num_rows, pa.string()))
    for column, setting in KIND_FIELDS.items() if manifest else ():
        if column not in t.column_names:
            t = t.append_column(column, pa.array([manifest.get(setting, 0)] * t.num_rows, pa.int32()))
    return t.append_column("sample_set", pa.array([name] * t.num_rows, pa.string()))


def _solution_sources(root: runs.Location):
    """(set name, flat manifest, part, schema of its solution rows, solution count) of every part
    under ``RUN/samples``, in collection order; reads footers and ``solution`` columns only."""
    for name in root.list():
        d = root / name
        manifest = flat_manifest(runs.read_json(d / "manifest.json")) if (d / "manifest.json").is_file() else {}
        for i in runs.finished_parts(d):
            part = runs.part_path(d, i)
            flags = runs.read_table(part, columns=["solution"]).column("solution")
            schema = _with_set_columns(runs.read_schema(part).empty_table(), name, manifest).schema
            yield name, manifest, part, schema, int(pc.sum(flags).as_py() or 0)


def best_network(run: runs.Where) -> tuple[str | None, float, int]:
    """(network, solution fraction, samples) of the network of ``run`` whose network-only sample sets
    have the highest solution fraction (:func:`rayflavor.methods.diffusion.rounds.best_network`)."""
    from rayflavor.methods.diffusion.rounds import best_network as best

    records = []
    for d, stored in runs.sample_sets(run):
        manifest = flat_manifest(stored)
        if network_only(manifest) and runs.finished_parts(d):
            st = summarize(runs.part_stats(d))
            records.append((manifest["network"], st["solutions"], st["n"]))
    return best(records, runs.networks(run))
