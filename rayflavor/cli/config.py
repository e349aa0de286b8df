"""``rayflavor config show COMMAND``: the effective settings of a command, as TOML, with their sources.

Every setting of a command, option or not, printed as the ``--config`` file that reproduces it:
each line says where its value came from (``default``, ``preset P``, ``config file F`` or
``command line``).  The options after COMMAND are the command's own (``--preset``, ``--config``
and its settings options), so ``rayflavor config show scan --preset paper --islands 8`` prints what
``rayflavor scan --preset paper --islands 8`` would run.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from rayflavor.cli import options
from rayflavor.cli.common import OneLineCommand, UserError
from rayflavor.messages import one_line


def commands() -> dict[str, options.Settable]:
    """The commands that have settings: ``"scan"``, ``"diffusion run"``, ... -> their settings."""
    from rayflavor.cli.diffusion import FINETUNE, RUN, SAMPLE
    from rayflavor.cli.reference import REFERENCE
    from rayflavor.cli.scan import SCAN

    return {"scan": SCAN, "diffusion run": RUN, "diffusion finetune": FINETUNE, "diffusion sample": SAMPLE,
            "diffusion reference": REFERENCE}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for every printable text
    return str(value)


def to_toml(mapping: dict, sources: dict, header: str) -> str:
    """``mapping`` (a settings object's :func:`~rayflavor.configfile.to_mapping`) as TOML with a
    ``# source`` comment on every line; a setting without a value (``None``) is a comment line,
    so the text is itself a valid ``--config`` file."""
    lines = [f"# {header}"]

    def table(m: dict, prefix: tuple[str, ...]) -> None:
        for k, v in m.items():
            if isinstance(v, dict):
                continue
            where = sources.get((*prefix, k), "default")
            lines.append(f"# {k} = (none)  # {where}" if v is None else f"{k} = {_toml_value(v)}  # {where}")
        for k, v in m.items():
            if isinstance(v, dict):
                lines.append(f"\n[{'.'.join((*prefix, k))}]")
                table(v, (*prefix, k))

    table(mapping, ())
    return "\n".join(lines) + "\n"


def _split(words: tuple[str, ...], known: dict) -> tuple[str, list[str]]:
    for n in range(len(words), 0, -1):
        name = " ".join(words[:n])
        if name in known and not any(w.startswith("-") for w in words[:n]):
            return name, list(words[n:])
    raise UserError(f"config show: name a command with settings ({', '.join(known)})")


@click.group("config")
def config() -> None:
    """The settings of the commands: every one, with its value and where it came from."""


@config.command("show", cls=OneLineCommand,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("words", metavar="COMMAND [--preset P] [--config F] [OPTIONS]", nargs=-1, type=click.UNPROCESSED)
def show(words: tuple[str, ...]) -> None:
    """Print the effective settings of COMMAND (scan, diffusion run, diffusion finetune, diffusion
    sample, diffusion reference) as TOML, each with its source: default, preset, config file or
    command line. The output is a valid --config file."""
    from rayflavor import configfile

    known = commands()
    name, rest = _split(words, known)
    settable = known[name]
    declared = options.settings_of(settable)(lambda **_: None)  # the command's --preset, --config and options
    parser = OneLineCommand(name, params=list(reversed(declared.__click_params__)))
    ctx = parser.make_context(f"rayflavor config show {name}", rest)
    try:
        settings, sources = options.resolve(settable, ctx.params["preset"], ctx.params["config"], options.given(ctx))
    except ValueError as exc:
        raise UserError(one_line(exc)) from None
    click.echo(to_toml(configfile.to_mapping(settings), sources,
                       f"rayflavor {name}: effective settings (default < --preset < --config < command line)"), nl=False)


__all__ = ["commands", "config", "to_toml"]
