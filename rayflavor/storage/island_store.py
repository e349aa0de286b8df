"""Committed output of one island, on a local disk or an object store, without renames or pickles.

Layout of one island under a scan's ``OUT`` (a :class:`~rayflavor.storage.location.Location`:
a local directory, ``s3://…``, ``gs://…``)::

    OUT/islands/island-0007/part-000012-3f9c2a1b.parquet   models, write-once name
    OUT/islands/island-0007/state-000031-3f9c2a1b.npz      island state arrays, write-once name
    OUT/islands/island-0007/checkpoint.json                the commit point (replaced whole)

``part-<seq>-<attempt>.parquet``: ``seq`` counts the island's parts, ``attempt`` is a random
token drawn once per :class:`IslandStore` (one per actor start), so two attempts never write
the same name and no object is ever overwritten.  ``state-<commit>-<attempt>.npz``: the
island's state arrays (``numpy.savez``, plain numeric arrays, read back with
``allow_pickle=False``), one per commit.

Commit protocol (:meth:`IslandStore.commit`)::

    1. PUT  part-<seq>-<attempt>.parquet        (if there are new models)
    2. PUT  state-<commit>-<attempt>.npz
    3. PUT  checkpoint.json                      <- the commit point
    4. DELETE the previous state-*.npz           (garbage from here on; best effort)

Each PUT is atomic on its own: one object PUT on S3/GCS (an object appears whole or not at
all, and a PUT that replaces ``checkpoint.json`` is seen whole by every later GET), a
temporary file + fsync + :func:`os.replace` on a local disk (:mod:`rayflavor.storage.location`).
Nothing is renamed on an object store.  ``checkpoint.json`` holds, in one JSON object:

* ``parts``: the committed part objects in order, each ``{"name", "rows"}``; ``next_seq``;
* ``quarantined``: parts found damaged by ``rayflavor dedupe`` (kept, never read again);
* ``state``: ``{"meta": <JSON state meta>, "arrays": "state-….npz"}`` or ``null``;
* ``info``: the runner's own data (``wall_seconds``, ``starts``, ``nodes``, …);
* ``format`` (``rayflavor-island/1``), ``island``, ``attempt``, ``commit``, ``written_at``.

A writer killed anywhere before step 3 leaves the previous ``checkpoint.json`` in force: the
objects of steps 1-2 are listed nowhere, so readers never see them (they read only the parts a
checkpoint lists), and :meth:`IslandStore.load` of the next attempt deletes them.  The island
state in the checkpoint (its seen-charges set among it) is the state *after* draining the
listed parts, so the replayed generations neither lose a committed model nor write one twice.
No pickles anywhere: the state meta is JSON (``allow_nan=False``) and the arrays an ``.npz``
loaded with ``allow_pickle=False``, so a shared bucket cannot make a reader run code.

Only one writer per island at a time: the scan holds the ``OUT`` lease
(:mod:`rayflavor.storage.lease`) and Ray runs one actor per island; ``rayflavor dedupe``
compacts (rewrites the checkpoint) only while it holds the lease itself.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayflavor.messages import one_line
from rayflavor.storage.location import Location, StorageError

FORMAT = "rayflavor-island/1"
CHECKPOINT = "checkpoint.json"
PART_RE = re.compile(r"^part-(\d{6})-([0-9a-z]+)\.parquet$")
STATE_RE = re.compile(r"^state-(\d{6})-([0-9a-z]+)\.npz$")
ISLAND_RE = re.compile(r"^island-(\d{4,})$")

# When the runner flushes (drains its island, writes a part, commits): at FLUSH_ROWS rows held
# or FLUSH_SECONDS after the last commit, whichever comes first, and always at a stop.
# Sizing: a 6-hour scan with 64 islands is 384 island-hours; at the measured
# ~2e4 unique valid models per core-hour it holds ~7.7e6 rows.  Time-triggered flushes: at most
# 3600/600 = 6 per island-hour -> 384 * 6 = 2304 parts; row-triggered ones: at most
# 7.7e6 / 2e4 = 384.  So at most ~2.7e3 part files (<= 7 per island-hour, ~2.9e3 rows each on
# average) against up to 3600/2 = 1800 per island-hour (~6.9e5 for the scan) with the old 2 s
# flushes; `rayflavor dedupe` then compacts them to one per island (64).  Holding 2e4 rows
# costs ~26 MB (165 columns of 8 bytes); a killed island replays at most FLUSH_SECONDS of work,
# never loses a committed model.
FLUSH_ROWS = 20_000
FLUSH_SECONDS = 600.0


def island_name(island: int) -> str:
    return f"island-{island:04d}"


def island_location(out: Location, island: int) -> Location:
    return out / "islands" / island_name(island)


def list_islands(out: Location) -> list[int]:
    """Island numbers with a directory (prefix) under ``OUT/islands``, sorted."""
    root = out / "islands"
    return sorted(int(m.group(1)) for n in root.list() if (m := ISLAND_RE.match(n)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _check_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype.kind not in "biufcmMUS" or a.dtype.hasobject:
            raise ValueError(f"state array {k!r} has dtype {a.dtype}: only plain numeric arrays are stored (no pickles)")
        out[str(k)] = a
    return out


def _plain(obj):
    """``json.dumps`` default: numpy scalars as Python numbers (NaN/inf still refused)."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def _json(obj, what: str) -> str:
    try:
        return json.dumps(obj, allow_nan=False, default=_plain)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not plain JSON data ({exc})") from None


def parquet_bytes(table: pa.Table) -> bytes:
    """A part's bytes: zstd, dictionary encoding only for integer, string and bool columns (the
    model rows' floats are all distinct: a dictionary there only costs time -- writing 1.6e5
    rows (synthetic, on a loaded machine) took 10.5 s with it and 4.7 s without, and the file was 15 % smaller)."""
    cols = [f.name for f in table.schema
            if pa.types.is_integer(f.type) or pa.types.is_string(f.type) or pa.types.is_boolean(f.type)]
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=cols)
    return sink.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load_npz(loc: Location) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(loc.read_bytes()), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:  # pickled arrays, truncated or not an npz
        raise StorageError(f"{loc.uri}: unreadable island state ({one_line(exc)})") from None


def _entry_problem(entry) -> str | None:
    """Why a ``parts``/``quarantined`` entry of a checkpoint is unusable (``None``: it is fine):
    a part name of this module's forms (never a path)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return "no part name"
    if not PART_RE.match(entry["name"]):
        return "not a part file name"
    return None


def _listed_rows(entry: dict) -> int | None:
    """The row count a part entry records; None when it records none or no count (a bad count
    leaves the part to be read as it is, rather than making its island unreadable)."""
    rows = entry.get("rows")
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


#: reads of a checkpoint that does not parse before it counts as damaged (see read_checkpoint)
READ_ATTEMPTS = 4


class IslandStore:
    """The committed parts and state of island ``island`` of the scan at ``out``.

    A writer (the island's actor) calls :meth:`load` once, then :meth:`commit` for every flush.
    Readers call :meth:`committed_parts`.  See the module docstring for the protocol.
    """

    def __init__(self, out: Location, island: int):
        self.out, self.island = out, int(island)
        self.dir = island_location(out, self.island)
        self.attempt = secrets.token_hex(4)  # this attempt's write-once names
        self._ck: dict | None = None  # the last committed checkpoint this object knows

    # -- reading ---------------------------------------------------------------------------
    def read_checkpoint(self) -> dict | None:
        """The committed ``checkpoint.json`` (``None``: none yet); StorageError if unreadable."""
        loc = self.dir / CHECKPOINT
        if not loc.is_file():
            return None
        for attempt in range(READ_ATTEMPTS):
            try:
                ck = json.loads(loc.read_bytes())
                break
            except (ValueError, UnicodeDecodeError) as exc:
                # S3-compatible servers without read isolation (seen with moto) can hand a reader a
                # checkpoint that is being overwritten; a real torn file stays torn after retries
                if attempt == READ_ATTEMPTS - 1:
                    raise StorageError(f"{loc.uri}: not a valid island checkpoint ({exc})") from None
                time.sleep(0.2 * (attempt + 1))
        if not isinstance(ck, dict) or ck.get("format") != FORMAT or not isinstance(ck.get("parts"), list):
            raise StorageError(f"{loc.uri}: not a valid island checkpoint (format is not {FORMAT})")
        for entry in [*ck["parts"], *ck.get("quarantined", [])]:
            problem = _entry_problem(entry)
            if problem:
                raise StorageError(f"{loc.uri}: not a valid island checkpoint (part entry {entry!r:.80}: {problem})")
        return ck

    def _current(self) -> dict:
        """The last committed checkpoint, or a fresh one."""
        if self._ck is None:
            ck = self.read_checkpoint()
            if ck is None:
                ck = {"format": FORMAT, "island": self.island, "attempt": None, "commit": 0, "next_seq": 0,
                      "parts": [], "quarantined": [], "state": None, "info": {}}
            self._ck = ck
        return self._ck

    def committed_part_names(self) -> list[str]:
        """Names of the committed parts, in commit order (read from storage, not cached); a
        name listed twice counts once (:meth:`listed_parts` says which)."""
        return list(self.listed_parts())

    def listed_parts(self) -> dict[str, int | None]:
        """The committed parts as ``{name: rows the checkpoint lists (None: not recorded)}``, in
        commit order, read from storage; a name listed more than once is kept once."""
        self._ck = None
        out: dict[str, int | None] = {}
        for p in self._current()["parts"]:
            out.setdefault(p["name"], _listed_rows(p))
        return out

    def repeated_parts(self) -> list[str]:
        """Names the last read checkpoint lists more than once (a hand-edited or foreign file)."""
        names = [p["name"] for p in self._current()["parts"]]
        return sorted({n for n in names if names.count(n) > 1})

    def committed_parts(self) -> list[Location]:
        """The committed part objects of this island, in commit order (never a dead attempt's)."""
        return [self.dir / n for n in self.committed_part_names()]

    def quarantined(self) -> list[dict]:
        """Parts ``rayflavor dedupe`` found damaged: ``{"name", "reason"}`` each."""
        return list(self._current().get("quarantined", []))

    def load(self) -> tuple[dict, dict[str, np.ndarray], dict] | None:
        """(state meta, state arrays, runner info) of the last commit, or ``None`` when the
        island has no committed state yet.

        Deletes what no checkpoint lists (parts and states of attempts that died before their
        commit, leftover temporary files): call it once, at the start of an attempt."""
        self._ck = None
        ck = self._current()
        self.collect_garbage()
        if ck["state"] is None:
            return None
        arrays = _load_npz(self.dir / ck["state"]["arrays"])
        return ck["state"]["meta"], arrays, dict(ck.get("info") or {})

    def collect_garbage(self) -> list[str]:
        """Delete this island's objects that the committed checkpoint does not reference;
        returns their names.  Only for the island's single writer (or a lease holder)."""
        ck = self._current()
        keep = {p["name"] for p in ck["parts"]} | {q["name"] for q in ck.get("quarantined", [])}
        if ck["state"] is not None:
            keep.add(ck["state"]["arrays"])
        gone = []
        for n in self.dir.list():
            if n in keep:
                continue
            if PART_RE.match(n) or STATE_RE.match(n) or (n.startswith(".") and ".tmp" in n):
                (self.dir / n).delete()
                gone.append(n)
        return gone

    # -- writing ---------------------------------------------------------------------------
    def commit(self, models: pa.Table | None, state_meta: dict, state_arrays: dict[str, np.ndarray], info: dict) -> None:
        """Write ``models`` (if any rows) as a new part, the state, then the checkpoint listing
        both: the checkpoint PUT is the commit point (module docstring)."""
        ck = self._current()
        meta_json = _json(state_meta, "the island state meta")  # ValueError on NaN / non-JSON, before any write
        info = json.loads(_json(dict(info), "the runner info"))
        arrays = _check_arrays(state_arrays)
        parts = list(ck["parts"])
        seq = int(ck["next_seq"])
        if models is not None and models.num_rows > 0:
            name = f"part-{seq:06d}-{self.attempt}.parquet"
            (self.dir / name).write_bytes(parquet_bytes(models))
            parts.append({"name": name, "rows": models.num_rows})
            seq += 1
        commit = int(ck["commit"]) + 1
        state_name = f"state-{commit:06d}-{self.attempt}.npz"
        (self.dir / state_name).write_bytes(_npz_bytes(arrays))
        new = {**ck, "attempt": self.attempt, "commit": commit, "next_seq": seq, "parts": parts,
               "state": {"meta": json.loads(meta_json), "arrays": state_name}, "info": info, "written_at": _now()}
        self._write_checkpoint(new)
        old_state = ck["state"]["arrays"] if ck["state"] is not None else None
        if old_state and old_state != state_name:
            try:
                (self.dir / old_state).delete()
            except (OSError, StorageError):  # garbage: the next load() deletes it
                pass

    def replace_parts(self, table: pa.Table | None, replaced: list[str], quarantine: dict[str, str]) -> str | None:
        """Compaction (for ``rayflavor dedupe``, under the OUT lease): write ``table`` as one new
        part in place of the committed parts ``replaced``, move the parts in ``quarantine``
        (name -> reason) to the quarantined list, commit, then delete the replaced parts.
        State and runner info are kept.  Returns the new part's name (``None``: no rows)."""
        ck = self._current()
        names = [p["name"] for p in ck["parts"]]
        unknown = (set(replaced) | set(quarantine)) - set(names)
        if unknown:
            raise StorageError(f"{self.dir.uri}: not committed parts: {sorted(unknown)}")
        seq = int(ck["next_seq"])
        new_name = None
        first = min((names.index(n) for n in replaced), default=len(names))
        kept = [p for p in ck["parts"] if p["name"] not in replaced and p["name"] not in quarantine]
        if table is not None and table.num_rows > 0:
            new_name = f"part-{seq:06d}-{self.attempt}.parquet"
            (self.dir / new_name).write_bytes(parquet_bytes(table))
            seq += 1
            # the compacted part takes the place of the first part it replaces (order kept)
            before = [p for p in kept if names.index(p["name"]) < first]
            after = [p for p in kept if names.index(p["name"]) > first]
            kept = [*before, {"name": new_name, "rows": table.num_rows}, *after]
        quarantined = list(ck.get("quarantined", [])) + [{"name": n, "reason": r} for n, r in quarantine.items()]
        new = {**ck, "commit": int(ck["commit"]) + 1, "next_seq": seq, "parts": kept,
               "quarantined": quarantined, "written_at": _now()}
        self._write_checkpoint(new)
        for n in replaced:
            (self.dir / n).delete()
        return new_name

    def _write_checkpoint(self, ck: dict) -> None:
        (self.dir / CHECKPOINT).write_bytes((json.dumps(ck, indent=1, allow_nan=False, default=_plain) + "\n").encode())
        self._ck = ck


def committed_parts(out: Location) -> list[Location]:
    """Every committed part of every island of the scan at ``out`` (island order, then commit
    order); a reader's view: stray objects of dead attempts are never included."""
    return [p for i in list_islands(out) for p in IslandStore(out, i).committed_parts()]
