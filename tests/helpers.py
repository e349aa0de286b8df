"""Small helpers shared by the tests that start servers and Ray heads of their own (importable from
pytest and from the test modules run as scripts in a subprocess: both have tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any


def free_ports(k: int) -> list[int]:
    """``k`` distinct free loopback ports: every socket stays bound until all are chosen, so the OS
    cannot hand the same port out twice (Ray refuses a port given to two of its components)."""
    sockets = [socket.socket() for _ in range(k)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def stop_process_group(proc: subprocess.Popen, temp: str | os.PathLike | None = None, *, grace: float = 20) -> None:
    """SIGTERM the process group of ``proc`` (a ``ray start --head --block`` started with
    ``start_new_session=True``), SIGKILL it after ``grace`` seconds, then remove its temp dir."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------ multi-node Ray on loopback only
LOOPBACK = "127.0.0.1"

#: Ray's single-host switch. With it off, ``ray._private.services.get_node_ip_address()`` answers
#: 127.0.0.1 instead of the address of the default route. Without it, every loopback address a
#: client is given is rewritten to this machine's non-loopback IP (``ray.init("127.0.0.1:port")``
#: dials ``<host IP>:port``), and the nodes Ray's fake autoscaler starts (which name no IP) register
#: under that IP. Read once, when ``ray`` is imported: it must be in the environment of the process
#: that imports ray (``ray_subprocess_env`` puts it there), and Ray's own processes inherit it.
LOOPBACK_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def ray_subprocess_env(root: str | os.PathLike, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that starts a Ray cluster of its own on loopback: the caller's
    environment, ``LOOPBACK_RAY_ENV``, no token auth (no token file shared with the rest of the
    machine), no usage stats, ``root`` first on PYTHONPATH, no inherited ``RAY_ADDRESS``."""
    env = {**os.environ, **LOOPBACK_RAY_ENV, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p), **extra}
    env.pop("RAY_ADDRESS", None)
    return env


def run_result_script(script: str | os.PathLike, *args: str, root: str | os.PathLike, timeout: float,
                      env: dict[str, str] | None = None) -> dict:
    """Run ``python script *args`` in its own process group with ``ray_subprocess_env(root)`` (or
    ``env``) and return the JSON of its last ``RESULT {...}`` output line. Fails the calling test,
    with the tail of the output, on a timeout (the whole group is killed), a non-zero exit or no
    result line."""
    import json
    import sys

    import pytest

    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env or ray_subprocess_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"{script} {' '.join(map(str, args))} did not finish within {timeout} s:\n{log[-4000:]}")
    lines = [ln for ln in log.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, log[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def loopback_node_args(**node_args) -> dict:
    """Arguments for ``ray.cluster_utils.Cluster`` (``head_node_args``) and ``Cluster.add_node``: the
    node on 127.0.0.1, no dashboard, an 80 MiB object store; ``node_args`` (e.g. ``num_cpus=4``,
    ``resources={...}``) are added or override."""
    return {"node_ip_address": LOOPBACK, "include_dashboard": False, "object_store_memory": 80 * 1024**2,
            **node_args}


def assert_ray_on_loopback() -> None:
    """Every node the connected driver sees, and the GCS, are on a 127.x address."""
    import ray

    gcs = ray.get_runtime_context().gcs_address
    assert gcs.startswith("127."), gcs
    addresses = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    assert addresses and all(a.startswith("127.") for a in addresses.values()), addresses


@contextlib.contextmanager
def loopback_cluster(head_cpus: float = 0, worker_cpus: Sequence[float] = (), *, connect: bool = True,
                     **node_args) -> Iterator[tuple[Any, list[Any]]]:
    """A multi-node ``ray.cluster_utils.Cluster`` on this machine whose nodes, GCS and clients stay on
    127.0.0.1: a head with ``head_cpus`` CPUs and one worker node per entry of ``worker_cpus`` (CPUs
    each), all with ``loopback_node_args(**node_args)``. Yields ``(cluster, workers)`` (workers in
    the order of ``worker_cpus``) with the driver connected (``connect``). Add nodes later with
    ``cluster.add_node(**loopback_node_args(num_cpus=...))``. On exit checks that every node is
    still on loopback (``assert_ray_on_loopback``), then disconnects and shuts the cluster down.

    Run it in a process started with ``ray_subprocess_env`` (``run_result_script`` does), never in
    the pytest process: a second Ray next to the session's is refused, and Ray must be imported
    with ``LOOPBACK_RAY_ENV`` set. Raises RuntimeError when it was not.
    """
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("Ray was imported without LOOPBACK_RAY_ENV: its clients would dial this machine's "
                           "non-loopback address; start the process with ray_subprocess_env()")
    import ray

    cluster = Cluster(initialize_head=True, head_node_args=loopback_node_args(num_cpus=head_cpus, **node_args))
    try:
        workers = [cluster.add_node(**loopback_node_args(num_cpus=c, **node_args)) for c in worker_cpus]
        cluster.wait_for_nodes()
        if connect:
            ray.init(address=cluster.address, log_to_driver=False)
        yield cluster, workers
        if connect:
            assert_ray_on_loopback()
    finally:
        ray.shutdown()
        cluster.shutdown()
