"""Parquet rows of valid FN models (schema ``rayflavor-fn-models/1``) and the scan's part files.

A scan's parts live under ``OUT/islands/island-XXXX/`` and are written and committed by
:class:`rayflavor.storage.island_store.IslandStore` (write-once object names plus a JSON
checkpoint that lists the committed ones; local directory or object store).  Readers use
:func:`rayflavor.storage.island_store.committed_parts`, which returns only committed parts.

Row schema: every column of :data:`rayflavor.physics.fn.PARAMETERS` (charges as int64), every
observable, loss and flag :func:`fn.evaluate` returns (the 45 exponents
:data:`fn.EXPONENTS` among them), then ``island`` (int64), ``seed`` (int64), ``generation`` (int64) and
``found_at`` (timestamp, UTC, microseconds).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rayflavor.physics import fn

SCHEMA_VERSION = "rayflavor-fn-models/1"
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
