"""Reading parameter tables and writing result tables as Parquet.

Writes are atomic: the file is written under a temporary name in the target directory and
moved into place with :func:`os.replace`, so a killed process never leaves a truncated file.

* **Targets.** Only a regular file (replaced) or a new path is written; a device, FIFO, socket
  or directory is refused with :class:`TableError` (one line) before anything is written.  A
  symbolic link is followed: the file it points to is replaced, the link stays.
* **Symbolic links.** A link is followed to the file it names.  A *dangling* link (its target
  does not exist) is written through only when the target's directory exists -- as ``>`` in a
  shell does; otherwise it is refused with :class:`TableError` instead of creating directories
  somewhere the user never typed.  Missing directories of the path as typed are created.
* **Temporary files** are named ``.<name>.<pid>-<n>@<host>.tmp`` beside ``<name>``
  (:func:`temporary_path`), so they are easy to find (``ls -a``) and to attribute; for a name
  too long for that (NAME_MAX is 255 bytes) ``<name>`` there is a 16-hex hash of it.  A process
  killed mid-write (SIGKILL, out of memory, power loss) leaves one behind; the next write to
  the same target removes it when it is *stale*: written by a process of this host that is no
  longer running, or (other hosts, older formats) untouched for :data:`STALE_SECONDS`.
  :func:`stale_temporaries` lists them.
* **Permissions.** New files are created with mode ``0666 & ~umask`` like any file a shell
  creates (so ``umask 022`` gives 0644 and others on a shared volume can read results); a
  replaced file keeps its mode (a private 0600 file stays private).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.messages import one_line

#: A temporary file of another host (or of an older naming) is removed once untouched this long.
STALE_SECONDS = 3600.0
_TMP_TAG = re.compile(r"^(?P<pid>\d+)-(?P<n>\d+)@(?P<host>[A-Za-z0-9._-]+)$")
_counter = itertools.count()


class TableError(ValueError):
    """An input file that cannot be used (missing, not Parquet, empty) or an output path that
    must not be written (a device, FIFO, socket or directory)."""


def read_columns(path: str | Path) -> dict[str, np.ndarray]:
    """All columns of a Parquet file as numpy arrays (raises :class:`TableError`)."""
    path = Path(path)
    if path.is_dir():
        raise TableError(f"{path}: is a directory, not a Parquet file")
    if path.exists() and not path.is_file():
        raise TableError(f"{path}: not a regular file")
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        names = pq.read_schema(path).names
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TableError(f"{path}: column name(s) {', '.join(map(repr, dup))} appear more than once")
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise TableError(f"{path}: not a readable Parquet file ({one_line(exc)})") from None
    if table.num_rows == 0:
        raise TableError(f"{path}: the file has no rows")
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if col.null_count:
            raise TableError(f"{path}: column {name!r} has {col.null_count} missing (null) value(s)")
        out[name] = col.to_numpy(zero_copy_only=False)
    return out


def to_arrow(columns: Mapping[str, np.ndarray]) -> pa.Table:
    """A pyarrow table from 1-D arrays (numpy unicode arrays become Arrow strings)."""
    arrays = {}
    for name, values in columns.items():
        v = np.asarray(values)
        arrays[name] = pa.array(v.astype(object) if v.dtype.kind == "U" else v)
    return pa.table(arrays)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname() or "localhost")


def writable_target(path: str | Path) -> Path:
    """The file a write to ``path`` replaces (symbolic links followed); :class:`TableError` if
    that exists and is not a regular file (device, FIFO, socket, directory) or its directory
    is not a directory.  Nothing is created."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        st = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        typed = Path(os.path.abspath(path))
        if os.path.islink(typed) and not target.parent.is_dir():
            raise TableError(f"{path}: a symbolic link to {target}, whose directory does not exist; "
                             f"refusing to create it (create it, or give another path)") from None
        ancestor = typed.parent
        while not os.path.lexists(ancestor):  # the first ancestor that is there, as typed
            ancestor = ancestor.parent
        if os.path.islink(ancestor) and not ancestor.exists():
            raise TableError(f"{path}: {ancestor} is a symbolic link to {os.readlink(ancestor)}, which does not "
                             f"exist; refusing to create it (create it, or give another path)") from None
        parent = target.parent
        while not parent.exists():  # the first existing ancestor must be a directory
            parent = parent.parent
        if not parent.is_dir():
            raise TableError(f"{path}: cannot create it, {parent} is not a directory") from None
        return target
    except OSError as exc:
        raise TableError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise TableError(f"{path}: is a directory; give a file name")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a character device" if stat.S_ISCHR(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode)
                else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a special file")
        raise TableError(f"{path}: is {kind}, not a regular file; refusing to replace it")
    return target


#: bytes kept free for ``<pid>-<n>@<host>.tmp`` in a temporary name (hosts are cut to 64)
_TAG_BYTES = 100


def _temporary_prefix(name: str) -> str:
    """``.<name>.``, or ``.<16-hex hash of name>.`` when a temporary name would exceed 255 bytes."""
    prefix = f".{name}."
    if len(prefix.encode()) + _TAG_BYTES > 255:
        prefix = f".{hashlib.sha1(name.encode()).hexdigest()[:16]}."
    return prefix


def temporary_path(path: str | Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>-<n>@<host>.tmp`` (module docstring)."""
    path = Path(path)
    return path.parent / f"{_temporary_prefix(path.name)}{os.getpid()}-{next(_counter)}@{_host()[:64]}.tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process (or an absurd pid: not ours to judge)
    return True


def stale_temporaries(path: str | Path, *, now: float | None = None) -> list[Path]:
    """Temporary files of earlier writes to ``path`` that no running process will finish:
    of this host and a process that is gone, or untouched for :data:`STALE_SECONDS`."""
    path = Path(path)
    now = time.time() if now is None else now
    host = _host()[:64]
    prefix = _temporary_prefix(path.name)
    out = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return []
    for p in candidates:
        m = _TMP_TAG.match(p.name[len(prefix):-len(".tmp")])
        try:
            old = now - p.lstat().st_mtime > STALE_SECONDS
        except OSError:
            continue
        if m and m["host"] == host:
            pid = int(m["pid"])
            if (pid != os.getpid() and not _pid_alive(pid)) or (pid == os.getpid() and old):
                out.append(p)
        elif old:
            out.append(p)
    return sorted(out)


def replace_atomically(path: str | Path, write: Callable[[str], object], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place with
    :func:`os.replace`; ``fsync`` forces the bytes to disk first.

    Refuses (:class:`TableError`) a target that exists and is not a regular file; removes the
    stale temporaries of earlier, killed writes to the same target; the new file's mode honours
    the umask.  Returns ``path`` as given.
    """
    target = writable_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in stale_temporaries(target):
        old.unlink(missing_ok=True)
    tmp = temporary_path(target)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # 0666 & ~umask, as a shell would
    try:
        write(str(tmp))
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))  # a replaced file keeps its mode
        except FileNotFoundError:
            pass
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        writable_target(target)  # still a regular file or absent (not swapped for a device meanwhile)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def write_atomic(table: pa.Table, path: str | Path, **kwargs) -> Path:
    """Write ``table`` to ``path`` atomically (temporary file + rename)."""
    return replace_atomically(path, lambda tmp: pq.write_table(table, tmp, **kwargs))
