"""Finding and lazily scanning the Parquet output of a scan (OUT) or a diffusion run (RUN).

``OUT_OR_RUN`` is a local path or a storage URI (``s3://bucket/prefix``, ``gs://…``,
``file://…``), resolved by :func:`rayflavor.storage.location.resolve` (endpoint and credentials
from the standard environment, e.g. ``AWS_ENDPOINT_URL``).  What it may hold:

* FN scan: ``OUT/models.parquet`` (deduplicated) if present, otherwise every island part file
  ``OUT/islands/**/*.parquet`` (not deduplicated).  A ``models.parquet`` older than a part file
  is reported as stale (:attr:`Source.warnings`): ``rayflavor dedupe OUT`` refreshes it.
* Diffusion run: ``RUN/solutions.parquet``.

Column types and row values are checked before anything is drawn (:mod:`rayflavor.analysis.rows`).
* One Parquet file, e.g. the output of ``rayflavor evaluate``.

The rows analysed are the valid models (FN, flag ``valid``) or the solutions (seesaw, flag
``solution``); a file without the flag (a scan's ``models.parquet``, whose rows are all valid
models) counts every row.  The data set is the one the run used, read from ``scan.json``
(``settings.data``, or ``config.data`` / top-level ``data`` of older scans), ``run.json``,
``manifest.json`` or ``dataset/manifest.json`` beside the output; the model's default otherwise.
Files are scanned through pyarrow datasets on the location's file system, so only the columns
a summary or figure needs are ever read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from rayflavor.analysis.rows import check_rows, type_problem
from rayflavor.messages import one_line
from rayflavor.storage.location import Location, StorageError, resolve


class AnalysisInputError(ValueError):
    """The location holds no rayflavor output that can be analysed."""


#: Observable columns that must be present for a summary (a parameter-only file has none).
FN_NEEDS = ("m_lightest", "m_ee", "m_sum", "ordering", "max_exponent", "pmns_delta")
SEESAW_NEEDS = ("m_sum", "m_bb", "m_beta", "delta_cp", "chi2")
#: Predictions whose non-finite values are left out of quartiles and figures (named in a warning).
FN_PREDICTIONS = ("m_lightest", "m_ee", "m_sum", "pmns_delta", "pmns_alpha1", "pmns_alpha2", "j_ckm")
SEESAW_PREDICTIONS = ("m_sum", "m_bb", "m_beta", "delta_cp", "alpha21", "alpha31", "j_cp", "chi2", "sin2_theta23")
DEFAULT_DATA = {"fn": "nufit-6.0+pdg-2024", "seesaw": "nufit-6.0-sk"}
_SETTINGS_FILES = ("scan.json", "run.json", "manifest.json", "dataset/manifest.json")


@dataclass(frozen=True)
class Source:
    kind: str  # "fn" or "seesaw"
    frame: pl.LazyFrame  # the rows analysed: valid models / solutions
    description: str
    data_name: str
    root: Location  # the directory analysis/ goes under
    rows_total: int = 0  # rows in the files, before the valid/solution filter
    flag: str | None = None  # the column that selected the rows (None: every row counts)
    warnings: tuple[str, ...] = field(default=())


def _parquet_files(loc: Location) -> list[pafs.FileInfo]:
    """Part files under ``loc`` (recursive), hidden/temporary names skipped."""
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise AnalysisInputError(f"{loc.uri}: cannot be listed ({one_line(exc)})") from None
    return sorted((i for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
                   and not i.base_name.startswith(".")), key=lambda i: i.path)


def _data_name(root: Location, kind: str, warnings: list[str]) -> str:
    """The data set the run used (see the module docstring), or the model's default; a settings
    file that cannot be read is named in ``warnings`` (the default is used then)."""
    n_before = len(warnings)
    for name in _SETTINGS_FILES:
        loc = root / name
        try:
            if not loc.is_file():
                continue
            doc = json.loads(loc.read_bytes())
        except (OSError, ValueError, StorageError) as exc:
            warnings.append(f"{loc.uri}: cannot be read ({one_line(exc)}); "
                            f"looking further for the data set")
            continue
        if not isinstance(doc, dict):
            warnings.append(f"{loc.uri}: not a JSON object; looking further for the data set")
            continue
        for section in (doc.get("settings"), doc.get("config"), doc):
            if isinstance(section, dict) and isinstance(section.get("data"), str) and section["data"]:
                value = section["data"]
                if root.is_local and not Path(value).is_absolute() and not Path(value).exists() \
                        and (Path(root.path) / value).is_file():
                    value = str(Path(root.path) / value)  # a relative path stored by a scan run elsewhere
                return value
    if len(warnings) > n_before:
        warnings.append(f"using the default data set of the {kind} model, {DEFAULT_DATA[kind]}")
    return DEFAULT_DATA[kind]


def open_output(target: str | Path) -> Source:
    """Detect what ``target`` holds and return a lazy frame over the rows to analyse."""
    try:
        loc = resolve(str(target))
        is_file, is_dir = loc.is_file(), loc.is_dir()
    except StorageError as exc:
        raise AnalysisInputError(str(exc)) from None
    if not (is_file or is_dir):
        if not loc.is_local:
            bucket = loc.path.split("/", 1)[0]
            try:
                missing_bucket = loc.fs.get_file_info(bucket).type == pafs.FileType.NotFound
            except OSError:
                missing_bucket = False
            if missing_bucket:
                raise AnalysisInputError(f"{loc.uri}: the bucket {bucket!r} does not exist")
        elif Path(loc.path).exists():
            raise AnalysisInputError(f"{loc.uri}: neither a regular file nor a directory")
        raise AnalysisInputError(f"{loc.uri}: no such file or directory")
    warnings: list[str] = []
    if is_file:
        files, where, root = [loc], loc.uri, loc.parent
    else:
        root = loc
        models, solutions = loc / "models.parquet", loc / "solutions.parquet"
        if models.is_file():
            files, where = [models], models.uri
            parts = _parquet_files(loc / "islands")
            t = models.mtime()
            newer = [p for p in parts if t is not None and p.mtime is not None and p.mtime.timestamp() > t]
            if newer:
                warnings.append(f"{models.uri} is older than {len(newer)} island part file(s) and may be stale; "
                                f"refresh it with `rayflavor dedupe {loc.uri}`")
        elif solutions.is_file():
            files, where = [solutions], solutions.uri
        else:
            parts = _parquet_files(loc / "islands")
            files = [Location(loc.fs, p.path, loc.scheme) for p in parts]
            where = f"{len(files)} island part file(s) under {(loc / 'islands').uri}"
            if files:
                warnings.append(f"no models.parquet: reading the island parts as they are (not deduplicated); "
                                f"`rayflavor dedupe {loc.uri}` writes it")
    if not files:
        raise AnalysisInputError(f"{loc.uri}: no models.parquet, solutions.parquet or island part files to analyse")
    try:
        dataset = pads.dataset([f.path for f in files], filesystem=loc.fs, format="parquet")
        schema = dataset.schema
        rows_total = dataset.count_rows()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several error types for unreadable files
        raise AnalysisInputError(f"{where}: cannot be read as Parquet ({one_line(exc)})") from None
    names = set(schema.names)
    if "q_Q1" in names:
        kind, needs, flag = "fn", FN_NEEDS, "valid"
    elif "y_re_1e" in names:
        kind, needs, flag = "seesaw", SEESAW_NEEDS, "solution"
    else:
        raise AnalysisInputError(f"{where}: neither FN (q_Q1 ...) nor seesaw (y_re_1e ...) columns")
    missing = [c for c in needs if c not in names]
    if missing:
        raise AnalysisInputError(f"{where}: holds {kind} parameters but no observables (no {', '.join(missing)}); "
                                 f"run `rayflavor evaluate --model {kind}` on it first")
    problem = type_problem(kind, schema, flag)
    if problem:
        raise AnalysisInputError(f"{where}: {problem}")
    frame = pl.scan_pyarrow_dataset(dataset)
    if flag in names:
        # true or 1 marks a row, nothing else: a cast to boolean would count 0.5 or -1 as well
        frame = frame.filter((pl.col(flag).cast(pl.Float64, strict=False) == 1.0).fill_null(False))
    else:
        flag = None
    try:
        frame, row_warnings = check_rows(kind, frame, FN_PREDICTIONS if kind == "fn" else SEESAW_PREDICTIONS)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise AnalysisInputError(f"{where}: cannot be read ({one_line(exc)})") from None
    warnings += row_warnings
    data_name = _data_name(root, kind, warnings)
    return Source(kind=kind, frame=frame, description=where, data_name=data_name, root=root,
                  rows_total=rows_total, flag=flag, warnings=tuple(warnings))
