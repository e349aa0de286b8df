"""A lease on a scan or run directory: one writer at a time, never blocked by a dead one.

``acquire(loc, owner="rayflavor scan")`` writes ``loc/LOCK.json``::

    {"owner": "...", "host": "...", "pid": 1234, "token": "...", "acquired_at": ..., "expires_at": ...}

and raises :class:`LeaseHeld` (one line naming the holder) while another live lease exists. A
lease is *live* until ``expires_at`` (seconds since the epoch); its holder renews it
(:meth:`Lease.renew`, at least every ``ttl / 3``), so a process that dies stops renewing and its
lease lapses after at most ``ttl``. On the same host a lease whose pid is gone is taken over at
once, so a scan killed with SIGKILL can be resumed immediately.

A lock that cannot be read -- empty, not JSON, not an object, a field of the wrong type, an
``expires_at`` that is not a finite time within :data:`MAX_LEASE_SECONDS` of now -- is what a
writer killed between creating and writing the file leaves (or a hand edit).  It blocks a new
lease only while it is younger than :data:`UNREADABLE_GRACE` (a writer may still be writing it);
older, it counts as stale and is taken over.  Every takeover (unreadable, lapsed, or of a
process that is gone) is logged as a warning on the ``rayflavor.storage.lease`` logger (without
logging configured, Python prints such a warning as one line on stderr).

Creating the lock is atomic on a local file system (``O_CREAT | O_EXCL``). Object stores offer no
portable create-if-absent through pyarrow, so there the lease is taken by writing it and reading it
back after a short pause: two drivers started within that pause on the same prefix could both
believe they hold it. That window (a fraction of a second, by hand) is documented rather than
closed; a scan's commits are per island and write-once, so even then no committed model is lost.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from rayflavor.storage.location import Location, StorageError, _pid_alive

LOCK = "LOCK.json"
DEFAULT_TTL = 60.0
#: An unreadable lock younger than this [s] may still be being written; older, it is stale.
UNREADABLE_GRACE = 30.0
#: No lease runs longer than this beyond now [s]: a later ``expires_at`` makes the lock unreadable.
MAX_LEASE_SECONDS = 7 * 86400.0

log = logging.getLogger(__name__)


class LeaseHeld(StorageError):
    """Another live process holds the lease."""


def _valid(doc) -> dict | None:
    """``doc`` when it is a lease document this module can act on (module docstring), else None."""
    if not isinstance(doc, dict):
        return None
    exp = doc.get("expires_at")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        exp = float(exp)
    except OverflowError:
        return None
    if not math.isfinite(exp) or exp > time.time() + MAX_LEASE_SECONDS:
        return None
    if not all(isinstance(doc.get(k), str) for k in ("owner", "host", "token")):
        return None
    pid = doc.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int):
        return None
    return doc


def _describe(doc: dict) -> str:
    """'in use by OWNER (pid P on HOST, lease until T unless renewed)', naming only what ``doc`` holds."""
    who = doc.get("owner") if isinstance(doc.get("owner"), str) else "another process"
    where = []
    if isinstance(doc.get("pid"), int) and not isinstance(doc.get("pid"), bool):
        where.append(f"pid {doc['pid']}")
    if isinstance(doc.get("host"), str):
        where.append(f"on {doc['host']}")
    try:
        where.append(f"lease until {time.strftime('%H:%M:%S', time.localtime(float(doc['expires_at'])))} unless renewed")
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        pass
    return f"in use by {who}" + (f" ({' '.join(where[:2])}, {where[2]})" if len(where) == 3 else
                                  f" ({', '.join(where)})" if where else "")


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
        doc = read(self.loc)
        if doc is not None and doc.get("token") != self.token:
            raise LeaseHeld(f"{self.loc.uri}: the lease was taken over; {_describe(doc)}")
        self._write()

    def release(self) -> None:
        doc = read(self.loc)
        if doc is not None and doc.get("token") == self.token:
            self.lock.delete()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read(loc: Location) -> dict | None:
    """The lease document of ``loc`` if there is a readable one (live or not)."""
    try:
        return _valid((loc / LOCK).read_json())
    except (FileNotFoundError, StorageError):
        return None


def _unreadable_age(loc: Location) -> float | None:
    """Age [s] of an unreadable lock of ``loc`` (inf when the store gives no time); None when
    there is no lock or it is readable."""
    lock = loc / LOCK
    try:
        if not lock.is_file() or read(loc) is not None:
            return None
        t = lock.mtime()
    except (FileNotFoundError, StorageError):
        return None
    return math.inf if t is None else max(time.time() - t, 0.0)


def is_held(loc: Location) -> bool:
    """Whether a live lease (of another process or this one) is on ``loc``; an unreadable lock
    counts as held while it is younger than :data:`UNREADABLE_GRACE`."""
    doc = read(loc)
    if doc is None:
        age = _unreadable_age(loc)
        return age is not None and age < UNREADABLE_GRACE
    return _live(doc, time.time())


def acquire(loc: Location, *, owner: str, ttl: float = DEFAULT_TTL, settle: float = 0.2) -> Lease:
    """Take the lease of ``loc`` (module docstring); raises :class:`LeaseHeld` when it is live elsewhere."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    lease = Lease(loc, owner, float(ttl), secrets.token_hex(8))
    lock = lease.lock
    doc = read(loc)
    if doc is not None and _live(doc, time.time()) and not _mine(doc):
        raise LeaseHeld(f"{loc.uri} is {_describe(doc)}")
    unreadable = _unreadable_age(loc) if doc is None else None
    if unreadable is not None and unreadable < UNREADABLE_GRACE:
        raise LeaseHeld(f"{lock.uri} cannot be read and is {unreadable:.0f} s old: it may still be being written by "
                        f"another process; try again in {UNREADABLE_GRACE:.0f} s (an unreadable lock older than that "
                        f"is stale and taken over)")
    if unreadable is not None:
        log.warning("%s: took over an unreadable lock (%s old; a writer killed while creating it?)", lock.uri,
                    "of unknown age" if math.isinf(unreadable) else f"{unreadable:.0f} s")
    elif doc is not None and not _mine(doc):
        log.warning("%s: took over the lease of %s (%s)", lock.uri, doc["owner"],
                    "expired" if doc["expires_at"] <= time.time() else f"pid {doc['pid']} is gone")
    if loc.is_local:
        path = lock.local_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # a stale lock: remove it if it is still the one judged stale, then race fairly for O_EXCL
        now_doc = read(loc)
        if (doc is None and unreadable is not None and now_doc is None) or \
                (doc is not None and now_doc is not None and now_doc.get("token") == doc.get("token")):
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


__all__ = ["DEFAULT_TTL", "LOCK", "MAX_LEASE_SECONDS", "UNREADABLE_GRACE", "Lease", "LeaseHeld", "acquire", "is_held", "read"]
