"""Benchmark: the exact importance sampler against the random-walk reference, side by side in one run.

    PYTHONPATH=. python jobs/reference_compare.py OUT [--importance-seeds 0,1,2] [--nested-seeds 0,1]
        [--proposals 2000000] [--tasks 4] [--nested-tasks 16] [--cpus 2] [--network RUN ...] [--network-n 50000]

Builds one reference per (method, seed) under ``OUT/<method>-<seed>`` with ``build_reference``
(Ray, local or ``RAY_ADDRESS``) and prints, per method, the throughput in faithful independent
samples per core-second (importance: Kish ESS over the tasks' CPU seconds; nested: the smallest
per-prediction ESS of reference.json over its tasks' nested + walk CPU seconds; CPU time, so that a
busy machine slows both alike; beside it the between-task batch-means ESS, the smallest over the
predictions, which the random walk's within-chain ESS overstates), the teacher-to-teacher
spread (max over the nine predictions of the KS distance between two seeds' sets; Kuiper for the
circular ones, as ``analyze --reference``), and the distance between the methods. With
``--network RUN`` (a finished ``diffusion run``) it also samples ``--network-n`` points from the run's
final network alone (no projection; the chain's final sampling settings, seed 900) in the same
run, and counts its distinct solutions per core-second of generation plus exact re-evaluation,
beside their worst distance to the first importance reference: the three ways to faithful
samples of the solution set, side by side. Writes ``OUT/compare.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> dict:
    import numpy as np
    import polars as pl
    import ray

    from rayflavor import configfile
    from rayflavor.analysis.fidelity import PREDICTIONS, prediction_columns, prediction_distances
    from rayflavor.methods.reference import ReferenceSettings, task_ess
    from rayflavor.orchestration.reference import build_reference
    from rayflavor.orchestration.runtime import ensure_ray

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--importance-seeds", default="0,1,2")
    p.add_argument("--nested-seeds", default="0,1")
    p.add_argument("--proposals", type=int, default=2_000_000)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--nested-tasks", type=int, default=16)
    p.add_argument("--also", nargs="*", default=[], help="existing reference run directories to include "
                   "(their method and seed from reference.json; nested ones without CPU times count wall seconds)")
    p.add_argument("--cpus", type=int, default=2, help="cores of the local Ray (without RAY_ADDRESS)")
    p.add_argument("--network", nargs="*", default=[], help="finished diffusion runs whose final network samples too")
    p.add_argument("--network-n", type=int, default=50_000, help="network-only samples per --network run")
    a = p.parse_args(argv)
    if not os.environ.get("RAY_ADDRESS"):  # a local Ray on loopback, with the cores asked for
        ray.init(address="local", num_cpus=a.cpus, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
    ensure_ray(None)
    out = Path(a.out)
    runs: dict[str, dict[int, dict]] = {"importance": {}, "nested": {}}
    seeds = {"importance": [int(s) for s in a.importance_seeds.split(",") if s],
             "nested": [int(s) for s in a.nested_seeds.split(",") if s]}

    def load(method: str, seed, where: Path, summary: dict) -> None:
        table = pl.read_parquet(where / "reference.parquet").to_dict(as_series=False)
        pred = prediction_columns({k: np.asarray(v) for k, v in table.items()})
        if method == "importance":
            ess, core = summary["ess"], summary["core_seconds"]
        else:
            ess = min(v["ess"] for v in summary["diagnostics"].values())
            core = sum(t["chains"].get("cpu_seconds", t["nested"]["seconds"] + t["chains"]["seconds"])
                       for t in summary["tasks"])
        task = np.asarray(table["task"])
        between = min(task_ess(np.cos(pred[n]) if k == "circular" else pred[n], task) for n, k in PREDICTIONS)
        runs[method][seed] = {"pred": pred, "ess": ess, "task_ess": between, "core_seconds": core,
                              "rows": summary["rows"], "median_m1_mev": float(np.median(table["m1"])) * 1e3}
        print(f"{method} seed {seed}: ESS {ess:.0f} (between tasks {between:.0f}) in {core:.0f} core-s = "
              f"{ess / core:.2f} ({between / core:.2f}) per core-second", flush=True)

    for method in ("importance", "nested"):
        for seed in seeds[method]:
            s = (ReferenceSettings(method="importance", tasks=a.tasks, proposals=a.proposals, seed=seed)
                 if method == "importance" else ReferenceSettings(tasks=a.nested_tasks, seed=seed))
            where = out / f"{method}-{seed}"
            where.mkdir(parents=True, exist_ok=True)
            stored = where / "reference.json"
            if stored.exists() and json.loads(stored.read_text())["settings"] == configfile.to_mapping(s):
                summary = json.loads(stored.read_text())  # built by an earlier call with these settings
            else:
                summary = build_reference(str(where), s)
            load(method, seed, where, summary)
    for where in a.also:
        summary = json.loads((Path(where) / "reference.json").read_text())
        method = summary.get("method", "nested")
        load(method, f"{summary['settings']['seed']}/{summary['settings']['stream']}@{where}", Path(where), summary)

    keys = ("ess", "task_ess", "core_seconds", "rows", "median_m1_mev")
    report: dict = {"throughput": {m: {str(s): {k: r[k] for k in keys} for s, r in runs[m].items()} for m in runs},
                    "spread": {}, "between": {}}
    for method, per in runs.items():
        for s1, s2 in itertools.combinations(sorted(per, key=str), 2):
            d = prediction_distances(per[s1]["pred"], per[s2]["pred"])
            report["spread"][f"{method} {s1}-{s2}"] = d
            worst = max(d, key=d.get)
            print(f"spread {method} seeds {s1}-{s2}: max {d[worst]:.3f} ({worst}); "
                  + ", ".join(f"{k} {v:.3f}" for k, v in d.items()))
    for si, sn in itertools.product(sorted(runs["importance"], key=str), sorted(runs["nested"], key=str)):
        d = prediction_distances(runs["importance"][si]["pred"], runs["nested"][sn]["pred"])
        report["between"][f"importance {si} - nested {sn}"] = d
        worst = max(d, key=d.get)
        print(f"importance {si} vs nested {sn}: max {d[worst]:.3f} ({worst}); "
              + ", ".join(f"{k} {v:.3f}" for k, v in d.items()))
    first = runs["importance"][min(runs["importance"], key=str)] if runs["importance"] else None
    report["network"] = {}
    for where in a.network:
        report["network"][where] = net = network_rate(where, a.network_n, first["pred"] if first else None)
        print(f"network {where}: {net['distinct']} distinct solutions of {net['n']} samples in "
              f"{net['core_seconds']:.0f} core-s = {net['rate']:.1f} per core-second; worst distance to the "
              f"importance reference {net['worst']:.3f} ({net['worst_name']})", flush=True)
    print("\n| sampler | faithful independent samples per core-second | how counted |\n|---|---|---|")
    for method, per in runs.items():
        for s_, r in per.items():
            how = "Kish ESS" if method == "importance" else f"between-task ESS (within-chain ESS: {r['ess']:.0f})"
            rate = (r["ess"] if method == "importance" else r["task_ess"]) / r["core_seconds"]
            print(f"| {method} seed {s_} | {rate:.2f} | {how} over CPU seconds |")
    for where, net in report["network"].items():
        print(f"| network of {where} | {net['rate']:.1f} | distinct network-only solutions over CPU seconds; "
              f"worst distance {net['worst']:.3f} ({net['worst_name']}) |")
    for method, per in runs.items():
        print(f"{method}: median lightest mass per seed "
              + ", ".join(f"{s}: {r['median_m1_mev']:.2f} meV" for s, r in per.items()))
    (out / "compare.json").write_text(json.dumps(report, indent=1))
    return report


def network_rate(run: str, n: int, reference: dict | None) -> dict:
    """Sample ``n`` points from the final network of the finished chain ``run`` with its final sampling
    settings and no projection (seed 900, its own sample set), and measure them: distinct solutions,
    CPU seconds of generation plus exact re-evaluation (the shards' process time, as the samplers' CPU
    seconds: a busy machine slows all three alike), and the distance per prediction to ``reference``."""
    from dataclasses import replace

    import polars as pl

    from rayflavor import configfile
    from rayflavor.analysis.fidelity import prediction_columns, prediction_distances
    from rayflavor.methods.diffusion.settings import ChainSettings
    from rayflavor.orchestration.diffusion_sample import best_network, sample_run
    from rayflavor.storage import runs

    st = configfile.from_mapping(ChainSettings, runs.read_json(runs.run_manifest_path(run))["settings"])
    network = "taught" if "taught" in runs.networks(run) else best_network(run)[0]
    summary = sample_run(run, replace(st.final_sampling(0, 0, 0), n=n), network=network, seed=900, keep="solutions",
                         log=lambda m: None)
    parts = runs.part_stats(runs.loc(run) / "samples" / summary["tag"])
    core = float(sum(p.get("cpu_seconds", p["seconds_sample"] + p.get("seconds_evaluate", 0.0)) for p in parts))
    sols = pl.from_arrow(runs.read_table(runs.solutions_path(run))).filter(pl.col("sample_set") == summary["tag"])
    out = {"n": summary["n"], "solutions": summary["solutions"], "distinct": summary["distinct_solutions"],
           "core_seconds": core, "rate": summary["distinct_solutions"] / core, "worst": float("nan"), "worst_name": "—"}
    if reference is not None and sols.height:
        pred = prediction_columns({c: sols[c].to_numpy() for c in sols.columns})
        d = prediction_distances(pred, reference)
        out.update(distances=d, worst=max(d.values()), worst_name=max(d, key=d.get))
    return out


if __name__ == "__main__":
    main()
