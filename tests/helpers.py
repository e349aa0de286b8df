"""Small helpers shared by the tests that start servers and Ray heads of their own (importable from
pytest and from the test modules run as scripts in a subprocess: both have tests/ on sys.path)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess


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


#: Environment that keeps every Ray node of a test on 127.0.0.1.  Ray turns a requested
#: ``127.0.0.1`` node address into the host's routable address (``services.resolve_ip_for_localhost``)
#: unless multi-node clusters are "disabled" by this variable; nodes added in-process
#: (``ray.cluster_utils.Cluster``, the fake autoscaler's provider) and ``ray start --head`` still work,
#: only ``ray start --address`` (a worker from the command line) is refused.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
