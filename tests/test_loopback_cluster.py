"""The multi-node test clusters stay on loopback: every node, the GCS and every TCP connection of
Ray's processes use 127.0.0.1, never this machine's other addresses (``helpers.loopback_cluster``,
the one way the multi-node tests start Ray)."""

from __future__ import annotations

import ipaddress
import json
import os
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


@pytest.mark.parametrize("address, ray_address, switched", [
    (None, None, True), ("local", None, True), ("local", "10.0.0.5:6379", True),
    (None, "10.0.0.5:6379", False), ("10.0.0.5:6379", None, False), ("auto", None, False),
])
def test_only_a_command_that_starts_an_embedded_ray_turns_the_loopback_switch_on(monkeypatch, address, ray_address,
                                                                                   switched):
    from rayflavor.cli import options

    monkeypatch.delenv(options.LOOPBACK_ENV[0], raising=False)
    if ray_address:
        monkeypatch.setenv("RAY_ADDRESS", ray_address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert options.embedded_ray_on_loopback(None, None, address) == address
    assert (os.environ.get(options.LOOPBACK_ENV[0]) == "0") is switched
    monkeypatch.setenv(options.LOOPBACK_ENV[0], "1")  # a value the user set is kept
    options.embedded_ray_on_loopback(None, None, address)
    assert os.environ[options.LOOPBACK_ENV[0]] == "1"


@pytest.mark.ray
def test_a_commands_embedded_ray_listens_and_talks_on_loopback_only():
    """A command of the CLI (its --address option, then ensure_ray, as scan and diffusion do) in a
    process started without the loopback switch: every socket Ray's processes listen on or connect
    from is on 127.0.0.1, and its node registers there."""
    env = {k: v for k, v in ray_subprocess_env(ROOT).items() if k not in LOOPBACK_RAY_ENV}
    r = run_result_script(__file__, "embedded", root=ROOT, timeout=300, env=env)
    assert r["node_ip"] == "127.0.0.1" and r["task_ip"] == "127.0.0.1", r
    assert r["processes"] >= 4 and r["listening"] >= 3 and r["connections"] > 0, r  # Ray's processes were seen
    assert r["off_loopback"] == [], r


def _embedded() -> dict:
    """Run from the subprocess: a click command with rayflavor's --address, started with no address."""
    import click
    import psutil
    from click.testing import CliRunner

    from rayflavor.cli import options

    seen: dict = {}

    @click.command()
    @options.address_option()
    def cmd(address):
        import ray

        from rayflavor.orchestration.runtime import ensure_ray

        ensure_ray(address)
        seen["task_ip"] = ray.get(ray.remote(lambda: ray.util.get_node_ip_address()).remote())
        seen["node_ip"] = ray.nodes()[0]["NodeManagerAddress"]
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        socks = []
        for p in procs:
            try:
                socks += list(p.net_connections(kind="inet"))
            except psutil.Error:
                continue
        listening = [c for c in socks if c.status == psutil.CONN_LISTEN]
        talking = [c for c in socks if c.raddr]
        seen["off_loopback"] = sorted({f"listens on {c.laddr.ip}" for c in listening if not _is_loopback(c.laddr.ip)}
                                      | {f"{c.laddr.ip} -> {c.raddr.ip}" for c in talking
                                         if not (_is_loopback(c.laddr.ip) and _is_loopback(c.raddr.ip))})
        seen.update(processes=len(procs), listening=len(listening), connections=len(talking))
        ray.shutdown()

    res = CliRunner().invoke(cmd, [], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return seen


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
    print("RESULT " + json.dumps(_embedded() if sys.argv[1:] == ["embedded"] else _body()), flush=True)
