"""The scan on real multi-node Ray, on this machine: a node lost mid-scan, and Ray's fake
autoscaler adding nodes for pending islands.

Each test starts its own Ray cluster, so its body runs in a subprocess (this file run as a
script) and never meets the session's Ray (``ray_session``) in one process.  The subprocess
prints one JSON line with what it observed; the assertions are here.  The clusters run on
127.0.0.1 only (``helpers.loopback_cluster``, ``helpers.ray_subprocess_env``), with
``RAY_AUTH_MODE=disabled`` (no token file shared with the rest of the machine), and are torn
down by process group, never by ``ray stop`` (which would stop every Ray on the host).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import loopback_autoscaling_cluster, loopback_cluster, run_result_script

ROOT = Path(__file__).resolve().parent.parent
RELAXED = str(Path(__file__).with_name("data_relaxed.toml"))

pytestmark = pytest.mark.slow


def _run(case: str, out: Path, timeout: float) -> dict:
    return run_result_script(__file__, case, out, root=ROOT, timeout=timeout)


def test_islands_spread_over_nodes_and_survive_losing_one(tmp_path):
    r = _run("node-loss", tmp_path / "scan", timeout=420)
    workers = set(r["workers"])
    first_nodes = {starts[0] for starts in r["starts"].values()}
    assert first_nodes == workers  # islands landed on both workers (scan.json's nodes)
    lost = r["lost_node"]
    moved = [i for i, starts in r["starts"].items() if starts[0] == lost]
    assert moved, r
    for i in moved:  # restarted elsewhere, from their checkpoints
        assert len(r["starts"][i]) >= 2 and r["starts"][i][-1] != lost, r["starts"][i]
    assert r["status"] == "finished" and set(r["states"]) <= {"done", "stopped"}, r
    assert r["missing_after"] == 0  # every model committed before the loss is in models.parquet
    assert r["duplicates_per_island"] == 0  # no charge assignment committed twice by an island
    assert r["committed_before"] > 0 and r["models"] >= r["committed_before_unique"]


def test_pending_islands_make_the_autoscaler_add_nodes(tmp_path):
    r = _run("autoscale", tmp_path / "scan", timeout=420)
    assert r["status"] == "finished", r
    assert set(r["stop_reasons"]) == {"target-valid"}, r  # the scan finished, every island ran
    assert r["nodes_alive_max"] >= 2  # the autoscaler started worker nodes
    assert len(r["island_nodes"]) == 3 and r["head"] not in r["island_nodes"], r  # every island ran on them
    assert r["models"] > 0


def test_an_empty_cluster_grows_until_every_island_runs_and_shrinks_after(tmp_path):
    """A head without CPUs and 0 workers: the scan's pending islands make the fake autoscaler add
    2-CPU workers until all 4 islands run at once, and the idle workers go once they finish."""
    r = _run("grow-shrink", tmp_path / "scan", timeout=420)
    assert r["status"] == "finished" and r["states"] == ["done"], r  # none "not started" under the time limit
    assert r["workers_alive_max"] == 2, r  # 4 islands of 1 CPU on 2-CPU workers
    assert r["running_max"] == 4, r  # every island ran at the same time
    assert len(set(r["island_nodes"])) == 2 and r["head"] not in r["island_nodes"], r
    assert r["workers_alive_end"] == 0, r  # removed after the idle timeout
    assert set(r["node_ips"]) == {"127.0.0.1"}, r


def test_a_one_cpu_head_shows_the_autoscaler_every_pending_island(tmp_path):
    """200 islands on a 1-CPU head: the autoscaler's view (what `ray status` prints under
    "Demands") holds 199 pending 1-CPU requests, not a backlog cut at 64."""
    r = _run("demand", tmp_path / "scan", timeout=420)
    assert r["demand_cpus_max"] >= 180, r
    assert r["gcs_pending_cpus_max"] >= 180, r
    assert set(r["node_ips"]) == {"127.0.0.1"}, r


# ---------------------------------------------------------------------------------- subprocess bodies
def _settings(islands: int, target_valid: int, **kw):
    from dataclasses import replace

    from rayflavor.methods.ga.island import ISLAND_PRESETS
    from rayflavor.orchestration.scan_settings import ScanSettings

    island = replace(ISLAND_PRESETS["fast"], mass_tolerance=0.9, target_valid=target_valid, pop_size=40)
    return ScanSettings(islands=islands, seed=11, data=RELAXED, island=island, **kw)


def _committed(out) -> dict[int, list[tuple]]:
    import polars as pl

    from rayflavor.physics import fn
    from rayflavor.storage.island_store import IslandStore, list_islands

    rows = {}
    for i in list_islands(out):
        parts = IslandStore(out, i).committed_parts()
        rows[i] = pl.read_parquet([p.uri for p in parts]).select(list(fn.CHARGES)).rows() if parts else []
    return rows


def _node_loss(out_dir: str) -> dict:
    from rayflavor.orchestration.islands import run_scan
    from rayflavor.storage.dedupe import dedupe
    from rayflavor.storage.location import resolve

    out = resolve(out_dir)
    # 4 CPUs a worker, 4 islands spread 2 + 2: the survivor has room for the lost node's islands
    with loopback_cluster(head_cpus=0, worker_cpus=[4, 4]) as (cluster, w):
        # islands run until the time limit (a target they could reach before the loss would leave
        # nothing to restart); short flushes, so there are committed models before the loss
        settings = _settings(4, 100_000, chunk_seconds=0.5, flush_seconds=0.5, flush_rows=200, max_restarts=3,
                             time_limit=40.0)
        box: dict = {}
        t = threading.Thread(target=lambda: box.update(res=run_scan(settings, out, live=False, echo=lambda *_: None,
                                                                    stop_grace=30.0)))
        t.start()
        from rayflavor.storage.island_store import IslandStore

        deadline = time.monotonic() + 180
        while True:  # every island running on a worker, and each with committed models
            infos = {i: (IslandStore(out, i).read_checkpoint() or {}) for i in range(4)}
            if all(ck.get("parts") and ck.get("info", {}).get("starts") for ck in infos.values()):
                break
            assert time.monotonic() < deadline, "islands did not commit in time"
            time.sleep(0.3)
        victim = w[0]
        before = _committed(out)
        cluster.remove_node(victim, allow_graceful=False)
        t.join(timeout=300)
        assert not t.is_alive(), "the scan did not finish after the node loss"
        counts = dedupe(out, RELAXED)
        import polars as pl

        from rayflavor.physics import fn

        models = set(pl.read_parquet((out / "models.parquet").uri).select(list(fn.CHARGES)).rows())
        after = _committed(out)
        doc = (out / "scan.json").read_json()
        starts = {i: [s["node_id"] for s in v] for i, v in doc["island_starts"].items()}
        flat_before = [r for rows in before.values() for r in rows]
        return {"workers": [n.node_id for n in w], "lost_node": victim.node_id, "starts": starts,
                "status": doc["status"], "states": sorted({s["state"] for s in doc["islands_status"].values()}),
                "committed_before": len(flat_before), "committed_before_unique": len(set(flat_before)),
                "missing_after": len(set(flat_before) - models),
                "duplicates_per_island": sum(len(v) - len(set(v)) for v in after.values()),
                "models": len(models), "unique": counts.unique}


def _autoscale(out_dir: str) -> dict:
    import ray

    from rayflavor.orchestration.islands import run_scan
    from rayflavor.storage.dedupe import dedupe
    from rayflavor.storage.location import resolve

    out = resolve(out_dir)
    # a head without CPUs, so that an island can only run on a worker the fake autoscaler adds (up to
    # two of 1 CPU); with a CPU on the head, quick islands could all finish there before a worker joins
    with loopback_autoscaling_cluster(Path(out_dir).parent / "autoscaler", {"CPU": 0},
                                      {"ray.worker.cpu": {"resources": {"CPU": 1}, "max_workers": 2}}):
        head_id = ray.get_runtime_context().get_node_id()
        alive = [1]
        done = threading.Event()

        def watch():
            while not done.wait(1.0):
                alive.append(sum(n["Alive"] for n in ray.nodes()))

        threading.Thread(target=watch, daemon=True).start()
        settings = _settings(3, 15, chunk_seconds=1.0, flush_seconds=2.0, time_limit=300.0)
        res = run_scan(settings, out, live=False, echo=lambda *_: None)
        done.set()
        counts = dedupe(out, RELAXED)
        doc = (out / "scan.json").read_json()
        return {"status": doc["status"], "head": head_id, "nodes_alive_max": max(alive),
                "island_nodes": [v[-1]["node_id"] for v in doc["island_starts"].values() if v],
                "stop_reasons": sorted({s.get("stop_reason") for s in res.statuses.values()}), "models": counts.unique}


def _grow_shrink(out_dir: str) -> dict:
    from functools import partial

    import ray

    from rayflavor.bench.scan import TinyIsland
    from rayflavor.orchestration.islands import run_scan
    from rayflavor.orchestration.scan_settings import ScanSettings
    from rayflavor.storage.location import resolve

    out = resolve(out_dir)
    # a head without CPUs, up to two 2-CPU workers that go after 6 s idle
    with loopback_autoscaling_cluster(Path(out_dir).parent / "autoscaler", {"CPU": 0},
                                      {"ray.worker.cpu": {"resources": {"CPU": 2}, "max_workers": 2}},
                                      idle_timeout_minutes=0.1):
        head_id = ray.get_runtime_context().get_node_id()
        seen = {"workers": [0], "ips": set(), "busy": [0.0]}
        done = threading.Event()

        def workers_alive() -> int:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            seen["ips"].update(n["NodeManagerAddress"] for n in nodes)
            return sum(n["NodeID"] != head_id for n in nodes)

        def watch():
            while not done.wait(0.5):
                seen["workers"].append(workers_alive())
                # CPUs held by placed island actors (1 each)
                seen["busy"].append(ray.cluster_resources().get("CPU", 0.0) - ray.available_resources().get("CPU", 0.0))

        threading.Thread(target=watch, daemon=True).start()
        # each island works 40 x 0.5 s = 20 s, long enough to be seen running with all the others
        settings = ScanSettings(islands=4, seed=3, chunk_seconds=0.5, flush_seconds=1.0, time_limit=300.0)
        make = partial(TinyIsland, steps=40, step_seconds=0.5)
        res = run_scan(settings, out, live=False, echo=lambda *_: None, make=make, restore=TinyIsland.from_state)
        done.set()
        deadline = time.monotonic() + 180
        while workers_alive() and time.monotonic() < deadline:  # the idle workers are removed
            time.sleep(1.0)
        doc = (out / "scan.json").read_json()
        return {"status": doc["status"], "head": head_id, "states": sorted({s["state"] for s in res.statuses.values()}),
                "workers_alive_max": max(seen["workers"]), "workers_alive_end": workers_alive(),
                "running_max": max(seen["busy"]), "node_ips": sorted(seen["ips"]),
                "island_nodes": [v[-1]["node_id"] for v in doc["island_starts"].values() if v]}


def _demand(out_dir: str) -> dict:
    import os
    import signal
    from functools import partial

    import ray
    from ray._private import ray_constants
    from ray.autoscaler.v2.sdk import get_cluster_resource_state
    from ray.experimental.internal_kv import _internal_kv_get

    from rayflavor.bench.scan import TinyIsland
    from rayflavor.orchestration.islands import run_scan
    from rayflavor.orchestration.scan_settings import ScanSettings

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        demand, pending, ips = [0.0], [0.0], []

        def watch():
            """Reads both views of the demand until they hold 199 CPUs (or 45 s), then stops the scan
            as Ctrl-C would (SIGTERM to this process: the scan runs in the main thread)."""
            deadline = time.monotonic() + 45
            try:
                while time.monotonic() < deadline and min(demand[-1], pending[-1]) < 199:
                    time.sleep(1.0)
                    # the autoscaler's own report (`ray status`: "Demands"), written by the head's monitor
                    raw = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
                    if raw:
                        report = json.loads(raw)["load_metrics_report"]
                        demand.append(sum(b.get("CPU", 0.0) * n for b, n in report.get("resource_demand", [])))
                    # the pending requests the GCS hands to the autoscaler
                    state = get_cluster_resource_state(ray._private.worker.global_worker.gcs_client)
                    pending.append(sum(r.request.resources_bundle.get("CPU", 0.0) * r.count
                                       for r in state.pending_resource_requests))
                ips.extend(sorted({n["NodeManagerAddress"] for n in ray.nodes()}))
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
        # the time limit only bounds a watcher that never signals
        settings = ScanSettings(islands=200, seed=0, chunk_seconds=0.5, time_limit=120.0)
        run_scan(settings, out_dir, live=False, echo=lambda *_: None, stop_grace=1.0,
                 make=partial(TinyIsland, steps=10**6, step_seconds=0.1), restore=TinyIsland.from_state)
        return {"demand_cpus_max": max(demand), "gcs_pending_cpus_max": max(pending), "node_ips": ips}
    finally:
        ray.shutdown()


if __name__ == "__main__":
    case, out_dir = sys.argv[1], sys.argv[2]
    result = {"node-loss": _node_loss, "autoscale": _autoscale, "grow-shrink": _grow_shrink,
              "demand": _demand}[case](out_dir)
    print("RESULT " + json.dumps(result), flush=True)
