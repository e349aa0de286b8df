"""The multi-node test clusters stay on loopback: every node, the GCS and every TCP connection of
Ray's processes use 127.0.0.1, never this machine's other addresses (``helpers.loopback_cluster``,
the one way the multi-node tests start Ray)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LOOPBACK_RAY_ENV, assert_ray_on_loopback, loopback_cluster, ray_subprocess_env, run_result_script

ROOT = Path(__file__).resolve().parent.parent


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_is_loopback_reads_ipv4_ipv6_and_mapped_addresses():
    assert _is_loopback("127.0.0.1") and _is_loopback("127.3.2.1") and _is_loopback("::1")
    assert _is_loopback("::ffff:127.0.0.1")
    assert not _is_loopback("192.0.2.2") and not _is_loopback("::ffff:192.0.2.2") and not _is_loopback("fd00::2")


@pytest.mark.slow
def test_every_node_the_gcs_and_every_connection_stay_on_loopback():
    r = run_result_script(__file__, root=ROOT, timeout=300)
    assert len(r["nodes"]) == 3 and all(a.startswith("127.") for a in r["nodes"]), r
    assert r["gcs"].startswith("127.") and r["cluster_address"].startswith("127."), r
    assert set(r["task_ips"]) == {"127.0.0.1"} and len(set(r["task_nodes"])) == 2, r  # both workers ran a task
    assert r["processes"] >= 6 and r["connections"] > 0, r  # Ray's processes were seen talking
    assert r["off_loopback"] == [], r


def test_the_session_ray_is_on_loopback(ray_session):
    assert_ray_on_loopback()  # conftest sets LOOPBACK_RAY_ENV before ray is imported


def test_loopback_cluster_refuses_a_ray_imported_without_the_loopback_switch():
    env = {k: v for k, v in ray_subprocess_env(ROOT).items() if k not in LOOPBACK_RAY_ENV}
    code = ("from helpers import loopback_cluster\n"
            "try:\n    loopback_cluster(worker_cpus=[1]).__enter__()\n"
            "except RuntimeError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parent, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "REFUSED" in out.stdout and "non-loopback" in out.stdout, out.stdout + out.stderr


def _body() -> dict:
    import psutil
    import ray

    with loopback_cluster(head_cpus=0, worker_cpus=[1, 1]) as (cluster, _):
        @ray.remote(num_cpus=1)
        def where() -> tuple[str, str]:
            import time

            time.sleep(1.0)  # both workers busy at once
            return ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()

        placed = ray.get([where.remote() for _ in range(4)])
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        conns = []
        for p in procs:
            try:
                conns += [c for c in p.net_connections(kind="inet") if c.raddr]
            except psutil.Error:
                continue
        off = sorted({f"{c.laddr.ip} -> {c.raddr.ip}" for c in conns
                      if not (_is_loopback(c.laddr.ip) and _is_loopback(c.raddr.ip))})
        return {"nodes": [n["NodeManagerAddress"] for n in ray.nodes()], "gcs": ray.get_runtime_context().gcs_address,
                "cluster_address": cluster.address, "task_ips": [ip for ip, _ in placed],
                "task_nodes": [nid for _, nid in placed], "processes": len(procs), "connections": len(conns),
                "off_loopback": off}


if __name__ == "__main__":
    print("RESULT " + json.dumps(_body()), flush=True)
