"""The docs as tests: what README.md and docs/*.md say about the CLI and the files is what the code does.

* every ``rayflavor …`` command line parses against the real click tree (:mod:`docs_commands`);
* every option the docs name exists on some command;
* every format version the docs name (``rayflavor-scan/2``) is the code's constant;
* every path of the output layouts (``OUT/…``, ``RUN/…``) is one the code writes.

``docs/cluster.md`` has its own test (the cluster helper's); ``docs/experiments.md`` quotes every
command as it was run at the commit its entry names (the log keeps the measurements of options that
were later removed, and ``git show <commit>`` gives the CLI of that time), so its command lines are
not held to today's CLI.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from docs_commands import command_lines, parse
from rayflavor.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in ("cluster.md",))]
CURRENT = [p for p in DOCS if p.name != "experiments.md"]
LINES = [c for p in CURRENT for c in command_lines(p)]


@pytest.mark.parametrize("line", LINES, ids=str)
def test_every_command_line_of_the_docs_parses(line):
    try:
        parse(cli, line.argv)
    except click.ClickException as exc:
        pytest.fail(f"{line}: {exc.format_message().splitlines()[0]}")


def test_the_docs_hold_command_lines_and_the_parser_refuses_a_wrong_one(tmp_path):
    assert len(LINES) > 40
    doc = tmp_path / "x.md"
    doc.write_text("Run `rayflavor scan --islands 4 --regime sideways`.\n\n```bash\n"
                   "rayflavor diffusion run RUN --seed 1 \\\n    --spread 100   # a removed option\n```\n"
                   "Not parsed: `rayflavor bench physics|scan`.\n")
    found = list(command_lines(doc))
    assert [c.text for c in found] == ["rayflavor scan --islands 4 --regime sideways",
                                      "rayflavor diffusion run RUN --seed 1 --spread 100"]
    for c in found:
        with pytest.raises(click.ClickException):
            parse(cli, c.argv)


def _options_of(command: click.Command) -> set[str]:
    names = {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _options_of(sub)
    return names


def test_every_option_the_docs_name_exists():
    known = _options_of(cli) | {"--help", "--index-url"}  # pip's, in the install instructions
    for script in (ROOT / "jobs").glob("*.py"):  # docs/figures.md documents jobs/make_figures.py's options
        known |= set(re.findall(r"\"(--[a-z][a-z0-9-]+)\"", script.read_text()))
    unknown = []
    for doc in CURRENT:
        paragraph = ""
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            paragraph = "" if not line.strip() else paragraph + " " + line
            if "removed" in paragraph:  # a paragraph about options that were measured and removed
                continue
            if re.match(r"\s*(pip|docker|kubectl|aws|git) ", line):  # another program's command line
                continue
            unknown += [f"{doc.name}:{number}: {name}" for name in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", line)
                        if name not in known]
    assert not unknown, "options named in the docs that no command has:\n" + "\n".join(unknown)


def _code_versions() -> dict[str, set[int]]:
    versions: dict[str, set[int]] = {}
    for path in (ROOT / "rayflavor").rglob("*.py"):
        for name, v in re.findall(r"[\"'](rayflavor-[a-z-]+)/(\d+)[\"']", path.read_text()):
            versions.setdefault(name, set()).add(int(v))
    return versions


def test_every_format_version_the_docs_name_is_the_codes():
    code = _code_versions()
    named = [(doc.name, m.group(1), int(m.group(2))) for doc in DOCS
             for m in re.finditer(r"(rayflavor-[a-z-]+)/(\d+)", doc.read_text())]
    assert any(n == "rayflavor-scan" for _, n, _ in named)
    wrong = [f"{d}: {n}/{v} (code: {sorted(code.get(n, ()))})" for d, n, v in named if v not in code.get(n, set())]
    assert not wrong, "\n".join(wrong)
    # a format the code defines once is named with exactly that version
    assert code["rayflavor-scan"] == {2}


def _written_names() -> list[re.Pattern]:
    """The file and directory names the code writes: string constants and f-strings (a formatted
    field matches any text), as patterns."""
    pats = set()
    for path in (ROOT / "rayflavor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and 2 < len(node.value) < 80:
                pats.add(re.escape(node.value))
            elif isinstance(node, ast.JoinedStr):
                parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values]
                pats.add("".join(parts))
    return [re.compile(p) for p in pats]


def _layout_paths() -> list[tuple[str, str]]:
    out = []
    for doc in CURRENT:
        for line in doc.read_text().splitlines():
            m = re.match(r"^((?:OUT|RUN)/\S+)", line)
            if m:
                out.append((doc.name, m.group(1)))
    return out


def test_every_path_of_the_output_layouts_is_written_by_the_code():
    paths = _layout_paths()
    assert any(p == "RUN/teacher/reference.parquet" for _, p in paths)
    assert any(p.startswith("RUN/networks/taught/") for _, p in paths)
    names = _written_names()
    missing = []
    for doc, path in paths:
        for part in path.split("/")[1:]:
            if re.fullmatch(r"<[^>]+>|X+", part):
                continue  # a placeholder: any name
            sample = re.sub(r"<[^>]+>", "x1", part).replace("XXXX", "0000").replace("*", "x")
            if not any(p.fullmatch(sample) or (len(p.pattern) > 4 and sample.startswith(p.pattern.replace("\\", "")))
                       for p in names):
                missing.append(f"{doc}: {path} ({part})")
    assert not missing, "layout paths the code does not write:\n" + "\n".join(missing)
