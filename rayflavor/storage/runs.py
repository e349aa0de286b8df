"""Run directories of the diffusion pipeline and their Parquet parts.

Layout of a run directory ``RUN``::

    RUN/dataset/part-00000.parquet ...      prior points + labels, column ``split`` (train|val)
    RUN/dataset/manifest.json               n, seed, shards
    RUN/networks/<name>/model.pt            trained networks: "pre", "tuned-1", "tuned-2", ...
    RUN/networks/<name>/metrics.jsonl       training / validation loss log
    RUN/ray/<name>-<attempt>/checkpoint_*   Ray Train checkpoints (resume source)
    RUN/samples/<tag>/part-00000.parquet    generated points + observables + chi2 + solution flag
    RUN/samples/<tag>/manifest.json         the sampling settings of that tag
    RUN/finetune/<name>.parquet             rows selected to fine-tune network <name>
    RUN/solutions.parquet                   every solution found in RUN/samples, deduplicated
    RUN/run.json                            the settings of ``diffusion run``, whole (a valid --config file)
    RUN/LOCK.json                           the lease of the process writing into RUN

Every file is written atomically (temporary file in the same directory, then ``os.replace``),
so a part that exists is complete -- unless the disk damaged it: :func:`part_ok` checks a part's
footer (and row count) before a finished part is trusted, :func:`read_parts` names a bad file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.storage.tables import replace_atomically, to_arrow, write_atomic

PART = "part-{:05d}.parquet"
_PART_RE = re.compile(r"^part-(\d{5})\.parquet$")


def write_table(columns: dict[str, np.ndarray] | pa.Table, path: str | os.PathLike) -> Path:
    """Write a dict of equal-length 1-D arrays (or an Arrow table) as one Parquet file, atomically."""
    return write_atomic(columns if isinstance(columns, pa.Table) else to_arrow(columns), path)


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as standard JSON (NaN and infinity refused: ValueError), atomically."""
    text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False)

    def w(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return replace_atomically(path, w)


def read_json(path: str | os.PathLike):
    """A JSON file's content; ValueError naming the file when it is not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None


#: Schema-metadata key of a sample part: the counts of its shard (n, solutions, ...; JSON).
META_KEY = b"rayflavor"


def write_part(directory: str | os.PathLike, index: int, table: pa.Table, meta: dict | None = None) -> Path:
    """Write part ``index`` of ``directory`` atomically; ``meta`` goes to the schema metadata."""
    if meta is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta, allow_nan=False).encode()})
    return write_table(table, part_path(directory, index))


def part_meta(path: str | os.PathLike) -> dict:
    """The counts stored with a sample part (ValueError naming the file if it is unreadable)."""
    try:
        return json.loads(pq.read_schema(path).metadata[META_KEY])
    except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable sample part ({_first_line(exc)}); delete it and rerun") from None


def part_stats(directory: str | os.PathLike) -> list[dict]:
    """The counts of every finished part of a sample set."""
    return [part_meta(part_path(directory, i)) for i in finished_parts(directory)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def part_ok(path: str | os.PathLike, rows: int | None = None, *, meta_n: int | None = None) -> bool:
    """True when ``path`` is a readable Parquet file (its footer parses) with ``rows`` rows (if given)
    and, for sample parts, counts with ``n == meta_n`` (if given)."""
    try:
        md = pq.read_metadata(path)
        if rows is not None and md.num_rows != rows:
            return False
        if meta_n is not None:
            return part_meta(path).get("n") == meta_n
        return True
    except (OSError, pa.ArrowException, ValueError):
        return False


def part_path(directory: str | os.PathLike, index: int) -> Path:
    return Path(directory) / PART.format(index)


def finished_parts(directory: str | os.PathLike) -> list[int]:
    """Indices of the complete part files in ``directory`` (sorted)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _PART_RE.match(p.name)))


def read_table(path: str | os.PathLike, columns: list[str] | None = None, filters=None) -> pa.Table:
    """One Parquet file; ValueError naming the file when it cannot be read."""
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({_first_line(exc)}); delete it and rerun") from None


def read_parts(directory: str | os.PathLike, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Concatenate the part files of ``directory`` (in index order); ValueError naming a bad part."""
    paths = [part_path(directory, i) for i in finished_parts(directory)]
    if not paths:
        raise FileNotFoundError(f"no Parquet parts in {directory}")
    return pa.concat_tables([read_table(p, columns=columns, filters=filters) for p in paths])


def check_parts(directory: str | os.PathLike, rows: list[int] | None = None) -> None:
    """ValueError naming the first part of ``directory`` that is unreadable or (with ``rows``, the
    expected row count of each part) has another number of rows or is missing."""
    have = finished_parts(directory)
    if rows is not None:
        missing = [i for i in range(len(rows)) if i not in have]
        if missing:
            raise ValueError(f"{part_path(directory, missing[0])}: missing ({len(missing)} of {len(rows)} parts); "
                             "rerun `rayflavor diffusion dataset` with the same settings")
    for i in have:
        p = part_path(directory, i)
        try:
            n = pq.read_metadata(p).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{p}: not a readable Parquet file ({_first_line(exc)}); delete it and rerun "
                             "`rayflavor diffusion dataset` with the same settings") from None
        if rows is not None and i < len(rows) and n != rows[i]:
            raise ValueError(f"{p}: {n} rows, expected {rows[i]}; delete it and rerun `rayflavor diffusion dataset`")


def dataset_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "dataset"


def network_dir(run: str | os.PathLike, name: str) -> Path:
    return Path(run) / "networks" / name


def network_path(run: str | os.PathLike, name: str) -> Path:
    return network_dir(run, name) / "model.pt"


def networks(run: str | os.PathLike) -> list[str]:
    """Names of the finished networks, in training order: pre, tuned-1, tuned-2, ..."""
    root = Path(run) / "networks"
    names = [p.name for p in root.iterdir() if (p / "model.pt").is_file()] if root.is_dir() else []
    def key(n):
        m = re.match(r"tuned-(\d+)$", n)
        return (0, 0) if n == "pre" else (1, int(m.group(1))) if m else (2, n)
    return sorted(names, key=key)


def latest_network(run: str | os.PathLike) -> str | None:
    names = networks(run)
    return names[-1] if names else None


def require_dataset(run: str | os.PathLike, data: str | os.PathLike | None = None) -> Path:
    """The training data of ``run`` (``data``: a Parquet file or directory of parts, default the run's
    dataset), checked to exist and to be readable (every part's footer, and the row counts of its
    manifest); ValueError naming the fix or the bad file if not."""
    path = Path(data) if data else dataset_dir(run)
    if not (path.is_file() or finished_parts(path)):
        raise ValueError(f"no training data at {path}; run `rayflavor diffusion dataset --out {run}` first")
    if path.is_file():
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        return path
    manifest = path / "manifest.json"
    rows = None
    if manifest.is_file():
        m = read_json(manifest)
        rows = [m["n"] // m["shards"] + (1 if i < m["n"] % m["shards"] else 0) for i in range(m["shards"])]
    check_parts(path, rows)
    return path


def require_network(run: str | os.PathLike, name: str | None = None) -> str:
    """``name`` (default: the newest network of ``run``), checked to exist; ValueError naming the fix if not."""
    name = name or latest_network(run)
    if name is None:
        raise ValueError(f"{run} has no trained network; run `rayflavor diffusion train {run}` first")
    if not network_path(run, name).is_file():
        raise ValueError(f"{run} has no network {name!r} (have: {', '.join(networks(run)) or 'none'})")
    return name


def samples_dir(run: str | os.PathLike, tag: str) -> Path:
    return Path(run) / "samples" / tag


def solutions_path(run: str | os.PathLike) -> Path:
    return Path(run) / "solutions.parquet"


def ray_storage(run: str | os.PathLike) -> Path:
    return Path(run).resolve() / "ray"


def run_manifest_path(run: str | os.PathLike) -> Path:
    return Path(run) / "run.json"


def finetune_path(run: str | os.PathLike, name: str) -> Path:
    """The selected rows network ``name`` was fine-tuned on."""
    return Path(run) / "finetune" / f"{name}.parquet"


def finetune_sets(run: str | os.PathLike, before: int | None = None) -> list[pa.Table]:
    """The fine-tuning sets ``RUN/finetune/tuned-<r>.parquet`` of rounds ``r < before`` (all when None)."""
    root = Path(run) / "finetune"
    found = []
    for p in root.glob("tuned-*.parquet") if root.is_dir() else []:
        m = re.fullmatch(r"tuned-(\d+)\.parquet", p.name)
        if m and (before is None or int(m.group(1)) < before):
            found.append((int(m.group(1)), p))
    return [read_table(p) for _, p in sorted(found)]


def sample_sets(run: str | os.PathLike) -> list[tuple[Path, dict]]:
    """(directory, manifest) of every sample set of ``run`` with a manifest, sorted by name."""
    root = Path(run) / "samples"
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if (d / "manifest.json").is_file():
            out.append((d, read_json(d / "manifest.json")))
    return out
