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

Every file is written atomically (temporary file in the same directory, then ``os.replace``),
so a part that exists is complete.
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
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
    return replace_atomically(path, w)


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)


def part_path(directory: str | os.PathLike, index: int) -> Path:
    return Path(directory) / PART.format(index)


def finished_parts(directory: str | os.PathLike) -> list[int]:
    """Indices of the complete part files in ``directory`` (sorted)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _PART_RE.match(p.name)))


def read_parts(directory: str | os.PathLike, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Concatenate the part files of ``directory`` (in index order)."""
    paths = [part_path(directory, i) for i in finished_parts(directory)]
    if not paths:
        raise FileNotFoundError(f"no Parquet parts in {directory}")
    return pa.concat_tables([pq.read_table(p, columns=columns, filters=filters) for p in paths])


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


def round_networks(r: int) -> tuple[str, str]:
    """(network fine-tuned from, network made) of fine-tuning round ``r`` (1, 2, ...)."""
    return ("pre" if r == 1 else f"tuned-{r - 1}"), f"tuned-{r}"


def latest_network(run: str | os.PathLike) -> str | None:
    names = networks(run)
    return names[-1] if names else None


def require_dataset(run: str | os.PathLike, data: str | os.PathLike | None = None) -> Path:
    """The training data of ``run`` (``data``: a Parquet file or directory of parts, default the run's
    dataset), checked to exist; ValueError naming the fix if not."""
    path = Path(data) if data else dataset_dir(run)
    if not (path.is_file() or finished_parts(path)):
        raise ValueError(f"no training data at {path}; run `rayflavor diffusion dataset --out {run}` first")
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
