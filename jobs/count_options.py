"""Print, per rayflavor command, the number of options ``--help`` shows (not hidden, not ``--help``).

Usage: ``python jobs/count_options.py [--json]``. Walks the click tree from the ``rayflavor`` group.
"""

from __future__ import annotations

import json
import sys

import click

from rayflavor.cli.main import cli


def shown_options(command: click.Command) -> list[str]:
    """The option names ``--help`` of ``command`` lists, ``--help`` itself left out."""
    return [p.opts[0] for p in command.params
            if isinstance(p, click.Option) and not p.hidden and "--help" not in p.opts]


def walk(command: click.Command, path: str = "rayflavor"):
    """``(command path, shown options)`` of every command and group under ``command``."""
    yield path, shown_options(command)
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, f"{path} {name}")


def main() -> None:
    counts = {path: len(opts) for path, opts in walk(cli)}
    if "--json" in sys.argv[1:]:
        print(json.dumps(counts, indent=1))
        return
    for path, n in counts.items():
        print(f"{n:3d}  {path}")


if __name__ == "__main__":
    main()
