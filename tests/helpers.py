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
