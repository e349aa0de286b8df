"""Global dedupe of a scan's committed parts into ``OUT/models.parquet``, and compaction.

Models are unique on their 18-charge assignment.  Among the rows of one assignment the kept row
is the one **closest to the central values**, with the distance

    D = sum over the 11 window observables (CKM s12 s23 s13 delta, PMNS theta12 theta13
        theta23 delta, dm21, dm3l) of ((O - central) / sigma)^2
      + sum over the 9 charged masses of (ln(m / m_0) / tol_ref)^2,     tol_ref = 0.2

(sigma: the data set's 1 sigma error on the side of the deviation, ``dm3l`` against the value of
the model's ordering; m_0: the central mass, so a mass 20 % off counts like a 1 sigma pull).
Ties break on island, then generation.  In a scan with targets (``[island] targets``) a row
meeting every target (``targets_met``) wins over one that does not, whatever their distances.

What is read: only the parts an island's ``checkpoint.json`` lists
(:mod:`rayflavor.storage.island_store`), so objects of attempts that died before their commit
are never read.  OUT may be a local directory or an object-store URI (:mod:`rayflavor.storage.location`);
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
* ``targets``: for each target (:mod:`rayflavor.physics.targets`) asked for, the number of
  distinct models (rows of ``models.parquet``) that meet it; 0 is reported as "no model meets".
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from rayflavor.messages import typed_line
from rayflavor.physics import data as fndata
from rayflavor.physics import fn
from rayflavor.physics import targets as fn_targets
from rayflavor.richness import Richness, chao2_from_counts
from rayflavor.storage import lease as lease_mod
from rayflavor.storage.island_store import IslandStore, list_islands
from rayflavor.storage.location import Location, StorageError, resolve, temporary_beside
from rayflavor.storage.parquet import SCHEMA_VERSION, empty_table
from rayflavor.storage.scan_data import islands_exchanged

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
    targets: tuple[tuple[str, int], ...] = field(default=())  # (target text, distinct models meeting it)

    def line(self) -> str:
        s = (
            f"found {self.found}  unique {self.unique}  duplicates {self.duplicates}  "
            f"textures {self.textures}  physically distinct (light textures) {self.light_textures}"
        )
        if self.damaged:
            s += f"  damaged parts skipped {self.damaged} (named in the warnings)"
        return s

    def target_lines(self) -> list[str]:
        """One line per target: how many distinct models meet it, or that none does."""
        return [fn_targets.met_line(text, n) for text, n in self.targets]

    def richness_lines(self) -> list[str]:
        """How much of the reachable model space the scan has seen (:mod:`rayflavor.richness`)."""
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


@dataclass
class _Island:
    store: IslandStore
    good: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # name -> reason (found now)
    quarantined: list[dict] = field(default_factory=list)  # found earlier
    schemas: dict[str, pa.Schema] = field(default_factory=dict)


def _survey(out: Location, warn: Callable[[str], None]) -> tuple[list[_Island], dict[int, str]]:
    """Every island's committed parts, checked (footer, schema, the row count the checkpoint
    lists); damaged ones named.  Returns the islands and ``{island: why}`` of those whose
    checkpoint cannot be read (their parts are unknown)."""
    islands: list[_Island] = []
    broken: dict[int, str] = {}
    for i in list_islands(out):
        store = IslandStore(out, i)
        try:
            listed = store.listed_parts()
        except StorageError as exc:  # a corrupt checkpoint.json: the island cannot be read
            broken[i] = str(exc)
            warn(f"{exc}; island {i} skipped")
            continue
        for name in store.repeated_parts():
            warn(f"{(store.dir / name).uri}: listed twice in its island's checkpoint; read once")
        isl = _Island(store, quarantined=store.quarantined())
        for q in isl.quarantined:
            warn(f"{(store.dir / q['name']).uri}: damaged ({q.get('reason', '?')}), quarantined by an earlier dedupe; skipped")
        islands.append(isl)

        def check(name: str, store=store):
            try:
                md = (store.dir / name).parquet_metadata()
                schema = md.schema.to_arrow_schema()
            except FileNotFoundError:
                return name, None, "missing (listed in the checkpoint, but not found)"
            except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
                return name, None, f"unreadable ({typed_line(exc)})"
            rows = listed[name]
            if schema_problem(schema):
                return name, schema, None  # named below
            if rows is not None and md.num_rows != rows:
                return name, None, f"holds {md.num_rows} rows, its checkpoint lists {rows} (not the committed object)"
            return name, schema, None

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for name, schema, problem in pool.map(check, list(listed)):
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


def _value_problem(lf: pl.LazyFrame, ds) -> str | None:
    """Why the rows of ``lf`` (one part) break the dedupe's own arithmetic -- a charge or an
    exponent beyond int16, an island number beyond int32, a distance that cannot be computed --
    or ``None``.  Runs the same expressions as :func:`_dedupe_to_file`."""
    e, light = _texture_exprs()
    try:
        pl.collect_all([lf.select(*[pl.col(c).cast(pl.Int16) for c in fn.CHARGES], pl.col("island").cast(pl.Int32),
                                  distance_expr(ds)), lf.select(e), lf.select(light)])
    except (pl.exceptions.PolarsError, OSError, pa.ArrowException, ValueError) as exc:
        return f"values the dedupe cannot use ({typed_line(exc)})"
    return None


def _compact(islands: list[_Island], columns: list[str], renew: Callable[[], None], warn, ds) -> str:
    """Rewrite each island's good parts as one part; quarantine its damaged parts (unreadable,
    or holding values the dedupe cannot use: :func:`_value_problem`)."""
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
                problem = _value_problem(pl.from_arrow(t).lazy(), ds)
            except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
                problem = f"unreadable ({typed_line(exc)})"
            if problem:
                isl.damaged[name] = problem
                warn(f"{loc.uri}: damaged part, {problem}; skipped")
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


def _find_unreadable(parts: list[Location], columns: list[str], ds) -> dict[str, str]:
    """uri -> reason for the parts a full read, or the dedupe's arithmetic on their values,
    fails on (after a failed streaming pass)."""
    def full(loc: Location):
        try:
            t = loc.read_parquet(columns=columns)
        except (OSError, pa.ArrowException, StorageError, ValueError) as exc:
            return loc.uri, f"unreadable ({typed_line(exc)})"
        return loc.uri, _value_problem(pl.from_arrow(t).lazy(), ds)

    with ThreadPoolExecutor(_IO_THREADS) as pool:
        return {u: r for u, r in pool.map(full, parts) if r}


def _incidence(lf: pl.LazyFrame, keys: list[pl.Expr]) -> tuple[np.ndarray, np.ndarray]:
    """(for each distinct key, the number of islands whose rows hold it; for each island with
    rows, the number of distinct keys it holds), streamed."""
    names = [f"k{j}" for j in range(len(keys))]
    pairs = lf.select(pl.col("island"), *[k.alias(n) for k, n in zip(keys, names)]).unique()
    per_key = pairs.group_by(names).agg(pl.len().alias("islands")).select("islands")
    per_island = pairs.group_by("island").agg(pl.len().alias("keys")).select("keys")
    return (per_key.collect(engine="streaming")["islands"].to_numpy(),
            per_island.collect(engine="streaming")["keys"].to_numpy())


def _dedupe_to_file(parts: list[Location], columns: list[str], ds, target: Path) -> tuple:
    """Write the winners of ``parts`` to the local file ``target``; (found, unique, textures, light,
    island incidence of the light textures, island incidence of the charge assignments) -- the
    incidences (per key, per island: :func:`_incidence`) for :func:`rayflavor.richness.chao2_from_counts`."""
    if parts:
        lf = _source_frame([p.polars_source() for p in parts], columns)
    else:  # nothing found: an empty models.parquet, so readers see "0 models", not a missing file
        lf = pl.from_arrow(empty_table()).lazy().with_row_index("__row")
    lf = lf.with_columns(distance_expr(ds))
    charges = list(fn.CHARGES)
    short = (~pl.col("targets_met")) if "targets_met" in columns else pl.lit(False)  # a target-meeting row first
    narrow = lf.select("__row", *[pl.col(c).cast(pl.Int16) for c in charges], "distance",
                       pl.col("island").cast(pl.Int32), "generation", short.alias("__short"))
    found = narrow.select(pl.len()).collect(engine="streaming").item()
    winners = (
        narrow.group_by(charges)
        .agg(pl.col("__row").sort_by(["__short", "distance", "island", "generation", "__row"]).first())
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


def _existing_rows(dest: Location) -> tuple[int, dict[int, int]] | None:
    """(rows, {island: rows}) of the models.parquet a dedupe would replace; ``None`` when there
    is none or it cannot be read (then nothing readable is lost by replacing it)."""
    try:
        if not dest.is_file():
            return None
        islands = pl.from_arrow(dest.read_parquet(columns=["island"]))["island"].value_counts()
        per = dict(zip(islands["island"].to_list(), islands["count"].to_list()))
        return sum(per.values()), per
    except (OSError, pa.ArrowException, StorageError, ValueError, pl.exceptions.PolarsError, KeyError):
        return None


def _check_shrink(dest: Location, new_rows: int, broken: dict[int, str], damaged_now: list[str],
                  warn: Callable[[str], None]) -> None:
    """Never replace ``dest`` by a file with fewer rows without a named cause: an island whose
    checkpoint cannot be read while ``dest`` holds its rows stops the dedupe (those rows exist in
    no other readable form); damaged parts found by this dedupe are the cause named in a
    warning; a shrink with no cause found stops it too.  Raises :class:`DedupeError`."""
    old = _existing_rows(dest)
    if old is None or new_rows >= old[0]:
        return
    total, per = old
    held = {i: per[i] for i in broken if per.get(i)}
    if held:
        why = broken[min(held)]
        raise DedupeError(f"{dest.uri} holds {sum(held.values())} rows of island(s) {sorted(held)} whose checkpoint "
                          f"cannot be read ({why}); kept as it is ({total} rows): repair or remove that island's "
                          f"checkpoint.json, or move {dest.name} away to write it anew")
    if damaged_now:
        warn(f"{dest.uri}: {total} to {new_rows} rows: {len(damaged_now)} damaged part(s) found by this dedupe "
             f"(named above) are left out")
        return
    raise DedupeError(f"{dest.uri}: a dedupe would shrink it from {total} to {new_rows} rows and no damaged part "
                      f"explains it (a committed part or island removed by hand?); kept as it is: move it away to "
                      f"write it anew")


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
    # an object store: one multipart upload, streamed (models.parquet may be GBs)
    dest.upload_file(target, chunk_bytes=64 << 20)


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


def target_counts(models: Path | str | pl.LazyFrame, targets: tuple[str, ...] | list[str], ds) -> tuple[tuple[str, int], ...]:
    """``(text, rows meeting it)`` per target text, of a local Parquet file or a lazy frame of
    models (only the observables the targets need are read)."""
    parsed = fn_targets.parse_all(targets)
    if not parsed:
        return ()
    lf = models if isinstance(models, pl.LazyFrame) else pl.scan_parquet(models)
    cols = lf.select(fn_targets.needed_columns(parsed)).collect(engine="streaming")
    columns = {c: cols[c].to_numpy() for c in cols.columns}
    m0 = {m: ds.get(m).central for m in fn.MASSES}
    return tuple((t.text, int(t.met(fn_targets.values(columns, t.name, m0)).sum())) for t in parsed)


def dedupe(out: Location | str, data_name: str | fndata.DataSet = fn.DEFAULT_DATA, *, compact: bool = True, lease=None,
           warn: Callable[[str], None] | None = None, targets: tuple[str, ...] | list[str] = ()) -> Counts:
    """Dedupe the committed parts of the scan at ``out`` into ``OUT/models.parquet`` (written
    whole or not at all) and return the counts; compact first when ``compact`` (module docstring).

    ``data_name``: a data set name or path, or a loaded data set (a scan's own copy,
    :func:`rayflavor.storage.scan_data.stored`).
    ``lease``: a lease on ``out`` the caller holds (the scan driver); otherwise the dedupe takes
    the lease itself for the compaction, and skips compaction while another process holds it.
    ``warn``: called with one line per damaged part (default: :class:`DamagedPartWarning`).
    ``targets``: target texts (a scan's ``[island] targets``) to count the models meeting (:attr:`Counts.targets`).
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
                note = _compact(islands, columns, getattr(lease, "renew", lambda: None), warn, ds)
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
            bad = _find_unreadable(parts, columns, ds)  # a corrupt page behind a readable footer, absurd values
            if not bad:
                raise DedupeError(f"{out.uri}: dedupe failed ({typed_line(exc)})") from None
            for uri, reason in bad.items():
                warn(f"{uri}: damaged part, {reason}; skipped")
                damaged_now.append(f"{uri}: {reason}")
            parts = [p for p in parts if p.uri not in bad]
            found, unique, tex, light, inc_light, inc_unique = _dedupe_to_file(parts, columns, ds, tmp)
        _check_shrink(dest, unique, broken, damaged_now, warn)
        met = target_counts(tmp, targets, ds)
        _publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    damaged = tuple(damaged_now + damaged_before + [f"island {i}: {why}" for i, why in broken.items()])
    m = len(islands)  # every island that ran is a sampling unit, also one that found nothing
    dependent = islands_exchanged(out)  # migrating islands are not independent units: a loose lower bound

    def richness(inc: tuple[np.ndarray, np.ndarray]) -> Richness:
        return dataclasses.replace(chao2_from_counts(inc[0], m, inc[1]), dependent=dependent)

    return Counts(found, unique, found - unique, tex, light, damaged=len(damaged), parts=len(parts),
                  compaction=note, damaged_parts=damaged, richness_light=richness(inc_light),
                  richness_unique=richness(inc_unique), targets=met)

