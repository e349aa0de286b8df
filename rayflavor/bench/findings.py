"""The FN paper's headline findings as recipes: which scan shows each, and how to measure it.

Each :class:`Finding` names the paper's statement (arXiv:2606.20000, secs. IV-V), the scan that
reproduces it (:data:`SCANS`: a ``rayflavor scan`` with the settings file ``recipes/<scan>.toml``)
and the models that demonstrate it (a polars predicate on the valid models).  A recipe may steer
its islands to the finding's corner of model space with a target (``[island] targets`` in its
file, :mod:`rayflavor.physics.targets`): the two m_ee < 1e-4 eV scans do, up-leading and
down-leading alike, so that the contrast between the regimes is measured with the same effort;
the table names each row's target (:func:`recipe_targets`).
:func:`measure` reads one finished scan and reports, for a finding: how many valid models it
holds, how many show the finding (unique charge assignments and distinct light textures), the
island-time to the first such model, and both counts per core-hour of the scan's busy time.
:func:`run_findings` (``rayflavor bench findings``) runs the scans and prints the table;
``docs/findings.md`` records the runs, its table between the markers :data:`DOCS_START` and
:data:`DOCS_END` rewritten by :func:`rewrite_docs`.

Units: masses in eV, times in seconds of island compute (from the island's first start),
core-hours = the islands' busy wall time summed.

>>> sorted({f.scan for f in FINDINGS}) == sorted(SCANS)
True
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rayflavor.analysis.discovery import IslandTimes, island_times
from rayflavor.physics import fn
from rayflavor.physics import targets as fn_targets

#: the scans of the recipes, each with its settings file ``recipes/<scan>.toml`` (the ``rayflavor scan
#: --config`` settings besides islands, time limit, seed and output: the ordering, regime, maximal
#: exponent or mass window of the finding, 1000 restarts so that a stalled island keeps searching until
#: the time limit, and a target of 200 models that stops an island once it has shown the finding often
#: enough; the ``*-small-mee`` scans also carry the target m_ee < 1e-4 eV)
SCANS: tuple[str, ...] = ("no-up", "io-up", "no-down", "io-down", "no-up-small-mee", "no-down-small-mee",
                          "max-exponent-3", "masses-10", "masses-6")
RECIPES = Path(__file__).with_name("recipes")
#: the lines of a Markdown file between which :func:`rewrite_docs` writes the table
DOCS_START = "<!-- findings-table:start -->"
DOCS_END = "<!-- findings-table:end -->"


def recipe_targets(scan: str) -> tuple[str, ...]:
    """The targets of recipe ``scan`` (``[island] targets`` of its file), canonically spelled; () for none."""
    with open(RECIPES / f"{scan}.toml", "rb") as f:
        texts = tomllib.load(f).get("island", {}).get("targets", [])
    return tuple(t.text for t in fn_targets.parse_all(texts))


#: m_ee [eV] from which an IO model counts as "larger m_ee": the lower edge of the 3 sigma IO band
#: at m_lightest -> 0 (about 0.015 eV with NuFIT 6.0), the reach of the next 0vbb experiments.
IO_LARGE_MEE = 0.015
#: "very small m_ee" of the up-leading NO models (FN paper sec. IV)
NO_SMALL_MEE = 1e-4


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str  # the paper's statement
    scan: str  # a key of SCANS
    shows: str  # what the selected models are
    select: Callable[[], pl.Expr]  # the models that show it (columns of models.parquet + fn_columns)


FINDINGS: tuple[Finding, ...] = (
    Finding("no-up", "normal ordering realised, up-leading", "no-up", "NO models",
            lambda: pl.col("ordering") == "NO"),
    Finding("io-up", "inverted ordering realised, up-leading", "io-up", "IO models",
            lambda: pl.col("ordering") == "IO"),
    Finding("no-down", "normal ordering realised, down-leading", "no-down", "NO models",
            lambda: pl.col("ordering") == "NO"),
    Finding("io-down", "inverted ordering realised, down-leading", "io-down", "IO models",
            lambda: pl.col("ordering") == "IO"),
    Finding("no-up-small-mee", "up-leading NO models with m_ee < 1e-4 eV (hard in the down-leading regime)",
            "no-up-small-mee", f"NO, m_ee < {NO_SMALL_MEE:g} eV",
            lambda: (pl.col("ordering") == "NO") & (pl.col("m_ee") < NO_SMALL_MEE)),
    Finding("no-down-small-mee", "(contrast) down-leading NO models with m_ee < 1e-4 eV, same target and effort",
            "no-down-small-mee", f"NO, m_ee < {NO_SMALL_MEE:g} eV",
            lambda: (pl.col("ordering") == "NO") & (pl.col("m_ee") < NO_SMALL_MEE)),
    Finding("io-down-large-mee", "IO models with larger m_ee in the down-leading regime", "io-down",
            f"IO, m_ee >= {IO_LARGE_MEE:g} eV", lambda: (pl.col("ordering") == "IO") & (pl.col("m_ee") >= IO_LARGE_MEE)),
    Finding("io-up-large-mee", "(contrast) such IO models are almost absent up-leading", "io-up",
            f"IO, m_ee >= {IO_LARGE_MEE:g} eV", lambda: (pl.col("ordering") == "IO") & (pl.col("m_ee") >= IO_LARGE_MEE)),
    Finding("max-exponent-3", "minimal models with maximal flavon exponent <= 3", "max-exponent-3",
            "max exponent <= 3", lambda: pl.col("max_exponent") <= 3),
    Finding("masses-10", "every charged-fermion mass within 10%", "masses-10",
            "max mass error <= 10%", lambda: pl.col("max_mass_error") <= 0.10),
    Finding("masses-6", "every charged-fermion mass within 6%", "masses-6",
            "max mass error <= 6%", lambda: pl.col("max_mass_error") <= 0.06),
)


def scan_command(scan: str, *, islands: int, time_limit: str, seed: int, out: str) -> list[str]:
    """The ``rayflavor scan`` command line of recipe ``scan`` (argv without the program)."""
    return ["scan", "--islands", str(islands), "--time-limit", time_limit, "--seed", str(seed),
            "--config", str(RECIPES / f"{scan}.toml"), "--no-live", "--out", out]


def _selected(frame: pl.DataFrame, finding: Finding, data) -> pl.DataFrame:
    from rayflavor.analysis.summary import fn_columns

    return fn_columns(frame.lazy(), data).filter(finding.select()).collect()


#: the raw columns the selections and fn_columns need
_NEEDED = ("ordering", "m_ee", "max_exponent", "eps_u_abs", "eps_d_abs", *fn.MASSES)


@dataclass(frozen=True)
class ScanRecord:
    """What the findings read from one finished scan, read once: the deduplicated models and the
    committed rows with their island-times (:func:`rayflavor.analysis.discovery.island_times`)."""

    models: pl.DataFrame
    times: IslandTimes


def read_scan(out) -> ScanRecord:
    """The :class:`ScanRecord` of the finished scan at ``out`` (a Location); ValueError otherwise."""
    rec = island_times(out, list(_NEEDED))
    if not (out / "models.parquet").exists() or rec is None:
        raise ValueError(f"{out.uri}: not a finished scan (no models.parquet or island checkpoints)")
    return ScanRecord(pl.read_parquet((out / "models.parquet").read_bytes()), rec)


def measure(scan: ScanRecord, finding: Finding, data) -> dict:
    """The numbers of ``finding`` in a finished scan (:func:`read_scan`): valid models, selected
    models (unique charge assignments) and their light textures, per core-hour of the islands'
    busy time, the island-time to the first selected model (earliest over islands, and per
    island), the selected models' m_ee quartiles [eV], and the targets the finding's recipe scan
    steered to (:func:`recipe_targets`)."""
    models, rec = scan.models, scan.times
    sel = _selected(models, finding, data)
    hours = sum(rec.busy.values()) / 3600.0
    charges = sel.select(fn.CHARGES).to_numpy().astype(np.int64) if sel.height else np.empty((0, 18), np.int64)
    light = len(np.unique(fn.light_textures(charges), axis=0)) if len(charges) else 0
    # a scan without a committed row has no model columns in its record (a short targeted scan may find none)
    timed = _selected(rec.models, finding, data) if rec.models.height else rec.models
    first = timed.group_by("island").agg(pl.col("island_seconds").min()).sort("island")
    mee = [float(sel["m_ee"].quantile(q, "linear")) for q in (0.25, 0.5, 0.75)] if sel.height else [None] * 3
    return {
        "finding": finding.key, "claim": finding.claim, "scan": finding.scan, "shows": finding.shows,
        "targets": list(recipe_targets(finding.scan)),
        "valid": models.height, "selected": sel.height, "light": light,
        "islands": len(rec.busy), "islands_with": first.height, "core_hours": hours,
        "first_s": float(first["island_seconds"].min()) if first.height else None,
        "first_per_island_s": [round(float(v), 1) for v in first["island_seconds"]],
        "per_core_hour": sel.height / hours if hours else 0.0,
        "light_per_core_hour": light / hours if hours else 0.0,
        "m_ee_quartiles": mee,
        "m_ee_range": [float(sel["m_ee"].min()), float(sel["m_ee"].max())] if sel.height else [None, None],
    }


def format_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`measure` rows; the ``target`` column names the targets a row's
    scan was steered to ("—": none, a plain scan)."""
    def g(v, fmt):
        return "—" if v is None else format(v, fmt)

    head = ("| finding (FN paper) | scan | target | shown by | valid | such models | light textures | first such model "
            "(island-s) | per core-hour (models / light textures) | m_ee quartiles [eV] |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        q = r["m_ee_quartiles"]
        mee = "—" if q[0] is None else f"{q[0]:.2g} / {q[1]:.2g} / {q[2]:.2g}"
        first = "none" if r["first_s"] is None else f"{r['first_s']:.0f} ({r['islands_with']}/{r['islands']} islands)"
        target = ", ".join(f"`{t}`" for t in r.get("targets", ())) or "—"
        lines.append(f"| {r['claim']} | {r['scan']} | {target} | {r['shows']} | {r['valid']} | {r['selected']} | {r['light']} | "
                     f"{first} | {g(r['per_core_hour'], '.3g')} / {g(r['light_per_core_hour'], '.3g')} | {mee} |")
    return "\n".join(lines)


def findings_figure(models: dict[str, pl.DataFrame], data, path) -> Path:
    """The FN paper's (m_lightest, m_ee) plane with the models of every recipe scan, one colour per
    scan, over the 3 sigma allowed bands; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rayflavor.analysis.figures import A4_WIDTH, _mee_frame, mee_bands

    fig, ax = plt.subplots(figsize=(A4_WIDTH, 0.75 * A4_WIDTH))
    _mee_frame(ax, data, mee_bands(data))
    marks = {"no-up": "o", "no-down": "s", "io-up": "^", "io-down": "v"}
    for k, (name, df) in enumerate(models.items()):
        if df.height:
            ax.scatter(df["m_lightest"], df["m_ee"], s=7, marker=marks.get(name, "."), color=f"C{k}",
                       label=f"{name} ({df.height})", alpha=0.8)
    ax.axhline(NO_SMALL_MEE, color="grey", lw=0.8, ls=":")
    ax.axhline(IO_LARGE_MEE, color="grey", lw=0.8, ls=":")
    ax.set_title("the FN paper's findings: models of each recipe scan")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


class RecipeError(RuntimeError):
    """A recipe scan failed or a finished scan cannot be read (one line for the user)."""


def scan_status(sub) -> str | None:
    """The ``status`` of the scan at ``sub`` (a storage Location) as its ``scan.json`` records it
    (``"finished"``, ``"interrupted"``, ...), None when it has not started; and "finished" only
    with its ``models.parquet`` written."""
    state = (sub / "scan.json").read_json().get("status") if (sub / "scan.json").exists() else None
    return "finished, no models.parquet" if state == "finished" and not (sub / "models.parquet").exists() else state


def run_recipe(sub, name: str, *, islands: int, time_limit: str, seed: int, address: str | None, dry_run: bool,
               echo: Callable[[str], object] = print, label: str | None = None) -> None:
    """Run recipe scan ``name`` into ``sub`` (a storage Location) as one ``rayflavor scan`` child
    process, printing the command first: :func:`scan_command` exactly, or ``scan --resume`` for a scan
    that was interrupted; a scan that finished before is kept.  ``dry_run``: print the command only.
    ``label`` names the scan in the messages (default ``name``).  RecipeError if the scan fails."""
    label = label or name
    cmd = scan_command(name, islands=islands, time_limit=time_limit, seed=seed, out=sub.uri)
    if address:
        cmd += ["--address", address]
    state = scan_status(sub)
    if state == "finished":
        echo(f"{label}: finished before, kept ({sub.uri})")
        return
    if state is not None:
        cmd = ["scan", "--resume", "--out", sub.uri, *(["--address", address] if address else [])]
    echo("$ rayflavor " + " ".join(cmd))
    if dry_run:
        return
    t = time.perf_counter()
    rc = subprocess.call([sys.executable, "-m", "rayflavor.cli.main", *cmd])
    if rc != 0:
        raise RecipeError(f"recipe scan {label} failed (exit {rc}); rerun the same command to resume it")
    echo(f"{label}: {time.perf_counter() - t:.0f} s wall")


def run_findings(loc, scans: list[str], data, *, islands: int, time_limit: str, seed: int, address: str | None,
                 dry_run: bool, echo: Callable[[str], object] = print) -> str | None:
    """Run each recipe scan of ``scans`` into ``loc / <scan>`` (a storage Location), then measure
    every finding they hold and write ``findings.md``, ``findings.json`` and ``findings.png`` into
    ``loc``; returns the table (None for a dry run).

    Each recipe is one ``rayflavor scan`` command (:func:`run_recipe`), run as a child process
    exactly as printed; a scan that finished before is kept and one that was interrupted is
    resumed, so a stopped run can be repeated.  ``dry_run``: print the commands only.
    """
    for name in scans:
        run_recipe(loc / name, name, islands=islands, time_limit=time_limit, seed=seed, address=address,
                   dry_run=dry_run, echo=echo)
    if dry_run:
        return None
    try:
        record = {name: read_scan(loc / name) for name in scans}  # each scan read once
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    rows = [measure(record[f.scan], f, data) for f in FINDINGS if f.scan in scans]
    table = format_table(rows)
    echo(table)
    (loc / "findings.md").write_bytes((table + "\n").encode())
    (loc / "findings.json").write_json({"rows": rows, "islands": islands, "time_limit": time_limit, "seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        png = findings_figure({name: r.models for name, r in record.items()}, data, Path(tmp) / "findings.png")
        (loc / "findings.png").write_bytes(png.read_bytes())
    echo(f"table: {(loc / 'findings.md').uri}\nfigure: {(loc / 'findings.png').uri}")
    return table


def _marker_lines(text: str) -> tuple[int, int]:
    """Indices of the lines :data:`DOCS_START` and :data:`DOCS_END` (each exactly once, start first)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == DOCS_START]
    ends = [i for i, line in enumerate(lines) if line.strip() == DOCS_END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        raise ValueError(f"needs the line {DOCS_START} and, after it, the line {DOCS_END}, once each "
                         f"(found {len(starts)} and {len(ends)})")
    return starts[0], ends[0]


def check_docs(path) -> None:
    """ValueError (one line) unless the file at ``path`` holds the table markers, once each, in order."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        _marker_lines(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with the lines strictly between the marker lines replaced by ``block``, set off by
    one blank line on each side (Markdown then renders a table right after a marker); everything
    else byte for byte the same.  ValueError if the markers are missing."""
    lines = text.splitlines(keepends=True)
    start, end = _marker_lines(text)
    return "".join(lines[: start + 1]) + "\n" + block.strip("\n") + "\n\n" + "".join(lines[end:])


def git_commit() -> str:
    """The short hash of the commit checked out where this code lives (``git rev-parse --short
    HEAD``), or ``"unknown"`` (no git, not a checkout)."""
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                           text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def docs_block(table: str, command: str, *, date: str, commit: str, verdict: str | None = None) -> str:
    """What :func:`rewrite_docs` puts between the markers: the table, one line naming the command,
    the date and the commit, and the contrast's verdict when one was run."""
    lines = [table, "", f"*Table written by `{command}` on {date}, code {commit}.*"]
    if verdict:
        lines += ["", verdict]
    return "\n".join(lines)


def rewrite_docs(path, block: str) -> None:
    """Rewrite the text between the markers of the Markdown file ``path`` with ``block``
    (:func:`docs_block`); ValueError (one line) if the file lacks the markers."""
    path = Path(path)
    check_docs(path)
    path.write_text(replace_between_markers(path.read_text(), block))


__all__ = ["DOCS_END", "DOCS_START", "FINDINGS", "Finding", "IO_LARGE_MEE", "NO_SMALL_MEE", "RECIPES", "RecipeError",
           "SCANS", "ScanRecord", "check_docs", "docs_block", "findings_figure", "format_table", "git_commit", "measure",
           "read_scan", "recipe_targets", "replace_between_markers", "rewrite_docs", "run_findings", "run_recipe",
           "scan_command", "scan_status"]
