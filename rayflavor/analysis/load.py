"""Finding and lazily scanning the Parquet output of a scan (OUT) or a diffusion run (RUN).

* FN scan: ``OUT/models.parquet`` (deduplicated) if present, otherwise every island part file
  ``OUT/islands/**/*.parquet``.
* Diffusion run: ``RUN/solutions.parquet``.

Only the columns a summary or figure needs are ever collected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl


class AnalysisInputError(ValueError):
    """The directory holds no rayflavor output that can be analysed."""


@dataclass(frozen=True)
class Source:
    kind: str  # "fn" or "seesaw"
    frame: pl.LazyFrame
    description: str
    data_name: str


def open_output(path: str | Path) -> Source:
    """Detect what ``path`` holds and return a lazy frame over it."""
    path = Path(path)
    if not path.exists():
        raise AnalysisInputError(f"{path}: no such file or directory")
    if path.is_file():
        files, where = [path], str(path)
    elif (path / "models.parquet").is_file():
        files, where = [path / "models.parquet"], str(path / "models.parquet")
    elif (path / "solutions.parquet").is_file():
        files, where = [path / "solutions.parquet"], str(path / "solutions.parquet")
    else:
        files = sorted(p for p in (path / "islands").glob("**/*.parquet") if not p.name.startswith("."))
        where = f"{len(files)} island part file(s) under {path / 'islands'}"
    if not files:
        raise AnalysisInputError(f"{path}: no models.parquet, solutions.parquet or island part files to analyse")
    try:
        frame = pl.scan_parquet([str(f) for f in files])
        schema = frame.collect_schema()
    except Exception as exc:  # polars raises several error types for unreadable files
        raise AnalysisInputError(f"{where}: cannot be read as Parquet ({str(exc).splitlines()[0]})") from None
    if "q_Q1" in schema:
        kind = "fn"
    elif "y_re_1e" in schema:
        kind = "seesaw"
    else:
        raise AnalysisInputError(f"{where}: neither FN (q_Q1 ...) nor seesaw (y_re_1e ...) columns")
    data_name = "nufit-6.0+pdg-2024" if kind == "fn" else "nufit-6.0-sk"
    for config in (path / "scan.json", path / "run.json"):
        if path.is_dir() and config.is_file():
            try:
                data_name = json.loads(config.read_text()).get("data", data_name) or data_name
            except (OSError, ValueError):
                pass
    return Source(kind=kind, frame=frame, description=where, data_name=str(data_name))
