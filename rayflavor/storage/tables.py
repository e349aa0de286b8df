"""Reading parameter tables and writing result tables as Parquet.

Writes are atomic: the file is written under a temporary name in the target directory and
moved into place with :func:`os.replace`, so a killed process never leaves a truncated file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class TableError(ValueError):
    """An input file that cannot be used: missing, not Parquet, or empty."""


def read_columns(path: str | Path) -> dict[str, np.ndarray]:
    """All columns of a Parquet file as numpy arrays (raises :class:`TableError`)."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise TableError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
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


def replace_atomically(path: str | Path, write: Callable[[str], object], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place with
    :func:`os.replace`; ``fsync`` forces the bytes to disk first.  Temporary names end in ``.tmp``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(table: pa.Table, path: str | Path, **kwargs) -> Path:
    """Write ``table`` to ``path`` atomically (temporary file + rename)."""
    return replace_atomically(path, lambda tmp: pq.write_table(table, tmp, **kwargs))
