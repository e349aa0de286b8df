"""``rayflavor dedupe OUT`` (thin click layer over :mod:`rayflavor.storage.dedupe`).

OUT is a local directory or a URI (``s3://bucket/prefix``, ``gs://…``, ``file://…``).  Bad input
(unsupported scheme, no such bucket, not a scan, a corrupt ``scan.json``, a bad ``--data``) is one
line ``Error: …`` and exit code 2; damaged part files are warnings (one line each, on stderr),
skipped and counted, never fatal.
"""

from __future__ import annotations

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError, load_data


def stored_data_name(doc: dict, where: str) -> str | None:
    """The data set recorded in a scan.json document (``settings.data``; older scans:
    ``config.data``), ``None`` when it records none."""
    for key in ("settings", "config"):
        section = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(section, dict) and "data" in section:
            value = section["data"]
            if not isinstance(value, str) or not value:
                raise UserError(f"{where}: '{key}.data' is not a data set name or path: {value!r}")
            return value
    return None


def stored_targets(doc: dict, where: str) -> tuple[str, ...]:
    """The targets a scan.json document records (``settings.island.targets``; none for older
    scans), in their canonical spelling; UserError when they do not parse."""
    from rayflavor.physics import targets as fn_targets

    island = (doc.get("settings") or {}).get("island") if isinstance(doc, dict) else None
    texts = island.get("targets", []) if isinstance(island, dict) else []
    try:
        if not isinstance(texts, list):
            raise ValueError(f"not a list of targets: {texts!r}")
        return tuple(t.text for t in fn_targets.parse_all(texts))
    except ValueError as exc:
        raise UserError(f"{where}: 'settings.island.targets': {exc}") from None


@click.command(cls=OneLineCommand)
@click.argument("out")
@options.data_option("For the distance to central values (default: the scan's, from OUT/scan.json).")
@click.option("--compact/--no-compact", default=True, show_default=True,
              help="Rewrite each island's committed parts as one part (skipped while a scan holds OUT).")
def dedupe(out, data_name, compact):
    """Deduplicate the committed parts of the scan at OUT into OUT/models.parquet and print the
    counts; OUT is a directory or an s3:// / gs:// URI."""
    from rayflavor.physics import fn
    from rayflavor.storage.dedupe import DedupeError
    from rayflavor.storage.dedupe import dedupe as run_dedupe
    from rayflavor.storage import scan_data
    from rayflavor.storage.location import StorageError, resolve

    copy, targets = None, ()
    try:
        loc = resolve(out)
        has_islands = bool((loc / "islands").list())
        scan_json = loc / "scan.json"
        has_json = scan_json.is_file()
        if not has_islands and not has_json:
            raise UserError(f"{loc.uri} is not a scan (no islands/ and no scan.json)")
        copy = scan_data.stored(loc) if data_name is None else None  # the scan's own copy of its data set
        if data_name is None and copy is None:
            data_name = (stored_data_name(scan_json.read_json(), scan_json.uri) if has_json else None) or fn.DEFAULT_DATA
        try:  # the targets to report on (a scan.json the dedupe does not need otherwise may be unreadable)
            doc = scan_json.read_json() if has_json else {}
        except (StorageError, ValueError):
            doc = {}
        targets = stored_targets(doc, scan_json.uri)
    except (StorageError, ValueError) as exc:  # ValueError: a DataError of the copy
        raise UserError(str(exc)) from None
    if copy is None:
        copy = load_data(data_name, tuple(fn.REQUIRED_DATA))
    else:
        try:
            copy.require(tuple(fn.REQUIRED_DATA))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        counts = run_dedupe(loc, copy, compact=compact, warn=lambda m: click.echo(f"warning: {m}", err=True),
                            targets=targets)
    except (DedupeError, StorageError) as exc:
        raise UserError(str(exc)) from None
    click.echo(f"{counts.parts} part files: {counts.line()}")
    for line in [*counts.target_lines(), *counts.richness_lines()]:
        click.echo(line)
    if counts.compaction:
        click.echo(counts.compaction)
    click.echo(f"models: {(loc / 'models.parquet').uri}")
