"""Run directories of the diffusion pipeline and their Parquet parts, on any storage.

``RUN`` is a local (or shared-volume) path, a ``file://`` URI or an object-store prefix such as
``s3://bucket/run`` (:mod:`rayflavor.storage.location`); every function here takes a path, URI or
:class:`~rayflavor.storage.location.Location` and returns Locations. Layout::

    RUN/dataset/part-00000.parquet ...      prior points + labels, column ``split`` (train|val)
    RUN/dataset/manifest.json               n, seed, shards
    RUN/networks/<name>/model.pt            trained networks: "pre", "tuned-1", "tuned-2", ...
    RUN/networks/<name>/metrics.jsonl       training / validation loss log; a round's record last
    RUN/ray/<name>-<attempt>/checkpoint_*   Ray Train checkpoints (resume source)
    RUN/samples/<tag>/part-00000.parquet    generated points + observables + chi2 + solution flag
    RUN/samples/<tag>/manifest.json         the sampling settings of that tag
    RUN/finetune/<name>.parquet             rows selected to fine-tune network <name>
    RUN/solutions.parquet                   every solution found in RUN/samples, deduplicated
    RUN/run.json                            the settings of ``diffusion run``, whole (a valid --config file)
    RUN/LOCK.json                           the lease of the process writing into RUN

Every file appears whole or not at all (locally: temporary file + ``os.replace``; on an object
store: one PUT, never a rename; a file streamed by :func:`parquet_writer` above 64 MiB: one
multipart upload, visible once complete). Part names are write-once per shard, and a shard's content is a
pure function of the set's settings, so a retried shard rewrites the same object. A file damaged
on disk is caught by :func:`part_ok` (footer, row count) before a finished part is trusted, and
:func:`read_parts` names a bad file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.messages import one_line
from rayflavor.storage.location import Location, resolve, temporary_beside
from rayflavor.storage.tables import to_arrow

PART = "part-{:05d}.parquet"
_PART_RE = re.compile(r"^part-(\d{5})\.parquet$")

Where = str | os.PathLike | Location


def loc(where: Where) -> Location:
    """The :class:`Location` of a path, URI or Location."""
    return where if isinstance(where, Location) else resolve(where)


def write_table(columns: dict[str, np.ndarray] | pa.Table, target: Where) -> Location:
    """Write a dict of equal-length 1-D arrays (or an Arrow table) as one Parquet file, whole or not at all."""
    t = loc(target)
    t.write_parquet(columns if isinstance(columns, pa.Table) else to_arrow(columns))
    return t


#: Files up to this size go to an object store in one PUT (:func:`parquet_writer`), larger ones in parts.
ONE_PUT_BYTES = 64 << 20


@contextmanager
def parquet_writer(target: Where, schema: pa.Schema, compression: str = "zstd",
                   use_dictionary: bool | list[str] = True) -> Iterator[pq.ParquetWriter]:
    """A ``ParquetWriter`` for tables of ``schema`` whose file appears at ``target`` whole, once the
    block ends without an error, or not at all: written to a local temporary file (beside ``target``
    when it is local, in the temp dir for an object store), then moved into place (``os.replace``)
    or uploaded: in one PUT up to :data:`ONE_PUT_BYTES`, else as one streamed multipart upload. Only
    the tables written at a time (and a file up to that size) are in memory. ``use_dictionary``: as
    ``pq.ParquetWriter`` (True, or the columns to dictionary-encode)."""
    t = loc(target)
    if t.is_local:
        t.local_path().parent.mkdir(parents=True, exist_ok=True)
        scratch = temporary_beside(t.local_path())
    else:
        fd, name = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".tmp")
        os.close(fd)
        scratch = Path(name)
    try:
        with pq.ParquetWriter(str(scratch), schema, compression=compression, use_dictionary=use_dictionary) as writer:
            yield writer
        if t.is_local:
            with open(scratch, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(scratch, t.local_path())
            return
        if scratch.stat().st_size <= ONE_PUT_BYTES:
            t.write_bytes(scratch.read_bytes())
            return
        t.upload_file(scratch)
    finally:
        scratch.unlink(missing_ok=True)


def write_json(obj, target: Where) -> Location:
    """Write ``obj`` as standard JSON (NaN and infinity refused: ValueError), whole or not at all."""
    t = loc(target)
    t.write_json(obj)
    return t


def read_json(target: Where):
    """A JSON file's content; ValueError naming the file when it is not (standard) JSON."""
    return loc(target).read_json()


def append_line(target: Where, line: str) -> None:
    """Append one line to a small text file (a log), rewriting it whole (object stores cannot append)."""
    t = loc(target)
    old = t.read_text() if t.is_file() else ""
    t.write_text(old + line.rstrip("\n") + "\n")


#: Schema-metadata key of a sample part: the counts of its shard (n, solutions, ...; JSON).
META_KEY = b"rayflavor"


def part_path(directory: Where, index: int) -> Location:
    return loc(directory) / PART.format(index)


def finished_parts(directory: Where) -> list[int]:
    """Indices of the part files in ``directory`` (sorted; each one was written whole)."""
    return sorted(int(m.group(1)) for name in loc(directory).list() if (m := _PART_RE.match(name)))


def write_part(directory: Where, index: int, table: pa.Table, meta: dict | None = None) -> Location:
    """Write part ``index`` of ``directory``; ``meta`` goes to the schema metadata."""
    if meta is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta, allow_nan=False).encode()})
    return write_table(table, part_path(directory, index))


def part_meta(path: Where) -> dict:
    """The counts stored with a sample part (ValueError naming the file if it is unreadable)."""
    p = loc(path)
    try:
        return json.loads(pq.read_schema(p.path, filesystem=p.fs).metadata[META_KEY])
    except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{p.uri}: not a readable sample part ({one_line(exc)}); delete it and rerun") from None


def part_stats(directory: Where) -> list[dict]:
    """The counts of every finished part of a sample set."""
    return [part_meta(part_path(directory, i)) for i in finished_parts(directory)]


def _num_rows(p: Location) -> int:
    return pq.read_metadata(p.path, filesystem=p.fs).num_rows


def part_ok(path: Where, rows: int | None = None, *, meta_n: int | None = None) -> bool:
    """True when ``path`` is a readable Parquet file (its footer parses) with ``rows`` rows (if given)
    and, for sample parts, counts with ``n == meta_n`` (if given)."""
    p = loc(path)
    try:
        if rows is not None and _num_rows(p) != rows:
            return False
        if meta_n is not None:
            return part_meta(p).get("n") == meta_n
        _num_rows(p)
        return True
    except (OSError, pa.ArrowException, ValueError):
        return False


def read_table(path: Where, columns: list[str] | None = None, filters=None) -> pa.Table:
    """One Parquet file; ValueError naming the file when it cannot be read."""
    p = loc(path)
    try:
        return p.read_parquet(columns=columns, filters=filters)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p.uri}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{p.uri}: not a readable Parquet file ({one_line(exc)}); delete it and rerun") from None


def read_schema(path: Where) -> pa.Schema:
    """The Arrow schema of one Parquet file, from its footer; ValueError naming the file when it cannot be read."""
    p = loc(path)
    try:
        return pq.read_schema(p.path, filesystem=p.fs)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p.uri}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{p.uri}: not a readable Parquet file ({one_line(exc)}); delete it and rerun") from None


def read_parts(directory: Where, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Concatenate the part files of ``directory`` (in index order); ValueError naming a bad part."""
    paths = [part_path(directory, i) for i in finished_parts(directory)]
    if not paths:
        raise FileNotFoundError(f"no Parquet parts in {loc(directory).uri}")
    return pa.concat_tables([read_table(p, columns=columns, filters=filters) for p in paths])


def check_parts(directory: Where, rows: list[int] | None = None) -> None:
    """ValueError naming the first part of ``directory`` that is unreadable or (with ``rows``, the
    expected row count of each part) has another number of rows or is missing."""
    have = finished_parts(directory)
    if rows is not None:
        missing = [i for i in range(len(rows)) if i not in have]
        if missing:
            raise ValueError(f"{part_path(directory, missing[0]).uri}: missing ({len(missing)} of {len(rows)} parts); "
                             "rerun `rayflavor diffusion dataset` with the same settings")
    for i in have:
        p = part_path(directory, i)
        try:
            n = _num_rows(p)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{p.uri}: not a readable Parquet file ({one_line(exc)}); delete it and rerun "
                             "`rayflavor diffusion dataset` with the same settings") from None
        if rows is not None and i < len(rows) and n != rows[i]:
            raise ValueError(f"{p.uri}: {n} rows, expected {rows[i]}; delete it and rerun `rayflavor diffusion dataset`")


def dataset_dir(run: Where) -> Location:
    return loc(run) / "dataset"


def network_dir(run: Where, name: str) -> Location:
    return loc(run) / "networks" / name


def network_path(run: Where, name: str) -> Location:
    return network_dir(run, name) / "model.pt"


def networks(run: Where) -> list[str]:
    """Names of the finished networks, in training order: pre, tuned-1, tuned-2, ..."""
    root = loc(run) / "networks"
    names = [n for n in root.list() if (root / n / "model.pt").is_file()]

    def key(n):
        m = re.match(r"tuned-(\d+)$", n)
        return (0, 0) if n == "pre" else (1, int(m.group(1))) if m else (2, n)
    return sorted(names, key=key)


def latest_network(run: Where) -> str | None:
    names = networks(run)
    return names[-1] if names else None


def require_dataset(run: Where, data: Where | None = None) -> Location:
    """The training data of ``run`` (``data``: a Parquet file or directory of parts, default the run's
    dataset), checked to exist and to be readable (every part's footer, and the row counts of its
    manifest); ValueError naming the fix or the bad file if not."""
    path = loc(data) if data else dataset_dir(run)
    if path.is_file():
        try:
            _num_rows(path)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{path.uri}: not a readable Parquet file ({one_line(exc)})") from None
        return path
    if not finished_parts(path):
        raise ValueError(f"no training data at {path.uri}; run `rayflavor diffusion dataset --out {loc(run).uri}` first")
    manifest = path / "manifest.json"
    rows = None
    if manifest.is_file():
        m = read_json(manifest)
        rows = [m["n"] // m["shards"] + (1 if i < m["n"] % m["shards"] else 0) for i in range(m["shards"])]
    check_parts(path, rows)
    return path


def require_network(run: Where, name: str | None = None) -> str:
    """``name`` (default: the newest network of ``run``), checked to exist; ValueError naming the fix if not."""
    name = name or latest_network(run)
    uri = loc(run).uri
    if name is None:
        raise ValueError(f"{uri} has no trained network; run `rayflavor diffusion train {uri}` first")
    if not network_path(run, name).is_file():
        raise ValueError(f"{uri} has no network {name!r} (have: {', '.join(networks(run)) or 'none'})")
    return name


def samples_dir(run: Where, tag: str) -> Location:
    return loc(run) / "samples" / tag


def solutions_path(run: Where) -> Location:
    return loc(run) / "solutions.parquet"


def ray_storage(run: Where) -> Location:
    """Where Ray Train keeps the run's checkpoints (``RunConfig(storage_path=..., storage_filesystem=...)``)."""
    return loc(run) / "ray"


def run_manifest_path(run: Where) -> Location:
    return loc(run) / "run.json"


def finetune_path(run: Where, name: str) -> Location:
    """The selected rows network ``name`` was fine-tuned on."""
    return loc(run) / "finetune" / f"{name}.parquet"


def finetune_sets(run: Where, before: int | None = None) -> list[pa.Table]:
    """The fine-tuning sets ``RUN/finetune/tuned-<r>.parquet`` of rounds ``r < before`` (all when None)."""
    root = loc(run) / "finetune"
    found = []
    for name in root.list():
        m = re.fullmatch(r"tuned-(\d+)\.parquet", name)
        if m and (before is None or int(m.group(1)) < before):
            found.append((int(m.group(1)), root / name))
    return [read_table(p) for _, p in sorted(found, key=lambda x: x[0])]


def sample_sets(run: Where) -> list[tuple[Location, dict]]:
    """(directory, manifest) of every sample set of ``run`` with a manifest, sorted by name."""
    root = loc(run) / "samples"
    out = []
    for name in root.list():
        if (root / name / "manifest.json").is_file():
            out.append((root / name, read_json(root / name / "manifest.json")))
    return out

