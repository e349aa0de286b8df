"""Pieces shared by the click commands: the user-error exception and the one-line usage errors
(the shared options are in :mod:`rayflavor.cli.options`)."""

from __future__ import annotations

import click

from rayflavor.physics import data as data_mod


class UserError(click.ClickException):
    """A mistake in the user's input: printed as one line, exit code 2 (like a usage error)."""

    exit_code = 2


class ScanFailed(click.ClickException):
    """A run that started and failed (an island raised, the store stayed down, a full disk):
    printed as one line, exit code 3 (2 is a user mistake, 130 an interruption)."""

    exit_code = 3


class OneLineCommand(click.Command):
    """Usage errors (bad option values) print as one ``Error: ...`` line, exit code 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            raise UserError(exc.format_message()) from None


def load_data(name_or_path: str, required: tuple[str, ...] = ()) -> data_mod.DataSet:
    """Load a data set, turning any problem into a one-line :class:`UserError`."""
    try:
        ds = data_mod.load(name_or_path)
        if required:
            ds.require(required)
        return ds
    except data_mod.DataError as exc:
        raise UserError(str(exc)) from None
