"""The ``rayflavor …`` command lines of the Markdown docs, and a parse of each against the real CLI.

Shared by the docs tests (tests/test_docs.py for README.md and docs/*.md; the cluster docs test
may use it too).  A *command line* is

* a line of a fenced code block that starts with ``rayflavor `` (after an optional ``$ ``, or after
  ``&& `` inside a line), with ``\\`` continuations joined and a trailing ``# comment`` dropped;
* an inline code span that starts with ``rayflavor `` and names one concrete command (spans that
  list alternatives with ``|`` or elide with ``…``/``...`` describe a family of commands and are
  not parsed).

:func:`parse` resolves the subcommand path through the click groups and builds the leaf command's
context with ``make_context`` (nothing runs; paths are not looked up on disk), so an unknown
option, a bad choice or a value out of a setting's bounds fails the same way it would for a user.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import click

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"`(rayflavor [^`]+)`")
ELIDED = ("|", "…", "...")


@dataclass(frozen=True)
class CommandLine:
    """One command line of a document: where it is and its words after ``rayflavor``."""

    path: Path
    line: int
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)[1:]

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.text}"


def _strip_comment(text: str) -> str:
    """``text`` without a shell comment (`` # …`` outside quotes)."""
    out, quote = [], None
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1].isspace()):
            break
        out.append(c)
    return "".join(out).strip()


def command_lines(path: Path) -> Iterator[CommandLine]:
    """Every ``rayflavor`` command line of the Markdown file ``path`` (see the module docstring)."""
    lines = path.read_text().splitlines()
    fenced, i = False, 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if FENCE.match(line):
            fenced = not fenced
            i += 1
            continue
        if fenced:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1].rstrip() + " " + lines[i].strip()
            for part in re.split(r"&&|;", line):
                part = _strip_comment(part.strip().removeprefix("$ ").strip())
                if part.startswith("rayflavor "):
                    yield CommandLine(path, number, part)
        else:
            for m in INLINE.finditer(line):
                text = m.group(1).strip()
                if not any(e in text for e in ELIDED):
                    yield CommandLine(path, number, text)
        i += 1


def parse(cli: click.Group, argv: list[str]) -> click.Context:
    """The context ``rayflavor argv`` gets from the real click tree, without running anything.
    Raises :class:`click.ClickException` (a usage error) as the CLI would for a user."""
    command: click.Command = cli
    name, parent = "rayflavor", None
    args = [a for a in argv if a not in ("--help", "-h")]  # eager: valid on every command, prints and exits
    with mock.patch.object(click.Path, "convert", lambda self, value, param, ctx: value):
        while isinstance(command, click.Group):
            split = next((k for k, a in enumerate(args) if a in command.commands), None)
            if split is None:
                if len(args) < len(argv):  # `rayflavor [group] --help`
                    return command.make_context(name, args, parent=parent, resilient_parsing=True)
                raise click.UsageError(f"{name}: no subcommand in {' '.join(argv)!r}")
            parent = command.make_context(name, args[:split + 1], parent=parent)  # the group's own options
            name, command, args = args[split], command.commands[args[split]], args[split + 1:]
        # a bare command path (`rayflavor analyze`, `rayflavor diffusion run --help`) names the command:
        # it exists, and its required arguments are not part of the mention
        return command.make_context(name, args, parent=parent, resilient_parsing=not args)


__all__ = ["CommandLine", "command_lines", "parse"]
