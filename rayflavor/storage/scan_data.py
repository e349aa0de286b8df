"""A scan's own copy of its data set, so that OUT is self-contained.

When a scan starts, the text of its data set (``ScanSettings.data``: a shipped name or a TOML
file on the driver's machine) is written to ``OUT/data.toml`` and its SHA-256 recorded in
``OUT/scan.json`` under ``"data_file"``::

    "data_file": {"name": "data.toml", "sha256": "<hex>", "source": "<settings.data as given>"}

Every later use of the scan -- its islands, ``--resume`` from any machine, ``rayflavor dedupe``,
``rayflavor analyze`` -- reads that copy, never the original path, so a scan started on a laptop
resumes on a cluster head and its verdicts all come from one data set.

On resume the copy is checked against the recorded SHA-256 (a copy edited in OUT is refused),
and against the source when the source is readable here: a data file edited since the scan
started is refused (old and new verdicts would mix in one ``models.parquet``) unless the caller
asks to go on with the copy (``rayflavor scan --resume=data-changed-ok``).  A source that is
absent on this machine is not an error: the copy is what the scan uses.  A scan written before
copies existed gets one on its next start, from the source as it is then.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rayflavor.physics import data as fndata
from rayflavor.storage.location import Location, StorageError

COPY = "data.toml"


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def source_bytes(name_or_path: str) -> bytes | None:
    """The bytes of a shipped data set or of a data file on this machine (``None``: no such file)."""
    if name_or_path in fndata.SHIPPED:
        return fndata.shipped_text(name_or_path).encode("utf-8")
    path = Path(name_or_path)
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def recorded(out: Location) -> dict | None:
    """The ``"data_file"`` record of ``OUT/scan.json`` (``None``: no scan.json or no record)."""
    loc = out / "scan.json"
    if not loc.is_file():
        return None
    doc = loc.read_json()
    rec = doc.get("data_file") if isinstance(doc, dict) else None
    if rec is not None and not (isinstance(rec, dict) and isinstance(rec.get("sha256"), str)):
        raise StorageError(f"{loc.uri}: 'data_file' is not a record with a sha256: {rec!r}")
    return rec


def islands_exchanged(out: Location) -> bool:
    """Whether the scan at ``out`` ran with islands that exchange points (``migration`` other than
    ``none``, or ``[island] restart_archive > 0``, in the settings of its ``scan.json``): then its
    islands are not independent sampling units (docs/methods-fn.md#migration). False without a
    readable ``scan.json``."""
    loc = out / "scan.json"
    try:
        doc = loc.read_json() if loc.is_file() else None
    except (StorageError, OSError, ValueError):
        return False
    settings = doc.get("settings") if isinstance(doc, dict) else None
    if not isinstance(settings, dict):
        return False
    island = settings.get("island") if isinstance(settings.get("island"), dict) else {}
    archive = island.get("restart_archive", 0)
    return settings.get("migration", "none") != "none" or (isinstance(archive, (int, float)) and archive > 0)


def stored(out: Location) -> fndata.DataSet | None:
    """The data set of the scan at ``out`` from its copy (checked against the recorded SHA-256),
    ``None`` when the scan has no copy (written before copies existed)."""
    copy = out / COPY
    if not copy.is_file():
        return None
    payload = copy.read_bytes()
    rec = recorded(out)
    if rec is not None and sha256(payload) != rec["sha256"]:
        raise StorageError(f"{copy.uri} was changed after the scan started (sha256 {sha256(payload)[:12]}…, "
                           f"scan.json records {rec['sha256'][:12]}…); restore it or start a new scan")
    try:
        return fndata.loads(payload.decode("utf-8"), copy.uri)
    except UnicodeDecodeError:
        raise StorageError(f"{copy.uri}: not a text file") from None


def plan(out: Location, name_or_path: str, *, changed_ok: bool = False) -> tuple[fndata.DataSet, dict, bytes | None]:
    """What a scan start or resume at ``out`` runs with, without writing anything: the data set,
    its ``"data_file"`` record, and the bytes to write to ``OUT/data.toml`` (``None``: the copy
    stands).

    No record in scan.json (a new scan, or one written before copies existed): the source is
    copied.  A record: the copy, after the checks of the module docstring -- ValueError (one
    line) when the source was edited since the scan started and ``changed_ok`` is false.
    DataError for a source that is missing or not a data file when there is no copy to use."""
    copy = out / COPY
    source = source_bytes(name_or_path)
    if recorded(out) is None:
        if source is None:
            ds = stored(out)  # a copy whose record was never written (a start that died)
            if ds is None:
                fndata.load(name_or_path)  # raises DataError naming the problem
            payload = copy.read_bytes()
            return ds, {"name": COPY, "sha256": sha256(payload), "source": name_or_path}, None
        try:
            ds = fndata.loads(source.decode("utf-8"), copy.uri)  # a bad file is refused before any write
        except UnicodeDecodeError:
            raise fndata.DataError(f"{name_or_path}: not a text file") from None
        return ds, {"name": COPY, "sha256": sha256(source), "source": name_or_path}, source
    ds = stored(out)
    if ds is None:
        raise StorageError(f"{copy.uri} is missing, but scan.json records the scan's copy of its data set there; "
                           "restore it (its sha256 is in scan.json)")
    digest = sha256(copy.read_bytes())
    if source is not None and sha256(source) != digest and not changed_ok:
        raise ValueError(f"the data set {name_or_path} changed since the scan started (sha256 {sha256(source)[:12]}… "
                         f"now, {digest[:12]}… in its copy {copy.uri}); --resume=data-changed-ok goes on with the "
                         "copy, or start a new scan for the new data")
    return ds, {"name": COPY, "sha256": digest, "source": name_or_path}, None


def keep_copy(out: Location, name_or_path: str, *, changed_ok: bool = False) -> tuple[fndata.DataSet, dict]:
    """:func:`plan`, then write ``OUT/data.toml`` when it says so; returns (data set, record)."""
    ds, record, payload = plan(out, name_or_path, changed_ok=changed_ok)
    if payload is not None:
        (out / COPY).write_bytes(payload)
    return ds, record


__all__ = ["COPY", "islands_exchanged", "keep_copy", "plan", "recorded", "sha256", "source_bytes", "stored"]
