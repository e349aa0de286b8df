"""Diffusion training on real multi-node Ray, on this machine: DDP over two nodes, and a node lost
mid-training.

The body runs once, in a subprocess (this file run as a script), with its own
``ray.cluster_utils.Cluster`` on loopback: a head without CPUs and two 1-CPU worker nodes, every
node, the GCS and the driver on 127.0.0.1. It prints one JSON line with what it observed; the
assertions are in the tests below. The cluster runs with ``RAY_AUTH_MODE=disabled`` and is torn
down by process group, never by ``ray stop``.

1. ``--workers 2``: one Ray Train worker per node, DDP with gloo on CPU. Every worker records its
   parameters after the last step, the batch it drew per step and its model's wrapper.
2. ``--workers 1``: once Ray Train has taken a reported checkpoint, the node running the worker is
   removed (its processes killed). Ray Train restarts the worker on the other node and it continues
   from the last checkpoint (``RecoverySettings.max_failures``); without a ``FailureConfig``
   ``fit()`` fails here.
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

STEPS, EVERY, BATCH = 120, 20, 16  # node-loss training: reports every EVERY steps
DDP_STEPS, DDP_BATCH = 40, 32


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("train-cluster")
    return run_result_script(__file__, tmp, root=ROOT, timeout=900)


def test_two_workers_on_two_nodes_train_one_model_with_the_global_batch_split(observed):
    r = observed["ddp"]
    ranks = r["ranks"]
    assert sorted(ranks) == ["0", "1"], r
    assert len({w["node"] for w in ranks.values()}) == 2, r  # one worker per node
    assert all(w["wrapper"] == "DistributedDataParallel" for w in ranks.values()), r
    # the documented split: every worker draws batch_size / workers rows, DDP averages the gradients
    assert all(w["batch_size"] == DDP_BATCH // 2 and w["step"] == DDP_STEPS for w in ranks.values()), r
    assert r["first_batches_differ"], r  # different rows per worker, so equal weights come from DDP alone
    assert r["parameters_equal"], r
    assert r["final_equals_rank0"] and r["final_step"] == DDP_STEPS, r


def test_training_survives_a_lost_node_and_continues_from_its_last_checkpoint(observed):
    r = observed["loss"]
    assert r["finished"] and r["final_step"] == STEPS, r
    assert r["victim_ran_the_worker"], r
    log = r["log"]
    before, restarted = log[:r["lines_at_loss"]], [x for x in log if x["start"] > 0]
    assert {x["start"] for x in before} == {0} and restarted, r  # a second worker group, not from step 0
    resumed_at = restarted[0]["start"]
    # it resumed from a checkpoint reported before the node was lost, no older than one Ray had taken
    assert resumed_at in {x["step"] for x in before} and resumed_at >= r["taken_at_loss"], r
    assert [x["step"] for x in restarted] == list(range(resumed_at + EVERY, STEPS + 1, EVERY)), r
    assert {x["start"] for x in restarted} == {resumed_at}, r
    assert r["fit_returned"], r


def _spy_train_fn(config: dict) -> None:
    """``diffusion_train.train_fn`` with each worker's view written next to the run (runs in the workers)."""
    import torch

    import ray.train
    from rayflavor.methods.diffusion import training
    from rayflavor.orchestration import diffusion_train

    real = training.train_loop
    rank = ray.train.get_context().get_world_rank()
    first: dict = {}

    def loop(state, schedule, x0, labels, **kw):
        g = torch.Generator().manual_seed(int(kw["seed"]) * 1_000_003 + state.step)  # train_loop's first draw
        first["rows"] = torch.randint(0, x0.shape[0], (kw["batch_size"],), generator=g).tolist()
        out = real(state, schedule, x0, labels, **kw)
        torch.save({k: v.detach().cpu() for k, v in state.model.state_dict().items()}, f"{config['spy']}/rank{rank}.pt")
        with open(f"{config['spy']}/rank{rank}.json", "w") as f:
            json.dump({"node": ray.get_runtime_context().get_node_id(), "wrapper": type(kw["model"]).__name__,
                       "batch_size": kw["batch_size"], "step": state.step, "first_rows": first["rows"]}, f)
        return out

    training.train_loop = loop
    diffusion_train.train_fn(config)


def _ddp(run_dir: Path) -> dict:
    import torch

    from rayflavor.methods.diffusion import training
    from rayflavor.orchestration import diffusion_train
    from rayflavor.storage import runs

    spy = run_dir / "spy"
    spy.mkdir(parents=True)
    real_fn = diffusion_train.train_fn
    diffusion_train.train_fn = lambda config: _spy_train_fn({**config, "spy": str(spy)})
    try:
        m = diffusion_train.train_network(run_dir, "pre", workers=2, steps=DDP_STEPS, batch_size=DDP_BATCH,
                                          every=DDP_STEPS, gpu="off", log=lambda *_: None)
    finally:
        diffusion_train.train_fn = real_fn
    ranks = {str(r): json.loads((spy / f"rank{r}.json").read_text()) for r in (0, 1)}
    p0, p1 = (torch.load(spy / f"rank{r}.pt") for r in (0, 1))
    final, _, d = training.load_model(runs.network_path(run_dir, "pre"))
    fin = final.state_dict()
    return {"ranks": ranks, "finished": m["finished"],
            "first_batches_differ": ranks["0"]["first_rows"] != ranks["1"]["first_rows"],
            "parameters_equal": p0.keys() == p1.keys() and all(torch.equal(p0[k], p1[k]) for k in p0),
            "final_equals_rank0": all(torch.equal(p0[k], fin[k]) for k in fin), "final_step": d["step"]}


def _node_loss(run_dir: Path, cluster, workers) -> dict:
    import psutil

    from rayflavor.methods.diffusion import training
    from rayflavor.orchestration.diffusion_train import train_network
    from rayflavor.storage import runs

    box: dict = {}

    def fit() -> None:
        box["metrics"] = train_network(run_dir, "pre", workers=1, steps=STEPS, batch_size=BATCH, every=EVERY,
                                       gpu="off", log=lambda *_: None)

    t = threading.Thread(target=fit)
    t.start()
    log_path = Path(runs.network_dir(run_dir, "pre").path) / "metrics.jsonl"
    raylets = {w.node_id: w.all_processes["raylet"][0].process.pid for w in workers}

    def worker_nodes() -> set[str]:
        """Nodes with a Ray Train worker (its process title says so; its raylet is its parent)."""
        nodes = set()
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any("RayTrainWorker" in c for c in (proc.info["cmdline"] or [])):
                    nodes |= {nid for nid, pid in raylets.items() if pid in {a.pid for a in proc.parents()}}
            except psutil.Error:
                continue
        return nodes

    def lines() -> list[dict]:
        return [json.loads(ln) for ln in log_path.read_text().splitlines()] if log_path.exists() else []

    # Ray Train's controller takes the workers' reports from a queue of one every 2 s, and only then counts
    # their checkpoints; a third line means that report() returned twice, so the first report was taken
    deadline = time.monotonic() + 300
    while len(lines()) < 3:
        assert time.monotonic() < deadline and t.is_alive(), "no third report within 300 s"
        time.sleep(0.05)
    running = worker_nodes()
    at_loss = lines()
    victim = next(w for w in workers if w.node_id in running) if running else workers[0]
    cluster.remove_node(victim, allow_graceful=False)
    t.join(timeout=600)
    assert not t.is_alive(), "training did not finish after the node loss"
    final = runs.network_path(run_dir, "pre")
    d = training.load_model(final)[2] if final.is_file() else {"step": -1}
    return {"log": lines(), "lines_at_loss": len(at_loss), "taken_at_loss": at_loss[-3]["step"],
            "victim_ran_the_worker": bool(running),
            "fit_returned": "metrics" in box, "finished": bool(box.get("metrics", {}).get("finished")),
            "final_step": d["step"]}


def _body(tmp: str) -> dict:
    from rayflavor.orchestration.diffusion_dataset import make_dataset

    with loopback_cluster(head_cpus=0, worker_cpus=[1, 1]) as (cluster, workers):
        out = {}
        for name in ("ddp", "loss"):
            run = Path(tmp) / name
            make_dataset(run, n=1500, seed=1, shards=2, log=lambda *_: None)
            out[name] = _ddp(run) if name == "ddp" else _node_loss(run, cluster, workers)
        return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(_body(sys.argv[1])), flush=True)
