"""``rayflavor evaluate``: exact observables, losses and validity for a table of parameters."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from rayflavor.cli.common import UserError, data_option, load_data, mass_tolerance_option
from rayflavor.physics import fn, seesaw
from rayflavor.physics.params import ParameterError
from rayflavor.storage.tables import TableError, read_columns, to_arrow, write_atomic


def evaluate_columns(model: str, columns: dict, *, ordering: str, data_name: str | None, mass_tolerance: float) -> dict:
    """Evaluate named parameter columns; returns input columns followed by every result column."""
    if model == "seesaw":
        ds = load_data(data_name or seesaw.DEFAULT_DATA)
        x = seesaw.from_columns(columns)
        result = seesaw.evaluate(x, ordering=ordering, data=ds)
        result = {"ordering": np.full(len(x), ordering), **result}
    else:
        ds = load_data(data_name or fn.DEFAULT_DATA, fn.REQUIRED_DATA)
        x = fn.from_columns(columns)
        result = fn.evaluate(x, data=ds, mass_tolerance=mass_tolerance)
    out = {k: v for k, v in columns.items() if k not in result}
    out.update(result)
    return out


@click.command()
@click.option("--model", type=click.Choice(["seesaw", "fn"]), required=True,
              help="seesaw: type-I seesaw of the diffusion paper (23 columns); fn: two-flavon FN model (64 columns).")
@click.argument("input_path", metavar="INPUT.parquet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the input rows with every observable, loss and a `valid` flag.")
@click.option("--ordering", type=click.Choice(["NO", "IO"]), default="NO", show_default=True,
              help="seesaw only: label the mass states for normal (m1<m2<m3) or inverted (m3<m1<m2) ordering.")
@data_option(help_extra="Default: nufit-6.0-sk (seesaw), nufit-6.0+pdg-2024 (fn).")
@mass_tolerance_option
def evaluate(model, input_path, output_path, ordering, data_name, mass_tolerance):
    """Evaluate every row of INPUT.parquet exactly and write OUTPUT.parquet.

    Columns are listed in the README ("Parquet schemas"). A singular or degenerate row gets
    NaN observables and valid = false; bad input stops with one line and exit code 2.
    Example inputs ship with the package: `python -c "import rayflavor.examples as e; print(e.path('fn'))"`.
    """
    try:
        columns = read_columns(input_path)
        out = evaluate_columns(model, columns, ordering=ordering, data_name=data_name, mass_tolerance=mass_tolerance)
    except (TableError, ParameterError) as exc:
        raise UserError(f"{input_path}: {exc}" if not str(exc).startswith(str(input_path)) else str(exc)) from None
    write_atomic(to_arrow(out), output_path)
    valid = np.asarray(out["valid"])
    click.echo(f"{model}: evaluated {valid.size} row(s), {int(valid.sum())} valid -> {output_path}")
