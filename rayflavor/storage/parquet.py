"""Parquet rows of valid FN models (schema ``rayflavor-fn-models/1``) and the scan's part files.

A scan's parts live under ``OUT/islands/island-XXXX/`` and are written and committed by
:class:`rayflavor.storage.island_store.IslandStore` (write-once object names plus a JSON
checkpoint that lists the committed ones; local directory or object store).  Readers use
:func:`list_parts` / :func:`rayflavor.storage.island_store.committed_parts`, which return only
committed parts.  :func:`write_part` and :func:`discard_parts_from` are the helpers of the
legacy local format (``part-NNNNNN.parquet`` + ``checkpoint.pkl``, before the IslandStore),
kept so that old scans (and tests that build one) can still be deduplicated.

Row schema: every column of :data:`rayflavor.physics.fn.PARAMETERS` (charges as int64), every
observable, loss and flag :func:`fn.evaluate` returns (the 45 exponents
:data:`fn.EXPONENTS` among them), then ``island`` (int64), ``seed`` (int64), ``generation`` (int64) and
``found_at`` (timestamp, UTC, microseconds).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.physics import fn
from rayflavor.storage.tables import replace_atomically

SCHEMA_VERSION = "rayflavor-fn-models/1"
PART_RE = re.compile(r"^part-(\d{6})\.parquet$")


def island_dir(out: str | Path, island: int) -> Path:
    return Path(out) / "islands" / f"island-{island:04d}"


def part_path(out: str | Path, island: int, seq: int) -> Path:
    return island_dir(out, island) / f"part-{seq:06d}.parquet"


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a fsynced temporary file and :func:`os.replace`."""
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(payload), fsync=True)


def to_table(models: dict[str, np.ndarray], *, island: int, seed: int) -> pa.Table:
    """The Arrow table of one batch of models (columns from :meth:`Island.drain`)."""
    n = len(models["valid"])
    cols: dict[str, pa.Array] = {}
    for name in fn.PARAMETERS:
        v = np.asarray(models[name])
        cols[name] = pa.array(v.astype(np.int64) if name in fn.CHARGES else v.astype(np.float64))
    skip = set(fn.PARAMETERS) | {"generation", "found_at"}
    for name, v in models.items():
        if name in skip:
            continue
        v = np.asarray(v)
        cols[name] = pa.array(v.astype(str) if v.dtype.kind in "US" else v)
    cols["island"] = pa.array(np.full(n, island, dtype=np.int64))
    cols["seed"] = pa.array(np.full(n, seed, dtype=np.int64))
    cols["generation"] = pa.array(np.asarray(models["generation"], dtype=np.int64))
    us = (np.asarray(models["found_at"], dtype=np.float64) * 1e6).astype("int64")
    cols["found_at"] = pa.array(us, type=pa.timestamp("us", tz="UTC"))
    table = pa.table(cols)
    return table.replace_schema_metadata({"schema": SCHEMA_VERSION})


def empty_table() -> pa.Table:
    """A table of this schema with no rows (default objectives), for a scan that found nothing."""
    x = np.empty((0, len(fn.PARAMETERS)))
    models: dict[str, np.ndarray] = {name: x[:, k] for k, name in enumerate(fn.PARAMETERS)}
    models.update(fn.evaluate(x))
    models["generation"] = np.empty(0, dtype=np.int64)
    models["found_at"] = np.empty(0)
    return to_table(models, island=0, seed=0)


def write_part(out: str | Path, island: int, seq: int, table: pa.Table) -> Path:
    """Legacy format: atomically write ``part-NNNNNN.parquet`` of ``island`` (an existing part of
    that number is replaced); it counts as committed while the island has no ``checkpoint.json``."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    path = part_path(out, island, seq)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def list_parts(out: str | Path, island: int | None = None) -> list[Path]:
    """Committed part files of a LOCAL scan ``out`` (one island, or all), in island and commit
    order: the parts the island checkpoints list (legacy islands: their part files by name);
    never the uncommitted objects of a dead attempt.  For any location use
    :func:`rayflavor.storage.island_store.committed_parts`."""
    from rayflavor.storage.island_store import IslandStore, committed_parts
    from rayflavor.storage.location import resolve

    loc = resolve(out)
    parts = committed_parts(loc) if island is None else IslandStore(loc, island).committed_parts()
    return [p.local_path() for p in parts]


def discard_parts_from(out: str | Path, island: int, seq: int) -> int:
    """Remove parts numbered ``>= seq`` and temporary files of ``island`` (uncommitted output of
    an attempt that died before its checkpoint); returns how many parts were removed."""
    d = island_dir(out, island)
    if not d.is_dir():
        return 0
    n = 0
    for p in d.iterdir():
        m = PART_RE.match(p.name)
        if (m and int(m.group(1)) >= seq) or p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
            n += bool(m)
    return n
