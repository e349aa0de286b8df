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


def stop_process_group(proc: subprocess.Popen, temp: str | os.PathLike | None = None, *, grace: float = 3) -> None:
    """SIGTERM the process group of ``proc`` (a ``ray start --head --block`` started with
    ``start_new_session=True``), SIGKILL it after ``grace`` seconds, then remove its temp dir.
    A test's head has nothing to save: Ray's own graceful stop of its processes, one after the
    other, takes ~33 s here, and the SIGKILL of the whole group ends them all at once."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except ProcessLookupError:  # the group is gone already
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
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

#: For a Ray head with the dashboard: its usage-stats module asks the cloud metadata servers
#: (169.254.169.254, metadata.google.internal) which cloud it runs on, through ``requests``, even
#: with usage stats disabled. A proxy on a closed loopback port (the discard port) refuses those
#: requests on loopback; loopback addresses bypass it.
NO_CLOUD_METADATA_ENV = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
                         "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}


def ray_subprocess_env(root: str | os.PathLike, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that starts a Ray cluster of its own on loopback: the caller's
    environment, ``LOOPBACK_RAY_ENV``, ``NO_CLOUD_METADATA_ENV``, no token auth (no token file shared
    with the rest of the machine), no usage stats, ``root`` first on PYTHONPATH, no inherited
    ``RAY_ADDRESS``."""
    env = {**os.environ, **LOOPBACK_RAY_ENV, **NO_CLOUD_METADATA_ENV, "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0",
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


#: the GCS's health checks of the nodes, for clusters that lose a node on purpose: a check every
#: second, a node dead after 3 failed checks (Ray's defaults: every 3 s, 5 failures, so a killed
#: raylet is noticed ~15 s later).  The 10-s timeout of one check stays, so a raylet that is only
#: slow on a loaded 2-core machine is not declared dead; a killed one refuses at once.
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 1000,
                   "health_check_failure_threshold": 3}


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


def _require_loopback_switch() -> None:
    import ray._private.ray_constants as ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("Ray was imported without LOOPBACK_RAY_ENV: its clients would dial this machine's "
                           "non-loopback address; start the process with ray_subprocess_env()")


@contextlib.contextmanager
def loopback_cluster(head_cpus: float = 0, worker_cpus: Sequence[float] = (), *, connect: bool = True,
                     **node_args) -> Iterator[tuple[Any, list[Any]]]:
    """A multi-node ``ray.cluster_utils.Cluster`` on this machine whose nodes, GCS and clients stay on
    127.0.0.1: a head with ``head_cpus`` CPUs and one worker node per entry of ``worker_cpus`` (CPUs
    each), all with ``loopback_node_args(**node_args)``. Yields ``(cluster, workers)`` (workers in
    the order of ``worker_cpus``) with the driver connected (``connect``). Add nodes later with
    ``cluster.add_node(**loopback_node_args(num_cpus=...))``. On exit checks that every node is
    still on loopback (``assert_ray_on_loopback``), then disconnects and shuts the cluster down.
    The head notices a lost node within ~3 s (:data:`FAST_NODE_DEATH`).

    Run it in a process started with ``ray_subprocess_env`` (``run_result_script`` does), never in
    the pytest process: a second Ray next to the session's is refused, and Ray must be imported
    with ``LOOPBACK_RAY_ENV`` set. Raises RuntimeError when it was not.
    """
    import ray
    from ray.cluster_utils import Cluster

    _require_loopback_switch()
    cluster = Cluster(initialize_head=True, head_node_args=loopback_node_args(
        num_cpus=head_cpus, _system_config=FAST_NODE_DEATH, **node_args))
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
        cluster.shutdown()  # graceful: a raylet killed outright leaves its dashboard and runtime-env agents running


def fake_autoscaling_config(gcs_port: int, head_resources: dict[str, float],
                            worker_types: dict[str, dict], *, max_workers: int | None = None,
                            idle_timeout_minutes: float = 5, upscaling_speed: float = 1.0) -> dict:
    """A cluster config for Ray's fake multi-node provider (what ``ray.cluster_utils.AutoscalingCluster``
    generates): a head of ``head_resources`` and worker node types ``{name: {"resources": {...},
    "min_workers": m, "max_workers": n}}``; the nodes it adds are local Ray nodes."""
    types = {"ray.head.default": {"node_config": {}, "resources": dict(head_resources), "max_workers": 0}}
    for name, t in worker_types.items():
        types[name] = {"node_config": {}, "min_workers": 0, **t}
    return {
        "cluster_name": "rayflavor-fake",
        "max_workers": max_workers if max_workers is not None else sum(t.get("max_workers", 0) for t in types.values()),
        "upscaling_speed": upscaling_speed, "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": f"{LOOPBACK}:{gcs_port}"},
        "available_node_types": types, "head_node_type": "ray.head.default", "auth": {}, "docker": {},
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False, "rsync_exclude": [],
        "rsync_filter": [], "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }


@contextlib.contextmanager
def loopback_autoscaling_cluster(work: str | os.PathLike, head_resources: dict[str, float],
                                 worker_types: dict[str, dict], *, connect: bool = True,
                                 update_interval_s: int = 1, **config) -> Iterator[str]:
    """Ray's fake autoscaler on 127.0.0.1: ``ray start --head`` (its own process group, its own temp
    dir) with ``fake_autoscaling_config(port, head_resources, worker_types, **config)``; the
    autoscaler adds and removes local worker nodes for the pending demand. Yields the GCS address
    (``127.0.0.1:port``) with the driver connected (``connect``); on exit checks every node is on
    loopback, disconnects and stops the head's process group (never ``ray stop``, which would stop
    every Ray on the host, as ``AutoscalingCluster.shutdown`` does). The head's log is
    ``work/head.log``. Run it like ``loopback_cluster``: in a process started with ``ray_subprocess_env``
    (RuntimeError otherwise).
    """
    import json
    import sys
    import time
    from pathlib import Path

    import ray

    _require_loopback_switch()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = work / "autoscaling.json"
    cfg.write_text(json.dumps(fake_autoscaling_config(port, head_resources, worker_types, **config)))
    temp = f"/tmp/rfas{os.getpid()}_{port}"  # short: Ray's socket paths have a length limit
    others = {k: v for k, v in head_resources.items() if k not in ("CPU", "GPU")}
    env = {**os.environ, **LOOPBACK_RAY_ENV, "AUTOSCALER_UPDATE_INTERVAL_S": str(int(update_interval_s)),
           "RAY_FAKE_CLUSTER": "1"}
    log = open(work / "head.log", "w")
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--node-ip-address={LOOPBACK}",
         f"--port={port}", f"--num-cpus={int(head_resources.get('CPU', 0))}",
         f"--num-gpus={int(head_resources.get('GPU', 0))}",
         f"--resources={json.dumps(others)}", "--include-dashboard=false", f"--temp-dir={temp}",
         f"--autoscaling-config={cfg}", "--disable-usage-stats"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake autoscaling head did not start:\n"
                                       + (work / "head.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        address = f"{LOOPBACK}:{port}"
        if connect:
            ray.init(address=address, log_to_driver=False)
        yield address
        if connect:
            assert_ray_on_loopback()
    finally:
        ray.shutdown()
        stop_process_group(head, temp)
        log.close()


class SwitchableProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` (``host:port``) that a test switches:

    * ``"on"``: bytes flow both ways (one pair of threads per connection);
    * ``"off"``: the store is unreachable -- every open connection is reset and every new one is
      accepted and reset at once (what a client sees of an endpoint that went away);
    * ``"slowdown"``: every request gets ``503 SlowDown`` (S3's throttling answer) and the
      connection is closed.

    ``url`` is the endpoint to give the client (``AWS_ENDPOINT_URL``); ``refused`` counts the
    connections turned away while not ``"on"``.  Use as a context manager or call :meth:`close`.
    """

    SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                     b"<Message>Please reduce your request rate.</Message><RequestId>proxy</RequestId></Error>")

    def __init__(self, target: str) -> None:
        import threading

        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.mode = "on"
        self.refused = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def set(self, mode: str) -> None:
        """Switch to ``"on"``, ``"off"`` or ``"slowdown"`` (open connections are reset unless "on")."""
        if mode not in ("on", "off", "slowdown"):
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
            doomed = list(self._open) if mode != "on" else []
            if doomed:
                self._open.clear()
        for s in doomed:
            _reset(s)

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "off":
                self.refused += 1
                _reset(client)
            elif mode == "slowdown":
                self.refused += 1
                threading.Thread(target=self._slowdown, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _slowdown(self, client: socket.socket) -> None:
        try:
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    break
                head += chunk
            client.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
                           b"Content-Length: " + str(len(self.SLOWDOWN_BODY)).encode() + b"\r\n\r\n" + self.SLOWDOWN_BODY)
        except OSError:
            pass
        finally:
            client.close()

    def _connect(self, client: socket.socket) -> None:
        import threading

        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self._lock:
            if self.mode != "on":
                _reset(client)
                _reset(upstream)
                return
            self._open.update((client, upstream))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)

    def close(self) -> None:
        self._closed = True
        self.set("off")
        self._listener.close()

    def __enter__(self) -> "SwitchableProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reset(s: socket.socket) -> None:
    """Close ``s`` with a TCP reset (SO_LINGER 0), as a vanished server's host would answer."""
    import struct

    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()
