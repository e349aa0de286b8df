"""``rayflavor evaluate``: exact observables, losses and validity for a table of parameters."""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError
from rayflavor.methods.ga.config import IslandConfig
from rayflavor.physics import data as data_mod
from rayflavor.physics import fn, seesaw
from rayflavor.physics.params import ParameterError
from rayflavor.storage.tables import TableError, read_columns, to_arrow, writable_target, write_atomic


def load_model_data(model: str, data_name: str | None, ordering: str = "NO") -> data_mod.DataSet:
    """The data set of ``model`` (its default when ``data_name`` is None), checked to hold what
    the model's losses need; raises :class:`~rayflavor.physics.data.DataError` in one line."""
    default = seesaw.DEFAULT_DATA if model == "seesaw" else fn.DEFAULT_DATA
    ds = data_mod.load(data_name or default)
    try:
        if model == "seesaw":
            seesaw.require_data(ds, ordering)
        else:
            fn.require_data(ds)
    except data_mod.DataError as exc:
        raise data_mod.DataError(f"--model {model} cannot use this data set: {exc}; use {default} or a file like it") from None
    return ds


def evaluate_columns(model: str, columns: dict, *, ordering: str, data_name: str | None, mass_tolerance: float) -> dict:
    """Evaluate named parameter columns; returns input columns followed by every result column.

    Raises ``ParameterError`` (bad columns), ``DataError`` (bad data set) or ``ValueError``
    (bad option) with one line; a row that is singular or overflows gets NaN observables and
    ``valid = False``, never an exception."""
    if not (math.isfinite(mass_tolerance) and 0.0 < mass_tolerance < 1.0):
        raise ValueError(f"--mass-tolerance must be a finite number in (0, 1), not {mass_tolerance}")
    ds = load_model_data(model, data_name, ordering)
    if model == "seesaw":
        x = seesaw.from_columns(columns)
        result = seesaw.evaluate(x, ordering=ordering, data=ds)
        result = {"ordering": np.full(len(x), ordering), **result}
    else:
        x = fn.from_columns(columns)
        result = fn.evaluate(x, data=ds, mass_tolerance=mass_tolerance)
    out = {k: v for k, v in columns.items() if k not in result}
    out.update(result)
    return out


@click.command(cls=OneLineCommand)
@click.option("--model", type=click.Choice(["seesaw", "fn"]), required=True,
              help="seesaw: type-I seesaw of the diffusion paper (23 columns); fn: two-flavon FN model (64 columns).")
@click.argument("input_path", metavar="INPUT.parquet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output_path", required=True, metavar="PATH|URI",
              help="Where to write the input rows with every observable, loss and a `valid` flag: a new path "
                   "or a regular file (replaced atomically; devices, FIFOs and directories are refused), "
                   "file://..., or an object s3://bucket/key or gs://bucket/key (one PUT).")
@click.option("--ordering", type=click.Choice(["NO", "IO"]), default="NO", show_default=True,
              help="seesaw only: label the mass states for normal (m1<m2<m3) or inverted (m3<m1<m2) ordering.")
@options.data_option(help_extra="Default: nufit-6.0-sk (seesaw), nufit-6.0+pdg-2024 (fn).")
@options.field_option(IslandConfig, "mass_tolerance")
def evaluate(model, input_path, output_path, ordering, data_name, mass_tolerance):
    """Evaluate every row of INPUT.parquet exactly and write OUTPUT.parquet.

    Columns are listed in docs/schemas.md. A singular, degenerate or overflowing
    row gets NaN observables and valid = false; bad input stops with one line and exit code 2,
    before anything is written. The output is written to a hidden `.OUTPUT.parquet.<pid>-<n>@<host>.tmp`
    beside it and renamed into place; one left by a killed run is removed by the next write to OUTPUT.
    Example inputs ship with the package: `python -c "import rayflavor.examples as e; print(e.path('fn'))"`.
    """
    from rayflavor.storage.location import StorageError, resolve, split_uri

    remote = None
    try:
        scheme, local = split_uri(output_path)  # the URI forms every -o/--out takes
        if scheme:
            remote = resolve(output_path)
            if remote.is_dir():
                raise UserError(f"{remote.uri}: is a prefix holding objects; give an object name")
        elif "://" in output_path:
            output_path = local  # file:///PATH, file://localhost/PATH
    except StorageError as exc:
        raise UserError(f"-o {output_path}: {exc}") from None
    try:
        if remote is None:
            writable_target(output_path)
        columns = read_columns(input_path)
        out = evaluate_columns(model, columns, ordering=ordering, data_name=data_name, mass_tolerance=mass_tolerance)
    except (TableError, ParameterError) as exc:
        text = str(exc)
        raise UserError(text if text.startswith((str(input_path), str(output_path))) else f"{input_path}: {text}") from None
    except data_mod.DataError as exc:  # names the data file and entry itself
        raise UserError(str(exc)) from None
    try:
        if remote is None:
            write_atomic(to_arrow(out), output_path)
        else:
            remote.write_parquet(to_arrow(out))
            output_path = remote.uri
    except (TableError, StorageError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{output_path}: cannot be written ({exc.strerror or exc})") from None
    valid = np.asarray(out["valid"])
    n_nan = int((~np.isfinite(np.asarray(out["m1" if model == "seesaw" else "m_u"], dtype=np.float64))).sum())
    nan_note = f", {n_nan} with NaN observables (singular, degenerate or overflowing; invalid)" if n_nan else ""
    click.echo(f"{model}: evaluated {valid.size} row(s), {int(valid.sum())} valid{nan_note} -> {output_path}")
