"""Diffusion sampling on real multi-node Ray, on this machine: a worker node lost mid-sample.

The body runs in a subprocess (this file run as a script) with its own ``ray.cluster_utils.Cluster``
on 127.0.0.1 (``helpers.loopback_cluster``: a head without CPUs and two 1-CPU workers), so it never
meets the session's Ray. It prints one JSON line with what it observed; the assertions are here.
The cluster runs with ``RAY_AUTH_MODE=disabled`` and is torn down by process group, never by
``ray stop``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import loopback_cluster, run_result_script

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_sample_shards_of_a_lost_node_are_retried_elsewhere_with_the_same_rows(tmp_path):
    r = run_result_script(__file__, tmp_path / "run", root=ROOT, timeout=600)
    assert r["parts_at_loss"] < r["shards"] and r["victim_ran_a_shard"], r  # lost while running a shard
    assert r["parts"] == list(range(r["shards"])) and r["n"] == r["expected_n"], r
    assert r["equal_to_undisturbed"], r  # every shard, retried or not, holds the rows of an undisturbed run
    assert r["solutions"] == r["expected_solutions"], r


def _body(run_dir: str) -> dict:
    import numpy as np

    from rayflavor.methods.diffusion import training
    from rayflavor.methods.diffusion.sampleset import SampleSet, shard_table
    from rayflavor.methods.diffusion.settings import SamplingSettings
    from rayflavor.orchestration.diffusion_sample import collect_solutions, sample_run
    from rayflavor.physics import seesaw
    from rayflavor.storage import runs

    g = seesaw.sample_prior(2000, np.random.default_rng(0))
    lab = seesaw.labels(seesaw.evaluate(g))
    ok = np.isfinite(lab).all(1)
    training.save(runs.network_path(run_dir, "pre"),
                  training.new_state(training.Normalizer.fit(g[ok], lab[ok]), total_steps=1), with_optimizer=False)
    sampling = SamplingSettings(n=8000, steps=50, guidance=8.0, shards=4)

    with loopback_cluster(head_cpus=0, worker_cpus=[1, 1]) as (cluster, workers):
        box: dict = {}
        t = threading.Thread(target=lambda: box.update(res=sample_run(run_dir, sampling, log=lambda *_: None)))
        t.start()
        import psutil

        raylets = {w.node_id: w.all_processes["raylet"][0].process.pid for w in workers}

        def running_nodes() -> set[str]:
            """Nodes with a worker inside a sample task (its process title says so; its raylet is its parent)."""
            nodes = set()
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    if any("ray::_sample_task" in c for c in (proc.info["cmdline"] or [])):
                        parents = {a.pid for a in proc.parents()}
                        nodes |= {nid for nid, pid in raylets.items() if pid in parents}
                except psutil.Error:
                    continue
            return nodes

        deadline, running = time.monotonic() + 180, set()
        while len(running) < 2:  # both workers inside a shard (each takes several seconds)
            assert time.monotonic() < deadline, "the shards did not start on both workers"
            time.sleep(0.3)
            running = running_nodes()
        out = runs.samples_dir(run_dir, SampleSet(network="pre", sampling=sampling).tag())
        parts_at_loss = len(runs.finished_parts(out))
        cluster.remove_node(workers[0], allow_graceful=False)
        t.join(timeout=500)
        assert not t.is_alive(), "sampling did not finish after the node loss"
    s = SampleSet.from_manifest(runs.read_json(out / "manifest.json"))
    equal = True
    expected_solutions = 0
    for i in range(s.shards):  # the undisturbed rows, computed here without Ray
        want, meta = shard_table(s, runs.network_path(run_dir, "pre"), i)
        got = runs.read_table(runs.part_path(out, i))
        equal &= all(np.array_equal(got.column(c).to_numpy(), want.column(c).to_numpy()) for c in seesaw.PARAMETERS)
        expected_solutions += meta["solutions"]
    return {"shards": s.shards, "parts_at_loss": parts_at_loss, "victim_ran_a_shard": workers[0].node_id in running, "parts": runs.finished_parts(out),
            "n": box["res"]["n"], "expected_n": sampling.n, "equal_to_undisturbed": bool(equal),
            "solutions": collect_solutions(run_dir), "expected_solutions": expected_solutions}


if __name__ == "__main__":
    print("RESULT " + json.dumps(_body(sys.argv[1])), flush=True)
