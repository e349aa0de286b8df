"""Connecting to Ray: one rule for every command.

``address`` given (or ``RAY_ADDRESS`` set, as in a ``ray job submit`` driver): join that
cluster. Otherwise start an embedded local Ray sized to this machine (all its CPUs, no
dashboard). A no-op when Ray is already initialised (tests, notebooks).

An address that is not one (``"not an address"``) or that nothing answers at fails in seconds
with :class:`RayAddressError` (one line) instead of Ray's minutes of retries and log lines.
"""

from __future__ import annotations

import os
import socket

import ray

from rayflavor.messages import one_line

#: seconds to wait for a TCP connection to the head before giving up
CONNECT_TIMEOUT = 5.0


class RayAddressError(ValueError):
    """The Ray address is malformed or nothing answers there (one line)."""


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a head address, ``None`` for ``auto``/``local`` (Ray finds those).

    Accepted: ``host:port``, ``ray://host:port`` (Ray Client), ``auto``, ``local``.

    >>> parse_address("10.0.0.1:6379"), parse_address("ray://head:10001"), parse_address("auto")
    (('10.0.0.1', 6379), ('head', 10001), None)
    """
    a = address.strip()
    if a in ("auto", "local"):
        return None
    rest = a[len("ray://"):] if a.startswith("ray://") else a
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host) or "/" in rest:
        raise RayAddressError(f"--address {address!r} is not a Ray address (use host:port, ray://host:port or auto)")
    return host, int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Open (and close) a TCP connection to the head; RayAddressError if nothing answers."""
    hp = parse_address(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__.replace("Error", "").lower() or "no answer"
        raise RayAddressError(f"--address {address}: no Ray head answers at {hp[0]}:{hp[1]} ({why})") from None


def ensure_ray(address: str | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray; see the module
    docstring.  Raises :class:`RayAddressError` for a bad or unreachable address."""
    if address:
        check_reachable(address)  # even when Ray is up: a bad --address is always an error
    if ray.is_initialized():
        return
    if not address:
        address = os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)  # "local" and "auto" pass: Ray finds those itself
    if address and address != "local":
        try:
            ray.init(address=address, log_to_driver=False)
        except (ValueError, ConnectionError, RuntimeError, TimeoutError) as exc:
            raise RayAddressError(f"--address {address}: {one_line(exc)}") from None
    else:
        # address="local": always a new embedded instance, never a cluster that `ray start` left on this machine
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
