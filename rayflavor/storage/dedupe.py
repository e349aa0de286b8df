"""Global dedupe of a scan's committed parts into ``OUT/models.parquet``, and compaction.

Models are unique on their 18-charge assignment.  Among the rows of one assignment the kept row
is the one **closest to the central values**, with the distance

    D = sum over the 11 window observables (CKM s12 s23 s13 delta, PMNS theta12 theta13
        theta23 delta, dm21, dm3l) of ((O - central) / sigma)^2
      + sum over the 9 charged masses of (ln(m / m_0) / tol_ref)^2,     tol_ref = 0.2

(sigma: the data set's 1 sigma error on the side of the deviation, ``dm3l`` against the value of
the model's ordering; m_0: the central mass, so a mass 20 % off counts like a 1 sigma pull).
Ties break on island, then generation.

What is read: only the parts an island's ``checkpoint.json`` lists
(:mod:`rayflavor.storage.island_store`), so objects of attempts that died before their commit
are never read; islands of scans written before that format (``part-NNNNNN.parquet`` +
``checkpoint.pkl``) count their part files as committed, listed by name (the pickle is never
opened).  OUT may be a local directory or an object-store URI (:mod:`rayflavor.storage.location`);
polars reads the parts lazily from the same place.

Damaged parts (unreadable: truncated, not Parquet, a corrupt page; or another schema: a column
of :func:`rayflavor.storage.parquet.to_table` missing or of another type) are named in a warning,
skipped and counted (:attr:`Counts.damaged`); a dedupe never fails on them.  When the dedupe
compacts, it moves them to the island checkpoint's ``quarantined`` list (the object stays, is
never read again, and is reported by every later dedupe).

Compaction (``compact=True``, under the ``OUT`` lease, :mod:`rayflavor.storage.lease`): each
island's committed parts are rewritten as one part and a checkpoint listing it is committed
(then the replaced parts are deleted), so a scan leaves one part per island after its dedupe.
While another process (a running scan) holds the lease, compaction is skipped and says so.

Memory: the dedupe runs in two passes over the parts with polars' streaming engine -- the winner
of every charge assignment is found on narrow columns (charges as Int16, the distance, island,
generation, a row index), then the full rows of the winners are streamed to the output file in
island and commit order -- so the 165-column rows are never all in memory at once.

Counts reported (:class:`Counts`):

* ``found``: rows in all committed, undamaged parts;  ``unique``: distinct charge assignments;
  ``duplicates = found - unique``;  ``damaged``: parts skipped as damaged;
* ``textures``: distinct 45-exponent textures (``n_u n_d n_nu n_e n_N``).  A common shift of the
  ``Q``, ``u``, ``d`` charges (and likewise ``L``, ``e``, ``N`` with ``Q(H)`` fixed by the top)
  leaves every exponent unchanged, hence identical physics;
* ``light_textures``: distinct textures of what the light spectrum depends on -- ``n_u n_d n_e``
  and the Weinberg exponents ``n^W_ij = n^nu_i1 + n^nu_j1 - n^N_11`` (the ``N`` charges cancel from
  ``M_nu = -m_D M_N^-1 m_D^T``).  This is the number of physically distinct models.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from rayflavor.analysis.richness import Richness, chao2_from_counts
from rayflavor.physics import data as fndata
from rayflavor.physics import fn
from rayflavor.storage import lease as lease_mod
from rayflavor.storage.island_store import IslandStore, list_islands
from rayflavor.storage.location import Location, StorageError, resolve, temporary_beside
from rayflavor.storage.parquet import SCHEMA_VERSION, empty_table, to_table

WINDOW = ("ckm_s12", "ckm_s23", "ckm_s13", "ckm_delta", "pmns_theta12", "pmns_theta13", "pmns_theta23", "pmns_delta", "dm21")
TOL_REF = 0.2
MODELS = "models.parquet"
_IO_THREADS = 8  # concurrent footer reads (object stores: latency-bound)


class DamagedPartWarning(UserWarning):
    """A part file that cannot be read or has another schema (skipped and counted)."""


class DedupeError(ValueError):
    """A dedupe that cannot run at all (one line)."""


@dataclass(frozen=True)
class Counts:
    found: int
    unique: int
    duplicates: int
    textures: int
    light_textures: int
    damaged: int = 0
    parts: int = 0  # committed, undamaged parts read
    compaction: str = ""  # what compaction did ("" when not asked)
    damaged_parts: tuple[str, ...] = field(default=())  # "uri: reason" each
    richness_light: Richness | None = None  # Chao2 over islands: light textures the settings can reach
    richness_unique: Richness | None = None  # the same for charge assignments

    def line(self) -> str:
        s = (
            f"found {self.found}  unique {self.unique}  duplicates {self.duplicates}  "
            f"textures {self.textures}  physically distinct (light textures) {self.light_textures}"
        )
        if self.damaged:
            s += f"  damaged parts skipped {self.damaged} (named in the warnings)"
        return s

    def richness_lines(self) -> list[str]:
        """How much of the reachable model space the scan has seen (:mod:`rayflavor.analysis.richness`)."""
        out = []
        for r, what in ((self.richness_light, "light textures"), (self.richness_unique, "charge assignments")):
            if r is not None:
                out.append(r.line(what))
        return out


def _pull(col: str, central: float, minus: float, plus: float) -> pl.Expr:
    d = pl.col(col) - central
    return pl.when(d >= 0).then(d / plus).otherwise(d / minus) ** 2


def distance_expr(ds) -> pl.Expr:
    """Polars expression of the distance ``D`` to the central values (module docstring)."""
    terms = []
    for name in WINDOW:
        o = ds.get(name, "NO")
        mi, pl_ = o.sigmas()
        terms.append(_pull(name, o.central, mi, pl_))
    no, io = ds.get("dm3l", "NO"), ds.get("dm3l", "IO")
    t_no = _pull("dm3l", no.central, *no.sigmas())
    t_io = _pull("dm3l", io.central, *io.sigmas())
    terms.append(pl.when(pl.col("ordering") == "IO").then(t_io).otherwise(t_no))
    for m in fn.MASSES:
        terms.append(((pl.col(m) / ds.get(m).central).log() / TOL_REF) ** 2)
    return pl.sum_horizontal(terms).alias("distance")


def _texture_exprs() -> tuple[list[pl.Expr], list[pl.Expr]]:
    """(the 45 exponents, the 36 light-texture keys) as small-integer polars expressions."""
    e = [pl.col(c).cast(pl.Int16) for c in fn.EXPONENTS]
    nu = lambda i, j: pl.col(f"n_nu_{i}{j}").cast(pl.Int16)  # noqa: E731
    w = [(nu(i, 1) + nu(j, 1) - pl.col("n_N_11").cast(pl.Int16)).alias(f"w_{i}{j}") for i in (1, 2, 3) for j in (1, 2, 3)]
    light = [*e[0:18], *e[27:36], *w]
    return e, light


@lru_cache(maxsize=1)
def reference_schema() -> pa.Schema:
    """The schema of a model row (:func:`rayflavor.storage.parquet.to_table`), without metadata."""
    return empty_table().schema.remove_metadata()


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a part with ``schema`` cannot be read with the others (``None``: it can)."""
    for f in reference_schema():
        i = schema.get_field_index(f.name)
        if i < 0:
            return f"another schema (no column {f.name!r})"
        if not schema.field(i).type.equals(f.type):
            return f"another schema (column {f.name!r} is {schema.field(i).type}, expected {f.type})"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@dataclass
class _Island:
    store: IslandStore
    good: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # name -> reason (found now)
    quarantined: list[dict] = field(default_factory=list)  # found earlier
    schemas: dict[str, pa.Schema] = field(default_factory=dict)


def _survey(out: Location, warn: Callable[[str], None]) -> tuple[list[_Island], list[str]]:
    """Every island's committed parts, checked (footer and schema); damaged ones named."""
    islands: list[_Island] = []
    broken: list[str] = []
    for i in list_islands(out):
        store = IslandStore(out, i)
        try:
            names = store.committed_part_names()
        except StorageError as exc:  # a corrupt checkpoint.json: the island cannot be read
            broken.append(f"{store.dir.uri}: {exc}")
            warn(f"{exc}; island {i} skipped")
            continue
        isl = _Island(store, quarantined=store.quarantined())
        for q in isl.quarantined:
            warn(f"{(store.dir / q['name']).uri}: damaged ({q.get('reason', '?')}), quarantined by an earlier dedupe; skipped")
        islands.append(isl)

        def check(name: str, store=store):
            try:
                return name, (store.dir / name).parquet_schema(), None
            except FileNotFoundError:
                return name, None, "missing (listed in the checkpoint, but not found)"
            except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
                return name, None, f"unreadable ({_one_line(exc)})"

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for name, schema, problem in pool.map(check, names):
                problem = problem or schema_problem(schema)
                if problem:
                    isl.damaged[name] = problem
                    warn(f"{(store.dir / name).uri}: damaged part, {problem}; skipped")
                else:
                    isl.good.append(name)
                    isl.schemas[name] = schema
    return islands, broken


def _columns(islands: list[_Island]) -> list[str]:
    """The reference columns, plus extra columns every good part has with one type."""
    ref = reference_schema()
    schemas = [s for isl in islands for s in isl.schemas.values()]
    if not schemas:
        return list(ref.names)
    first = schemas[0]
    extra = [f.name for f in first if ref.get_field_index(f.name) < 0
             and all(s.get_field_index(f.name) >= 0 and s.field(f.name).type.equals(f.type) for s in schemas)]
    return [*ref.names, *extra]


def _compact(islands: list[_Island], columns: list[str], renew: Callable[[], None], warn) -> str:
    """Rewrite each island's good parts as one part; quarantine its damaged parts."""
    n_islands = n_before = 0
    for isl in islands:
        if len(isl.good) <= 1 and not isl.damaged:
            continue
        tables = []
        read_ok = []
        for name in isl.good:  # a full read: finds corrupt pages behind a good footer
            loc = isl.store.dir / name
            try:
                t = loc.read_parquet(columns=columns)
            except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
                isl.damaged[name] = f"unreadable ({_one_line(exc)})"
                warn(f"{loc.uri}: damaged part, {isl.damaged[name]}; skipped")
                continue
            tables.append(t.replace_schema_metadata({"schema": SCHEMA_VERSION}))
            read_ok.append(name)
        isl.good = read_ok
        if len(read_ok) <= 1 and not isl.damaged:
            continue
        if len(read_ok) <= 1:  # nothing to merge: only move the damaged parts to the quarantine list
            isl.store.replace_parts(None, replaced=[], quarantine=dict(isl.damaged))
        else:
            new = isl.store.replace_parts(pa.concat_tables(tables), replaced=read_ok, quarantine=dict(isl.damaged))
            isl.good = [new]
            n_islands += 1
            n_before += len(read_ok)
        isl.quarantined += [{"name": n, "reason": r} for n, r in isl.damaged.items()]
        isl.damaged = {}
        renew()
    return f"compacted {n_before} parts of {n_islands} islands" if n_islands else "already compact"


def _source_frame(sources: list[str], columns: list[str]) -> pl.LazyFrame:
    """The parts as one lazy frame of ``columns`` and a global row index ``__row``."""
    lf = pl.scan_parquet(sources, row_index_name="__row", extra_columns="ignore")
    return lf.select("__row", *columns)


def _find_unreadable(parts: list[Location]) -> dict[str, str]:
    """uri -> reason for the parts a full read fails on (after a failed streaming pass)."""
    def full(loc: Location):
        try:
            loc.read_parquet()
            return loc.uri, None
        except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
            return loc.uri, f"unreadable ({_one_line(exc)})"

    with ThreadPoolExecutor(_IO_THREADS) as pool:
        return {u: r for u, r in pool.map(full, parts) if r}


def _incidence(lf: pl.LazyFrame, keys: list[pl.Expr]) -> np.ndarray:
    """For each distinct key, the number of islands whose rows hold it (streamed)."""
    names = [f"k{j}" for j in range(len(keys))]
    return (lf.select(pl.col("island"), *[k.alias(n) for k, n in zip(keys, names)]).unique()
            .group_by(names).agg(pl.len().alias("islands")).select("islands")
            .collect(engine="streaming")["islands"].to_numpy())


def _dedupe_to_file(parts: list[Location], columns: list[str], ds, target: Path) -> tuple:
    """Write the winners of ``parts`` to the local file ``target``; (found, unique, textures, light,
    island incidence of the light textures, island incidence of the charge assignments) -- the
    incidences for :func:`rayflavor.analysis.richness.chao2_from_counts`."""
    if parts:
        lf = _source_frame([p.polars_source() for p in parts], columns)
    else:  # nothing found: an empty models.parquet, so readers see "0 models", not a missing file
        lf = pl.from_arrow(empty_table()).lazy().with_row_index("__row")
    lf = lf.with_columns(distance_expr(ds))
    charges = list(fn.CHARGES)
    narrow = lf.select("__row", *[pl.col(c).cast(pl.Int16) for c in charges], "distance",
                       pl.col("island").cast(pl.Int32), "generation")
    found = narrow.select(pl.len()).collect(engine="streaming").item()
    winners = (
        narrow.group_by(charges)
        .agg(pl.col("__row").sort_by(["distance", "island", "generation", "__row"]).first())
        .select("__row")
        .collect(engine="streaming")
    )
    # rows stay in island / commit order (deterministic; a sort of the full rows would hold them all in memory)
    # a filter on the row index streams (a semi-join held the whole left side: 1.8 GB for 1e6 rows)
    kept = lf.filter(pl.col("__row").is_in(winners["__row"].implode())).drop("__row")
    kept.sink_parquet(target, compression="zstd", engine="streaming")
    e, light = _texture_exprs()
    written = pl.scan_parquet(target)
    textures = written.select(e).unique().select(pl.len()).collect(engine="streaming").item()
    light_n = written.select(light).unique().select(pl.len()).collect(engine="streaming").item()
    inc_light = _incidence(lf, light)
    inc_unique = _incidence(lf, [pl.col(c).cast(pl.Int16) for c in charges])
    return found, winners.height, textures, light_n, inc_light, inc_unique


def _publish(target: Path, dest: Location) -> None:
    """Move the finished local file ``target`` to ``dest`` (whole or not at all)."""
    if dest.is_local:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(target, 0o666 & ~mask)
        with open(target, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(target, dest.local_path())
        return
    # an object store: one multipart upload, streamed (models.parquet may be GBs); the object
    # appears when the stream closes, a killed process leaves no object (an unfinished upload)
    try:
        stream = dest.fs.open_output_stream(dest.path)
        with open(target, "rb") as src:
            while chunk := src.read(64 << 20):
                stream.write(chunk)
        stream.close()
    except OSError as exc:
        raise StorageError(f"{dest.uri}: {_one_line(exc)}") from None


def _scratch(dest: Location) -> Path:
    """A new temporary file for ``dest``: beside it when local (named like Location's temporary
    files, so a killed dedupe's leftover is recognised and removed), else in the temp dir."""
    if not dest.is_local:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        return Path(name)
    folder = dest.local_path().parent
    folder.mkdir(parents=True, exist_ok=True)
    return temporary_beside(dest.local_path())


def _default_warn(message: str) -> None:
    warnings.warn(message, DamagedPartWarning, stacklevel=3)


def dedupe(out: Location | str, data_name: str | fndata.DataSet = fn.DEFAULT_DATA, *, compact: bool = True, lease=None,
           warn: Callable[[str], None] | None = None) -> Counts:
    """Dedupe the committed parts of the scan at ``out`` into ``OUT/models.parquet`` (written
    whole or not at all) and return the counts; compact first when ``compact`` (module docstring).

    ``data_name``: a data set name or path, or a loaded data set (a scan's own copy,
    :func:`rayflavor.storage.scan_data.stored`).
    ``lease``: a lease on ``out`` the caller holds (the scan driver); otherwise the dedupe takes
    the lease itself for the compaction, and skips compaction while another process holds it.
    ``warn``: called with one line per damaged part (default: :class:`DamagedPartWarning`).
    Raises :class:`DedupeError` / :class:`~rayflavor.storage.location.StorageError` /
    :class:`~rayflavor.physics.data.DataError` (one line) when it cannot run at all.
    """
    out = resolve(out) if not isinstance(out, Location) else out
    warn = warn or _default_warn
    ds = data_name if isinstance(data_name, fndata.DataSet) else fndata.load(data_name)
    islands, broken = _survey(out, warn)
    columns = _columns(islands)
    note = ""
    if compact:
        own = None
        if lease is None:
            try:
                own = lease = lease_mod.acquire(out, owner="rayflavor dedupe")
            except lease_mod.LeaseHeld as exc:
                note = f"not compacted: {exc}"
        if not note:
            try:
                note = _compact(islands, columns, getattr(lease, "renew", lambda: None), warn)
            finally:
                if own is not None:
                    own.release()
    damaged_now = [f"{(i.store.dir / n).uri}: {r}" for i in islands for n, r in i.damaged.items()]
    damaged_before = [f"{(i.store.dir / q['name']).uri}: {q.get('reason', '?')}" for i in islands for q in i.quarantined]
    parts = [i.store.dir / n for i in islands for n in i.good]
    dest = out / MODELS
    tmp = _scratch(dest)
    try:
        try:
            found, unique, tex, light, inc_light, inc_unique = _dedupe_to_file(parts, columns, ds, tmp)
        except (pl.exceptions.PolarsError, OSError, pa.ArrowException) as exc:
            bad = _find_unreadable(parts)  # a corrupt page behind a readable footer
            if not bad:
                raise DedupeError(f"{out.uri}: dedupe failed ({_one_line(exc)})") from None
            for uri, reason in bad.items():
                warn(f"{uri}: damaged part, {reason}; skipped")
                damaged_now.append(f"{uri}: {reason}")
            parts = [p for p in parts if p.uri not in bad]
            found, unique, tex, light, inc_light, inc_unique = _dedupe_to_file(parts, columns, ds, tmp)
        _publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    damaged = tuple(damaged_now + damaged_before + broken)
    m = len(islands)  # every island that ran is a sampling unit, also one that found nothing
    return Counts(found, unique, found - unique, tex, light, damaged=len(damaged), parts=len(parts),
                  compaction=note, damaged_parts=damaged, richness_light=chao2_from_counts(inc_light, m),
                  richness_unique=chao2_from_counts(inc_unique, m))


# ----------------------------------------------------------------------------- synthetic scans
def synthetic_models(n: int, rng: np.random.Generator, charges: np.ndarray, generation0: int = 0) -> dict[str, np.ndarray]:
    """``n`` model rows in the columns :meth:`Island.drain` gives (the input of
    :func:`~rayflavor.storage.parquet.to_table`) for the charge rows ``charges`` (n, 18):
    random continuous parameters, observables near their central values, exponents computed
    from the charges. Not physics -- a load of the right shape and types for benchmarks."""
    cols: dict[str, np.ndarray] = {}
    for k, name in enumerate(fn.CHARGES):
        cols[name] = charges[:, k].astype(np.int64)
    for name in fn.PARAMETERS[18:]:
        cols[name] = rng.uniform(0.5, 2.0, n)
    ref = empty_table()
    skip = set(fn.PARAMETERS) | {"island", "seed", "generation", "found_at"}
    exps = fn.exponents(charges)
    for k, name in enumerate(fn.EXPONENTS):
        cols[name] = exps[:, k]
    for f in ref.schema:
        if f.name in skip or f.name in cols:
            continue
        if f.name == "ordering":
            cols[f.name] = np.where(rng.random(n) < 0.8, "NO", "IO")
        elif pa.types.is_boolean(f.type):
            cols[f.name] = np.ones(n, dtype=bool)
        elif pa.types.is_integer(f.type):
            cols[f.name] = rng.integers(0, 20, n)
        else:
            cols[f.name] = rng.lognormal(0.0, 0.3, n)  # positive: masses, angles, dm2, losses
    cols["generation"] = generation0 + np.arange(n)
    cols["found_at"] = np.full(n, 1.7e9) + np.arange(n) * 1e-3
    return cols


def synthetic_parts(out: Location | str, n_rows: int, n_islands: int = 64, *, rows_per_part: int = 2_900,
                    duplicate_fraction: float = 0.2, seed: int = 0, only: range | None = None) -> dict:
    """Write ``n_rows`` synthetic, schema-correct model rows as a committed scan at ``out``:
    ``n_islands`` islands, parts of ``rows_per_part`` rows each (default: the average part of a
    6-hour 64-island scan, :data:`~rayflavor.storage.island_store.FLUSH_SECONDS`), committed
    through :class:`IslandStore` like a scan's.  Exactly ``round(n_rows * duplicate_fraction)``
    rows repeat the charge assignment of an earlier row (in any island), so a dedupe must find
    ``unique = n_rows - that``.  ``only``: write just these islands (the rows of each island do
    not depend on which others are written, so processes may split the work).
    Returns {"rows", "unique", "parts", "seconds"} (``parts``: written by this call)."""
    if not 0.0 <= duplicate_fraction < 1.0 or n_rows < 0 or n_islands < 1 or rows_per_part < 1:
        raise ValueError("synthetic_parts: need n_rows >= 0, n_islands >= 1, rows_per_part >= 1, 0 <= duplicate_fraction < 1")
    if n_rows >= 19**7:
        raise ValueError(f"synthetic_parts: at most {19**7 - 1} rows")
    out = resolve(out) if not isinstance(out, Location) else out
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(np.arange(-fn.MAX_CHARGE, fn.MAX_CHARGE + 1)) for _ in range(7)])
    n_dup = int(round(n_rows * duplicate_fraction))
    n_unique = n_rows - n_dup
    # row r carries assignment ids[r]: ids 0..n_unique-1 each once, then n_dup repeats of earlier ids
    ids = np.concatenate([np.arange(n_unique), rng.integers(0, max(n_unique, 1), n_dup)]) if n_rows else np.empty(0, np.int64)
    rng.shuffle(ids)
    per_island = np.array_split(ids, n_islands)
    n_parts = 0
    for i, island_ids in enumerate(per_island):
        if only is not None and i not in only:
            continue
        irng = np.random.default_rng([seed, i])
        store = IslandStore(out, i)
        gen = 0
        for start in range(0, len(island_ids), rows_per_part):
            chunk = island_ids[start:start + rows_per_part]
            q = _charges_for(chunk, perms, seed)
            table = to_table(synthetic_models(len(chunk), irng, q, gen), island=i, seed=seed + i)
            store.commit(table, {"generation": gen}, {"x": np.zeros(4)}, {"synthetic": True})
            gen += len(chunk)
            n_parts += 1
    return {"rows": n_rows, "unique": n_unique, "parts": n_parts, "seconds": time.perf_counter() - t0}


def _charges_for(ids: np.ndarray, perms: np.ndarray, seed: int) -> np.ndarray:
    """The charge row of each assignment id (a pure function of the id: duplicates repeat it)."""
    q = np.empty((len(ids), 18), dtype=np.int64)
    v = ids.astype(np.int64)
    # digits 0-6: the id itself (distinct ids -> distinct rows); 7-17: a hash of the id
    for k in range(7):
        q[:, k] = perms[k][v % 19]
        v = v // 19
    h = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    for k in range(7, 18):
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        q[:, k] = (h % np.uint64(19)).astype(np.int64) - fn.MAX_CHARGE
    return q


_CHILD = """
import json, resource, sys, time
from rayflavor.storage.dedupe import dedupe
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
c = dedupe(sys.argv[1], sys.argv[2], compact=sys.argv[3] == "1")
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_mb": peak / 1024, "baseline_mb": base / 1024, "found": c.found,
                  "unique": c.unique, "damaged": c.damaged, "parts": c.parts, "compaction": c.compaction}))
"""


def time_dedupe(out: Location | str, data_name: str = fn.DEFAULT_DATA, *, compact: bool = True) -> dict:
    """Run :func:`dedupe` on ``out`` in a child process; its wall time [s] and peak resident
    memory [MB] (``ru_maxrss`` of the child: polars allocates outside Python, so tracemalloc
    would miss it), ``baseline_mb`` (after imports), and the counts."""
    import json
    import subprocess
    import sys

    out = resolve(out) if not isinstance(out, Location) else out
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    res = subprocess.run([sys.executable, "-c", _CHILD, out.uri, data_name, "1" if compact else "0"],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise DedupeError(f"timed dedupe of {out.uri} failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_dedupe(n_rows: int, *, out: Location | str | None = None, n_islands: int = 64, rows_per_part: int = 2_900,
                 duplicate_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write ``n_rows`` synthetic rows (:func:`synthetic_parts`) to ``out`` (default: a new
    temporary directory, removed afterwards), then time two dedupes in child processes: the
    first compacts the parts (one per island) and dedupes, the second dedupes the compacted
    scan.  Returns {"rows", "parts", "write_seconds", "first": {...}, "second": {...}} with each
    dedupe's ``seconds``, ``peak_mb``, counts (:func:`time_dedupe`)."""
    import shutil

    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="rayflavor-bench-dedupe-")
        out = tmp
    try:
        w = synthetic_parts(out, n_rows, n_islands, rows_per_part=rows_per_part,
                            duplicate_fraction=duplicate_fraction, seed=seed)
        first = time_dedupe(out, compact=True)
        second = time_dedupe(out, compact=True)
        for r in (first, second):
            if r["found"] != n_rows or r["unique"] != w["unique"]:
                raise DedupeError(f"bench dedupe: found {r['found']} unique {r['unique']}, expected {n_rows} and {w['unique']}")
        return {"rows": n_rows, "unique": w["unique"], "parts": w["parts"], "islands": n_islands,
                "write_seconds": w["seconds"], "first": first, "second": second}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
