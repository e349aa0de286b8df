"""A lease on a scan or run directory: one writer at a time, never blocked by a dead one.

``acquire(loc, owner="rayflavor scan")`` writes ``loc/LOCK.json``::

    {"owner": "...", "host": "...", "pid": 1234, "token": "...", "acquired_at": ..., "expires_at": ...}

and raises :class:`LeaseHeld` (one line naming the holder) while another live lease exists. A
lease is *live* until ``expires_at`` (seconds since the epoch); its holder renews it
(:meth:`Lease.renew`, at least every ``ttl / 3``), so a process that dies stops renewing and its
lease lapses after at most ``ttl``. On the same host a lease whose pid is gone is taken over at
once, so a scan killed with SIGKILL can be resumed immediately.

Creating the lock is atomic on a local file system (``O_CREAT | O_EXCL``). Object stores offer no
portable create-if-absent through pyarrow, so there the lease is taken by writing it and reading it
back after a short pause: two drivers started within that pause on the same prefix could both
believe they hold it. That window (a fraction of a second, by hand) is documented rather than
closed; a scan's commits are per island and write-once, so even then no committed model is lost.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from rayflavor.storage.location import Location, StorageError, _pid_alive

LOCK = "LOCK.json"
DEFAULT_TTL = 60.0


class LeaseHeld(StorageError):
    """Another live process holds the lease."""


def _describe(doc: dict) -> str:
    until = time.strftime("%H:%M:%S", time.localtime(doc.get("expires_at", 0)))
    return (f"in use by {doc.get('owner', '?')} (pid {doc.get('pid', '?')} on {doc.get('host', '?')}, "
            f"lease until {until} unless renewed)")


def _live(doc: dict, now: float) -> bool:
    """Not expired, and (on this host) its process still runs."""
    if doc.get("expires_at", 0) <= now:
        return False
    pid = doc.get("pid")
    if doc.get("host") == socket.gethostname() and isinstance(pid, int):
        return _pid_alive(pid)
    return True


def _mine(doc: dict) -> bool:
    return doc.get("host") == socket.gethostname() and doc.get("pid") == os.getpid()


@dataclass
class Lease:
    """A held lease; renew it while working, release it when done (also as a context manager)."""

    loc: Location
    owner: str
    ttl: float
    token: str
    _doc: dict = field(default_factory=dict)

    @property
    def lock(self) -> Location:
        return self.loc / LOCK

    def _write(self) -> None:
        now = time.time()
        self._doc = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                     "acquired_at": self._doc.get("acquired_at", now), "expires_at": now + self.ttl}
        self.lock.write_json(self._doc)

    def renew(self) -> None:
        """Extend the lease by ``ttl``; LeaseHeld if another process took it over meanwhile."""
        try:
            doc = self.lock.read_json()
        except (FileNotFoundError, StorageError):
            doc = None
        if doc is not None and doc.get("token") != self.token:
            raise LeaseHeld(f"{self.loc.uri}: the lease was taken over; {_describe(doc)}")
        self._write()

    def release(self) -> None:
        try:
            doc = self.lock.read_json()
        except (FileNotFoundError, StorageError):
            return
        if doc.get("token") == self.token:
            self.lock.delete()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read(loc: Location) -> dict | None:
    """The lease document of ``loc`` if there is one (live or not)."""
    try:
        return (loc / LOCK).read_json()
    except (FileNotFoundError, StorageError):
        return None


def is_held(loc: Location) -> bool:
    """Whether a live lease (of another process or this one) is on ``loc``."""
    doc = read(loc)
    return doc is not None and _live(doc, time.time())


def acquire(loc: Location, *, owner: str, ttl: float = DEFAULT_TTL, settle: float = 0.2) -> Lease:
    """Take the lease of ``loc`` (module docstring); raises :class:`LeaseHeld` when it is live elsewhere."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    lease = Lease(loc, owner, float(ttl), secrets.token_hex(8))
    lock = lease.lock
    doc = read(loc)
    if doc is not None and _live(doc, time.time()) and not _mine(doc):
        raise LeaseHeld(f"{loc.uri} is {_describe(doc)}")
    if loc.is_local:
        path = lock.local_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if doc is not None:  # a lapsed or dead holder's lock: remove it, then race fairly for O_EXCL
            try:
                if json.loads(path.read_text()).get("token") == doc.get("token"):
                    path.unlink(missing_ok=True)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            other = read(loc) or {}
            raise LeaseHeld(f"{loc.uri} is {_describe(other)}") from None
        now = time.time()
        lease._doc = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid(), "token": lease.token,
                      "acquired_at": now, "expires_at": now + lease.ttl}
        with os.fdopen(fd, "w") as f:
            json.dump(lease._doc, f)
        return lease
    lease._write()
    time.sleep(settle)
    back = read(loc)
    if back is None or back.get("token") != lease.token:
        raise LeaseHeld(f"{loc.uri} is {_describe(back or {})}")
    return lease


__all__ = ["DEFAULT_TTL", "LOCK", "Lease", "LeaseHeld", "acquire", "is_held", "read"]
