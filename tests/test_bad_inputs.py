"""Bad inputs and faults, one row each: what a user gives, the exit code, the one line that
names the problem, and the state of the output afterwards.

Every row runs a ``rayflavor`` command (click's CliRunner, in-process, Ray-free) in a fresh
temporary directory ``{tmp}`` that its ``setup`` prepares, under ``umask 022``.  A row:

    Case("id", ("evaluate", "--model", "fn", "{fn}", "-o", "{tmp}/o.parquet"),
         exit=2, says="fragment of the Error: line", after="no output", setup=some_setup)

* ``args``: ``{tmp}``, ``{fn}``, ``{seesaw}`` (the shipped example inputs) are filled in;
* ``exit``: 2 for bad input (one ``Error:`` line, never a traceback), 0 when the command must
  cope (e.g. a row that overflows becomes NaN and invalid);
* ``says``: a fragment of the output (stdout + stderr);
* ``after``: a key of :data:`AFTER`, a check of what is on disk afterwards;
* ``setup(tmp)``: writes the files the row needs (see the ``_input``/``_data_file`` helpers).

A row that needs another process (a real SIGKILL, a Ray cluster) sets ``runner="subprocess"``
(``python -m rayflavor.cli.main ARGS`` with this checkout on PYTHONPATH).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rayflavor import examples
from rayflavor.cli.main import cli
from rayflavor.physics import fn, seesaw

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    exit: int
    says: str
    after: str = "no output"
    setup: Callable[[Path], None] | None = None
    runner: str = "cli"  # or "subprocess"
    skip: str | None = None  # reason to skip (e.g. a check root cannot fail)


# ------------------------------------------------------------------------------ input builders


def _fn_rows(n=4, seed=0) -> dict[str, np.ndarray]:
    x = fn.random_parameters(n, np.random.default_rng(seed), max_charge=3, log10_lambda_range=(12.0, 15.0))
    return {k: x[:, i] for i, k in enumerate(fn.PARAMETERS)}


def _seesaw_rows(n=4, seed=0) -> dict[str, np.ndarray]:
    x = seesaw.sample_prior(n, np.random.default_rng(seed))
    return {k: x[:, i] for i, k in enumerate(seesaw.PARAMETERS)}


def _input(model: str, name: str = "in.parquet", **changes):
    """setup: write ``{tmp}/name`` of the model's rows with ``changes`` ({column: callable(col) -> col}
    or {column: array}); ``column=None`` drops it."""
    def setup(tmp: Path) -> None:
        cols = _fn_rows() if model == "fn" else _seesaw_rows()
        for k, v in changes.items():
            if v is None:
                cols.pop(k)
            elif isinstance(v, pa.Array):  # e.g. with nulls, which numpy cannot hold
                cols[k] = v
            else:
                cols[k] = v(cols[k].copy()) if callable(v) else np.asarray(v)
        pq.write_table(pa.table(cols), tmp / name)
    return setup


def _at(row, value):
    def f(col):
        col = col.astype(np.float64)
        col[row] = value
        return col
    return f


def _data_file(shipped: str, old: str, new: str, name: str = "data.toml"):
    """setup: ``{tmp}/name`` = a shipped data file with ``old`` replaced by ``new`` (must occur)."""
    def setup(tmp: Path) -> None:
        text = resources.files("rayflavor.physics").joinpath("data", f"{shipped}.toml").read_text()
        assert old in text, old
        (tmp / name).write_text(text.replace(old, new, 1))
    return setup


def _write(name: str, content: bytes | str):
    def setup(tmp: Path) -> None:
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def _both(*setups):
    def setup(tmp: Path) -> None:
        for s in setups:
            s(tmp)
    return setup


def _fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "o.parquet")


def _link_to_dev_null(tmp: Path) -> None:
    os.symlink("/dev/null", tmp / "o.parquet")


def _chmod_000(tmp: Path) -> None:
    _input("seesaw")(tmp)
    os.chmod(tmp / "in.parquet", 0)


def _killed_writer(tmp: Path) -> None:
    """A real writer of this host SIGKILLed mid-write (its temporary stays), plus an hour-old
    temporary of the older mkstemp naming; the next write to o.parquet must remove both."""
    code = ("import os, signal, sys; from rayflavor.storage.tables import temporary_path; "
            "p = temporary_path(sys.argv[1]); open(p, 'wb').write(b'x' * 2**20); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp / "o.parquet")], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tmp.glob(".o.parquet.*.tmp"))) == 1
    old = tmp / ".o.parquet.k3j5x9q2.tmp"
    old.write_bytes(b"y" * 1000)
    os.utime(old, (time.time() - 7200, time.time() - 7200))


def _evaluated_seesaw(tmp: Path, solutions: bool = True) -> None:
    """{tmp}/ev.parquet: `rayflavor evaluate` of the shipped seesaw example (8 rows, 1 solution;
    none with ``solutions=False``, which keeps analyze from drawing: figures cost seconds)."""
    res = CliRunner().invoke(cli, ["evaluate", "--model", "seesaw", str(examples.path("seesaw")), "-o", str(tmp / "ev.parquet")])
    assert res.exit_code == 0, res.output
    if not solutions:
        t = pq.read_table(tmp / "ev.parquet")
        t = t.set_column(t.schema.get_field_index("solution"), "solution", pa.array([False] * t.num_rows))
        pq.write_table(t, tmp / "ev.parquet")


def _evaluated_fn_none_valid(tmp: Path) -> None:
    res = CliRunner().invoke(cli, ["evaluate", "--model", "fn", str(examples.path("fn")), "-o", str(tmp / "fv.parquet")])
    assert res.exit_code == 0, res.output
    t = pq.read_table(tmp / "fv.parquet")
    t = t.set_column(t.schema.get_field_index("valid"), "valid", pa.array([False] * t.num_rows))
    pq.write_table(t, tmp / "fv.parquet")


def _scan_dir(scan_json: str | None, solutions: bool = True):
    """{tmp}/scan: an evaluated seesaw file as solutions.parquet and a scan.json."""
    def setup(tmp: Path) -> None:
        _evaluated_seesaw(tmp, solutions)
        (tmp / "scan").mkdir()
        os.replace(tmp / "ev.parquet", tmp / "scan" / "solutions.parquet")
        if scan_json is not None:
            (tmp / "scan" / "scan.json").write_text(scan_json.replace("{tmp}", str(tmp)))
    return setup


# ------------------------------------------------------------------------------ after-checks


def _no_output(tmp: Path) -> None:
    assert not (tmp / "o.parquet").exists() and not (tmp / "o.parquet").is_symlink()
    assert not list(tmp.glob(".o.parquet.*"))  # no temporary either


def _output_rows(tmp: Path) -> pa.Table:
    t = pq.read_table(tmp / "o.parquet")
    assert stat.S_IMODE(os.stat(tmp / "o.parquet").st_mode) == 0o644  # umask 022, not mkstemp's 0600
    assert not list(tmp.glob(".o.parquet.*"))
    return t


def _bad_rows_nan(tmp: Path) -> None:
    """Rows 1 and 2 overflow (NaN observables, invalid); rows 0 and 3 are evaluated as usual."""
    t = _output_rows(tmp).to_pydict()
    for r in (1, 2):
        assert np.isnan(t["m_u"][r]) and np.isnan(t["pmns_theta12"][r]) and t["valid"][r] is False
    for r in (0, 3):
        assert np.isfinite(t["m_u"][r]) and np.isfinite(t["nu_m3"][r])


def _massless_row_nan(tmp: Path) -> None:
    t = _output_rows(tmp).to_pydict()
    for c in ("m1", "abs_u_e1", "delta_cp", "j_cp", "chi2"):
        assert np.isnan(t[c][1]), c
    assert t["valid"][1] is False and t["solution"][1] is False and np.isfinite(t["m1"][0])


def _device_untouched(tmp: Path) -> None:
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _fifo_untouched(tmp: Path) -> None:
    assert stat.S_ISFIFO(os.lstat(tmp / "o.parquet").st_mode)
    assert not list(tmp.glob(".o.parquet.*"))


def _link_untouched(tmp: Path) -> None:
    assert os.path.islink(tmp / "o.parquet") and os.readlink(tmp / "o.parquet") == "/dev/null"
    _device_untouched(tmp)


def _temporaries_cleaned(tmp: Path) -> None:
    _output_rows(tmp)
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".")) == []


def _output_replaced_input(tmp: Path) -> None:
    t = pq.read_table(tmp / "in.parquet")
    assert "valid" in t.column_names and "m1" in t.column_names


def _extra_columns_kept(tmp: Path) -> None:
    t = _output_rows(tmp)
    assert t.schema.field("when").type == pa.timestamp("us") and t.column("tags").to_pylist()[0] == [1, 2]


def _nested_output(tmp: Path) -> None:
    assert pq.read_table(tmp / "new" / "dir" / "o.parquet").num_rows == 4


def _no_analysis(tmp: Path) -> None:
    assert not list(tmp.rglob("analysis"))


def _analysis_written(tmp: Path) -> None:
    figs = list(tmp.rglob("analysis/*.png"))
    assert figs and not list(tmp.rglob("analysis/.*"))


# ------------------------------------------------------------------------------ scan rows' setups and checks


def _file(name: str, text: str):
    """setup: ``{tmp}/name`` with ``text``."""
    def setup(tmp: Path) -> None:
        (tmp / name).write_text(text)
    return setup


def _stored_scan(tmp: Path) -> None:
    """{tmp}/scan: the scan.json of a stopped scan (settings stored whole)."""
    from rayflavor.configfile import to_mapping
    from rayflavor.orchestration.scan_settings import ScanSettings

    (tmp / "scan").mkdir()
    (tmp / "scan" / "scan.json").write_text(json.dumps({"status": "interrupted", "settings": to_mapping(ScanSettings(seed=1))}))


def _running_scan(tmp: Path) -> None:
    """{tmp}/scan: the lease of a scan running in another live process of this host (pid 1)."""
    (tmp / "scan").mkdir()
    (tmp / "scan" / "LOCK.json").write_text(json.dumps({
        "owner": "rayflavor scan", "host": socket.gethostname(), "pid": 1, "token": "other",
        "acquired_at": time.time(), "expires_at": time.time() + 600}))


def _no_scan(tmp: Path) -> None:
    assert not (tmp / "scan").exists()


def _stored_scan_untouched(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "scan").iterdir()) == ["scan.json"]
    assert json.loads((tmp / "scan" / "scan.json").read_text())["status"] == "interrupted"


def _lease_untouched(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "scan").iterdir()) == ["LOCK.json"]
    assert json.loads((tmp / "scan" / "LOCK.json").read_text())["token"] == "other"


AFTER: dict[str, Callable[[Path], None]] = {
    "no scan written": _no_scan,
    "stored scan untouched": _stored_scan_untouched,
    "running scan's lease untouched": _lease_untouched,
    "no output": _no_output,
    "output written": lambda tmp: _output_rows(tmp),
    "overflowing rows NaN, others evaluated": _bad_rows_nan,
    "massless row NaN and invalid": _massless_row_nan,
    "device untouched": _device_untouched,
    "FIFO untouched": _fifo_untouched,
    "link and device untouched": _link_untouched,
    "temporaries of the killed writer removed": _temporaries_cleaned,
    "input replaced by its evaluation": _output_replaced_input,
    "nested directories created": _nested_output,
    "extra columns kept": _extra_columns_kept,
    "no analysis written": _no_analysis,
    "analysis written": _analysis_written,
    "nothing checked": lambda tmp: None,
}

# --- diffusion helpers (setups and after-checks of the diffusion cases; RUN is {tmp}/run)


def _diffusion_dataset(tmp: Path) -> None:
    """A finished 2-shard dataset of 40 points in {tmp}/run (written without Ray)."""
    from rayflavor.methods.diffusion.data import dataset_shard
    from rayflavor.storage import runs

    d = runs.dataset_dir(tmp / "run")
    runs.write_json({"n": 40, "seed": 0, "shards": 2, "data": SK, "ordering": "NO", "val_fraction": 0.1},
                    d / "manifest.json")
    for s in range(2):
        runs.write_table(dataset_shard(20, 0, s), runs.part_path(d, s))


def _diffusion_network(tmp: Path) -> None:
    """The dataset of :func:`_diffusion_dataset` and an untrained pre-network."""
    from rayflavor.methods.diffusion import training
    from rayflavor.storage import runs

    _diffusion_dataset(tmp)
    g = seesaw.sample_prior(50, np.random.default_rng(0))
    lab = seesaw.labels(seesaw.evaluate(g))
    ok = np.isfinite(lab).all(1)
    training.save(runs.network_path(tmp / "run", "pre"),
                  training.new_state(training.Normalizer.fit(g[ok], lab[ok], "paper"), total_steps=1), with_optimizer=False)


def _diffusion_truncated_part(tmp: Path) -> None:
    """A dataset whose part 1 lost its tail (e.g. a full disk)."""
    _diffusion_dataset(tmp)
    p = tmp / "run" / "dataset" / "part-00001.parquet"
    p.write_bytes(p.read_bytes()[:200])


def _diffusion_short_part(tmp: Path) -> None:
    """A dataset whose part 0 holds fewer rows than its manifest says."""
    from rayflavor.methods.diffusion.data import dataset_shard
    from rayflavor.storage import runs

    _diffusion_dataset(tmp)
    runs.write_table(dataset_shard(5, 0, 0), tmp / "run" / "dataset" / "part-00000.parquet")


def _diffusion_locked(setup: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    """``setup``, then a live lease of another process (pid 1 on this host) on RUN."""
    def f(tmp: Path) -> None:
        import json
        import socket

        if setup is not None:
            setup(tmp)
        (tmp / "run").mkdir(exist_ok=True)
        (tmp / "run" / "LOCK.json").write_text(json.dumps({
            "owner": "rayflavor diffusion run", "host": socket.gethostname(), "pid": 1, "token": "other",
            "acquired_at": time.time(), "expires_at": time.time() + 600}))
    return f


def _no_run(tmp: Path) -> None:
    assert not (tmp / "run").exists()  # nothing written: the corrected command is not blocked
    assert not any(p.name.endswith(":") for p in Path.cwd().iterdir())  # no local "s3:"-style directory


def _no_samples(tmp: Path) -> None:
    assert not (tmp / "run" / "samples").exists() and not (tmp / "run" / "LOCK.json").exists()


def _no_network(tmp: Path) -> None:
    assert not (tmp / "run" / "networks").exists() and not (tmp / "run" / "LOCK.json").exists()


def _lock_kept(tmp: Path) -> None:
    import json

    assert json.loads((tmp / "run" / "LOCK.json").read_text())["token"] == "other"


AFTER.update({
    "no run directory": _no_run,
    "no sample set, lease released": _no_samples,
    "no network, lease released": _no_network,
    "the other process's lease kept": _lock_kept,
})

# ------------------------------------------------------------------------------ the table

EV_SEESAW = ("evaluate", "--model", "seesaw", "{tmp}/in.parquet", "-o", "{tmp}/o.parquet")
EV_FN = ("evaluate", "--model", "fn", "{tmp}/in.parquet", "-o", "{tmp}/o.parquet")
EV_EXAMPLE = ("evaluate", "--model", "seesaw", "{seesaw}", "-o", "{tmp}/o.parquet")
EV_FN_EXAMPLE = ("evaluate", "--model", "fn", "{fn}", "-o", "{tmp}/o.parquet")
SK, PDG = "nufit-6.0-sk", "nufit-6.0+pdg-2024"

CASES: list[Case] = [
    # --- evaluate: numerical faults are per row, never a crash
    Case("fn-huge-charges", EV_FN, 0, "evaluated 4 row(s), 0 valid, 2 with NaN observables", "overflowing rows NaN, others evaluated",
         _input("fn", q_N1=_at(1, 300), q_L1=_at(2, -1000))),
    Case("fn-absurd-charge", EV_FN, 0, "evaluated 4 row(s)", "output written", _input("fn", q_Q1=_at(1, 3e9))),
    Case("fn-huge-lambda", EV_FN, 0, "evaluated 4 row(s)", "output written",
         _input("fn", log10_lambda_gev=_at(1, 1e300))),
    Case("seesaw-y-zero", EV_SEESAW, 0, "1 with NaN observables", "massless row NaN and invalid",
         _input("seesaw", **{k: _at(1, 0.0) for k in seesaw.PARAMETERS[:18]})),
    Case("seesaw-huge-scale", EV_SEESAW, 0, "evaluated 4 row(s)", "output written",
         _input("seesaw", log10_h2_over_m3_ev=_at(2, 400.0))),
    Case("seesaw-tiny-ratio", EV_SEESAW, 0, "evaluated 4 row(s)", "output written",
         _input("seesaw", m1_over_m3=_at(0, 1e-300))),
    # --- evaluate: where the output goes
    Case("o-dev-full", EV_EXAMPLE[:-1] + ("/dev/full",), 2, "/dev/full: is a character device", "device untouched"),
    Case("o-fifo", EV_EXAMPLE, 2, "is a FIFO, not a regular file", "FIFO untouched", _fifo),
    Case("o-symlink-to-device", EV_EXAMPLE, 2, "is a character device", "link and device untouched", _link_to_dev_null),
    Case("o-directory", EV_EXAMPLE[:-1] + ("{tmp}",), 2, "is a directory", "no output"),
    Case("o-under-a-file", EV_EXAMPLE[:-1] + ("{tmp}/f/o.parquet",), 2, "is not a directory", "no output", _write("f", "x")),
    Case("o-killed-writer-leftovers", EV_EXAMPLE, 0, "evaluated 8 row(s)", "temporaries of the killed writer removed",
         _killed_writer),
    Case("o-umask-022", EV_EXAMPLE, 0, "1 valid", "output written"),
    Case("o-new-nested-dirs", ("evaluate", "--model", "seesaw", "{tmp}/in.parquet", "-o", "{tmp}/new/dir/o.parquet"), 0,
         "evaluated 4 row(s)", "nested directories created", _input("seesaw")),
    Case("o-same-as-input", ("evaluate", "--model", "seesaw", "{tmp}/in.parquet", "-o", "{tmp}/in.parquet"), 0,
         "evaluated 4 row(s)", "input replaced by its evaluation", _input("seesaw")),
    # --- evaluate: options
    Case("mass-tolerance-nan", EV_FN_EXAMPLE + ("--mass-tolerance", "nan"), 2, "finite number in (0, 1), not nan"),
    Case("mass-tolerance-inf", EV_FN_EXAMPLE + ("--mass-tolerance", "inf"), 2, "finite number in (0, 1), not inf"),
    Case("mass-tolerance-1.5", EV_FN_EXAMPLE + ("--mass-tolerance", "1.5"), 2, "in (0, 1), not 1.5"),
    Case("mass-tolerance-0", EV_FN_EXAMPLE + ("--mass-tolerance", "0"), 2, "in (0, 1), not 0.0"),
    Case("mass-tolerance-text", EV_FN_EXAMPLE + ("--mass-tolerance", "wide"), 2, "is not a valid float"),
    Case("ordering-unknown", EV_EXAMPLE + ("--ordering", "XO"), 2, "'XO' is not one of 'NO', 'IO'"),
    Case("model-unknown", ("evaluate", "--model", "mssm", "{seesaw}", "-o", "{tmp}/o.parquet"), 2, "'mssm' is not one of"),
    # --- evaluate: data sets
    Case("seesaw-with-fn-data", EV_EXAMPLE + ("--data", PDG), 2, "--model seesaw cannot use this data set"),
    Case("fn-with-seesaw-data", EV_FN_EXAMPLE + ("--data", SK), 2, "--model fn cannot use this data set"),
    Case("data-unknown-name", EV_EXAMPLE + ("--data", "nufit-9"), 2, "neither a shipped name"),
    Case("data-is-a-directory", EV_EXAMPLE + ("--data", "{tmp}"), 2, "neither a shipped name"),
    Case("data-not-toml", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "cannot be read as TOML", setup=_write("data.toml", "[[[")),
    Case("data-empty-file", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "not a rayflavor-data/1 file", setup=_write("data.toml", "")),
    Case("data-central-nan", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "observable common.abs_u_e3: central = nan",
         setup=_data_file(SK, "central = 0.149", "central = nan")),
    Case("data-central-inf", EV_FN_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "central = inf (must be a finite number)",
         setup=_data_file(PDG, "central = 2.16e-3", "central = inf")),
    Case("data-sigma-zero", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "plus = 0.0 (a 1 sigma error must be > 0)",
         setup=_data_file(SK, "plus = ", "plus = 0.0 #")),
    Case("data-sigma-negative", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "(a 1 sigma error must be > 0)",
         setup=_data_file(SK, "minus = ", "minus = -1.0 #")),
    Case("data-central-outside-range3", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "lies outside range3",
         setup=_data_file(SK, "central = 0.149", "central = 0.9")),
    Case("data-range3-nan", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "range3[1] = nan",
         setup=_data_file(SK, "range3 = [0.142, 0.155]", "range3 = [0.142, nan]")),
    Case("data-range3-reversed", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "is empty",
         setup=_data_file(SK, "range3 = [0.142, 0.155]", "range3 = [0.155, 0.142]")),
    Case("data-range3-text", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "is malformed",
         setup=_data_file(SK, "range3 = [0.142, 0.155]", 'range3 = "wide"')),
    Case("data-mass-central-zero", EV_FN_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "m_u (NO) needs central > 0",
         setup=_data_file(PDG, "central = 2.16e-3", "central = 0.0\nrange3 = [-1.0, 1.0]")),
    Case("data-observables-not-a-table", EV_EXAMPLE + ("--data", "{tmp}/data.toml"), 2, "observables must be a table",
         setup=_write("data.toml", 'format = "rayflavor-data/1"\nobservables = 3\n')),
    # --- evaluate: input files and columns
    Case("input-missing", ("evaluate", "--model", "seesaw", "{tmp}/nope.parquet", "-o", "{tmp}/o.parquet"), 2, "no such file"),
    Case("input-empty-file", EV_SEESAW, 2, "not a readable Parquet file", setup=_write("in.parquet", b"")),
    Case("input-not-parquet", EV_SEESAW, 2, "not a readable Parquet file", setup=_write("in.parquet", "a,b\n1,2\n")),
    Case("input-directory", ("evaluate", "--model", "seesaw", "{tmp}", "-o", "{tmp}/o.parquet"), 2, "is a directory"),
    Case("input-dev-null", ("evaluate", "--model", "seesaw", "/dev/null", "-o", "{tmp}/o.parquet"), 2, "not a regular file"),
    Case("input-unreadable", EV_SEESAW, 2, "Permission denied", setup=_chmod_000,
         skip="root reads a mode-000 file" if IS_ROOT else None),
    Case("input-zero-rows", EV_SEESAW, 2, "has no rows", setup=_input("seesaw", **{k: np.array([], float) for k in seesaw.PARAMETERS})),
    Case("input-no-columns-of-model", EV_FN, 2, "missing parameter column(s): q_Q1", setup=_input("seesaw")),
    Case("column-twice", EV_SEESAW, 2, "column name(s) 'arg_m1' appear more than once",
         setup=lambda tmp: (_input("seesaw")(tmp), pq.write_table(
             pq.read_table(tmp / "in.parquet").append_column("arg_m1", pa.array([1.0] * 4)), tmp / "in.parquet"))),
    Case("columns-of-other-types-pass-through", EV_SEESAW, 0, "evaluated 4 row(s)", "extra columns kept",
         _input("seesaw", when=pa.array([datetime.datetime(2020, 1, 1)] * 4), tags=pa.array([[1, 2], [], [3], [4]]),
                arg_m1=lambda c: c.astype(np.float16))),
    Case("column-list-as-parameter", EV_SEESAW, 2, "column 'arg_m1' has type object",
         setup=_input("seesaw", arg_m1=pa.array([[1.0]] * 4))),
    Case("column-missing", EV_SEESAW, 2, "missing parameter column(s): arg_m2", setup=_input("seesaw", arg_m2=None)),
    Case("column-bool", EV_SEESAW, 2, "column 'arg_m1' has type bool", setup=_input("seesaw", arg_m1=[True, False, True, False])),
    Case("column-text", EV_SEESAW, 2, "column 'arg_m1' has type", setup=_input("seesaw", arg_m1=["a", "b", "c", "d"])),
    Case("column-null", EV_SEESAW, 2, "missing (null) value", setup=_input("seesaw", arg_m1=pa.array([1.0, None, 1.0, 1.0]))),
    Case("value-nan", EV_SEESAW, 2, "column 'y_re_1e' has 1 NaN/infinite value(s), first at row 2",
         setup=_input("seesaw", y_re_1e=_at(2, np.nan))),
    Case("value-inf", EV_FN, 2, "column 'alpha' has 1 NaN/infinite", setup=_input("fn", alpha=_at(0, np.inf))),
    Case("negative-mass-ratio", EV_SEESAW, 2, "column 'm1_over_m3' out of range at row 3", setup=_input("seesaw", m1_over_m3=_at(3, -0.5))),
    Case("zero-mass-ratio", EV_SEESAW, 2, "column 'm2_over_m3' out of range", setup=_input("seesaw", m2_over_m3=_at(0, 0.0))),
    Case("charge-not-integer", EV_FN, 2, "'q_L2' must hold integers", setup=_input("fn", q_L2=_at(1, 1.5))),
    Case("wilson-too-small", EV_FN, 2, "0.3 <= |c| <= 3", setup=_input("fn", c_e_23=_at(0, 0.1))),
    Case("eps-one", EV_FN, 2, "0 < |eps_u| < 1", setup=_input("fn", eps_u_abs=_at(0, 1.0))),
    Case("eps-negative", EV_FN, 2, "0 < |eps_d| < 1", setup=_input("fn", eps_d_abs=_at(0, -0.1))),
    # --- analyze
    Case("analyze-missing", ("analyze", "{tmp}/nope"), 2, "no such file or directory", "no analysis written"),
    Case("analyze-fifo", ("analyze", "{tmp}/o.parquet"), 2, "neither a regular file nor a directory", "no analysis written", _fifo),
    Case("analyze-empty-path", ("analyze", ""), 2, "empty path", "no analysis written"),
    Case("analyze-format-svg", ("analyze", "{tmp}", "--format", "svg"), 2, "'svg' is not one of 'png', 'pdf'", "no analysis written"),
    Case("analyze-empty-dir", ("analyze", "{tmp}"), 2, "no models.parquet, solutions.parquet or island part files", "no analysis written"),
    Case("analyze-parameters-only", ("analyze", "{tmp}/in.parquet"), 2, "holds fn parameters but no observables",
         "no analysis written", _input("fn")),
    Case("analyze-not-parquet", ("analyze", "{tmp}/x.parquet"), 2, "cannot be read as Parquet", "no analysis written",
         _write("x.parquet", "nope")),
    Case("analyze-empty-file", ("analyze", "{tmp}/x.parquet"), 2, "cannot be read as Parquet", "no analysis written",
         _write("x.parquet", b"")),
    Case("analyze-corrupt-part", ("analyze", "{tmp}"), 2, "cannot be read as Parquet", "no analysis written",
         _write("islands/island-0000/part-000000.parquet", "PAR1garbage")),
    Case("analyze-foreign-columns", ("analyze", "{tmp}/x.parquet"), 2, "neither FN (q_Q1 ...) nor seesaw", "no analysis written",
         lambda tmp: pq.write_table(pa.table({"a": [1.0]}), tmp / "x.parquet")),
    Case("analyze-unknown-scheme", ("analyze", "ftp://host/scan"), 2, "unsupported URI scheme 'ftp'", "no analysis written"),
    Case("analyze-s3-no-bucket", ("analyze", "s3://"), 2, "no bucket in the URI", "no analysis written"),
    Case("analyze-out-is-a-file", ("analyze", "{tmp}/ev.parquet", "--out", "{tmp}/ev.parquet"), 2, "exists and is not a directory",
         "no analysis written", _evaluated_seesaw),
    Case("analyze-scan-json-missing-data", ("analyze", "{tmp}/scan"), 2, "neither a shipped name", "no analysis written",
         _scan_dir('{"settings": {"data": "{tmp}/gone.toml"}}')),
    Case("analyze-data-without-bounds", ("analyze", "{tmp}/scan"), 2, "has no [bounds.", "no analysis written",
         _both(_data_file(SK, "[bounds.", "[unused.", "nobounds.toml"),
               _scan_dir('{"config": {"data": "{tmp}/nobounds.toml"}}'))),
    Case("analyze-no-valid-rows", ("analyze", "{tmp}/fv.parquet"), 0, "0 valid models of 8 rows", "no analysis written",
         _evaluated_fn_none_valid),
    Case("analyze-counts-the-solution-flag", ("analyze", "{tmp}/ev.parquet"), 0, ": 0 solutions of 8 rows",
         "no analysis written", lambda tmp: _evaluated_seesaw(tmp, solutions=False)),
    Case("analyze-corrupt-scan-json", ("analyze", "{tmp}/scan"), 0, "scan.json: cannot be read", "no analysis written",
         _scan_dir("{not json", solutions=False)),
    # --- scan cases
    # (Ray-free: every row fails before Ray starts and before OUT is created or touched)
    Case("scan-islands-negative", ("scan", "--islands", "-1", "--out", "{tmp}/scan"), 2, "--islands", "no scan written"),
    Case("scan-regime-unknown", ("scan", "--regime", "sideways", "--out", "{tmp}/scan"), 2, "--regime", "no scan written"),
    Case("scan-data-missing", ("scan", "--data", "{tmp}/none.toml", "--out", "{tmp}/scan"), 2, "neither a shipped name",
         "no scan written"),
    Case("scan-time-limit-not-a-duration", ("scan", "--time-limit", "soon", "--out", "{tmp}/scan"), 2, "not a duration",
         "no scan written"),
    Case("scan-log10-lambda-nan", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "log10_lambda", "no scan written", _write("c.toml", "[island]\nlog10_lambda = nan\n")),
    Case("scan-log10-lambda-huge", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "log10_lambda must be a finite number in [8, 16]", "no scan written", _write("c.toml", "[island]\nlog10_lambda = 1e308\n")),
    Case("scan-mass-tolerance-nan", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "mass_tolerance", "no scan written", _write("c.toml", "[island]\nmass_tolerance = nan\n")),
    Case("scan-mass-tolerance-above-1", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "mass_tolerance must be a finite number in (0, 1), not 1.5", "no scan written",
         _write("c.toml", "[island]\nmass_tolerance = 1.5\n")),
    Case("scan-pop-size-huge", ("scan", "--config", "{tmp}/c.toml", "--time-limit", "10s", "--out", "{tmp}/scan"), 2,
         "pop_size", "no scan written", _write("c.toml", "[island]\npop_size = 1000000\n")),
    # integers are integers, and bounded, in a config file as on the command line
    Case("scan-config-islands-float", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "settings.islands: expected an integer, got 2.0", "no scan written", _write("c.toml", "islands = 2.0\n")),
    Case("scan-config-islands-1e300", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "settings.islands: expected an integer, got 1e+300", "no scan written", _write("c.toml", "islands = 1e300\n")),
    Case("scan-config-max-restarts-1e22", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"),
         2, "settings.max_restarts: expected an integer, got 1e+22", "no scan written",
         _write("c.toml", "max_restarts = 1e22\n")),
    Case("scan-config-islands-huge", ("scan", "--config", "{tmp}/c.toml", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "islands must be an integer in [1, 1000000], not 10000000", "no scan written",
         _write("c.toml", "islands = 10000000\n")),
    Case("scan-islands-huge", ("scan", "--islands", "10000000", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "islands must be an integer in [1, 1000000], not 10000000", "no scan written"),
    Case("scan-seed-2-63", ("scan", "--seed", "9223372036854775808", "--out", "{tmp}/scan"), 2,
         "seed must be an integer in [0, 9223372036854775807]", "no scan written"),
    Case("scan-address-not-an-address", ("scan", "--address", "not an address", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "not a Ray address", "no scan written"),
    Case("scan-address-unreachable", ("scan", "--address", "127.0.0.1:1", "--seed", "1", "--out", "{tmp}/scan"), 2,
         "no Ray head answers", "no scan written"),
    Case("scan-out-unsupported-scheme", ("scan", "--out", "ftp://host/scan", "--seed", "1"), 2, "unsupported URI scheme",
         "no scan written"),
    Case("scan-out-no-bucket", ("scan", "--out", "s3://", "--seed", "1"), 2, "no bucket", "no scan written"),
    Case("scan-config-not-toml", ("scan", "--config", "{tmp}/c.toml", "--out", "{tmp}/scan"), 2, "not valid TOML",
         "no scan written", _file("c.toml", "this is = not [ toml")),
    Case("scan-config-negative-time-limit", ("scan", "--config", "{tmp}/c.toml", "--out", "{tmp}/scan"), 2,
         "time_limit", "no scan written", _file("c.toml", "time_limit = -5.0\n")),
    Case("scan-config-missing", ("scan", "--config", "{tmp}/none.toml", "--out", "{tmp}/scan"), 2, "no such file",
         "no scan written"),
    Case("scan-config-nan", ("scan", "--config", "{tmp}/c.toml", "--out", "{tmp}/scan"), 2, "mass_tolerance",
         "no scan written", _file("c.toml", "[island]\nmass_tolerance = nan\n")),
    Case("scan-config-unknown-setting", ("scan", "--config", "{tmp}/c.toml", "--out", "{tmp}/scan"), 2,
         "unknown setting", "no scan written", _file("c.toml", "islandz = 3\n")),
    Case("scan-method-removed", ("scan", "--method", "fast", "--out", "{tmp}/scan"), 2,
         "No such option '--method'", "no scan written"),
    Case("scan-resume-nothing", ("scan", "--resume", "--out", "{tmp}/scan"), 2, "no scan to resume", "no scan written"),
    Case("scan-resume-changes-settings", ("scan", "--resume", "--islands", "9", "--out", "{tmp}/scan"), 2,
         "islands cannot change", "stored scan untouched", _stored_scan),
    Case("scan-into-a-running-scan", ("scan", "--seed", "7", "--out", "{tmp}/scan"), 2, "in use by rayflavor scan",
         "running scan's lease untouched", _running_scan),
    # --- diffusion cases
    # zero-row shards (a null-typed split column broke training): refused in one line
    Case("diffusion-dataset-shards-over-n", ("diffusion", "dataset", "--n", "20", "--shards", "30", "--out", "{tmp}/run"),
         2, "--shards must be between 1 and --n (20)", "no run directory"),
    Case("diffusion-dataset-shards-0", ("diffusion", "dataset", "--n", "20", "--shards", "0", "--out", "{tmp}/run"),
         2, "--shards must be between 1", "no run directory"),
    # bad input must not leave a manifest that blocks the corrected command
    Case("diffusion-dataset-seed-negative", ("diffusion", "dataset", "--seed", "-1", "--out", "{tmp}/run"), 2,
         "seed must be an integer in [0, 9223372036854775807], not -1", "no run directory"),
    Case("diffusion-dataset-n-5", ("diffusion", "dataset", "--n", "5", "--out", "{tmp}/run"), 2,
         "n_data must be an integer in [10, ", "no run directory"),
    # NaN and nonsense are refused before a sample is drawn or a manifest written
    Case("diffusion-sample-guidance-nan", ("diffusion", "sample", "{tmp}/run", "--guidance", "nan"), 2,
         "guidance must be a finite number in [0, 1000], not nan", "no sample set, lease released", _diffusion_network),
    Case("diffusion-sample-clip-inf", ("diffusion", "sample", "{tmp}/run", "--config", "{tmp}/c.toml"), 2,
         "clip: must be a finite number", "no sample set, lease released",
         _both(_diffusion_network, _write("c.toml", "clip = inf\n"))),
    Case("diffusion-sample-shards-over-n", ("diffusion", "sample", "{tmp}/run", "--n", "20", "--config", "{tmp}/c.toml"),
         2, "must not exceed n (20)", "no sample set, lease released",
         _both(_diffusion_network, _write("c.toml", "shards = 30\n"))),
    Case("diffusion-sample-steps-0", ("diffusion", "sample", "{tmp}/run", "--steps", "0"), 2,
         "steps must be an integer in [1, 1000], not 0", "no sample set, lease released", _diffusion_network),
    Case("diffusion-sample-seed-negative", ("diffusion", "sample", "{tmp}/run", "--seed", "-3"), 2,
         "seed must be an integer in [0, 9223372036854775807], not -3", "no sample set, lease released",
         _diffusion_network),
    Case("diffusion-sample-temperature-removed", ("diffusion", "sample", "{tmp}/run", "--temperature", "0.5"), 2,
         "No such option '--temperature'", "no sample set, lease released", _diffusion_network),
    Case("diffusion-finetune-per-solution-nan", ("diffusion", "finetune", "{tmp}/run", "--config", "{tmp}/c.toml"), 2,
         "per_solution: must be a finite number", "no sample set, lease released",
         _both(_diffusion_network, _write("c.toml", "[selection]\nper_solution = nan\n"))),
    Case("diffusion-finetune-spread-removed", ("diffusion", "finetune", "{tmp}/run", "--spread", "100"), 2,
         "No such option '--spread'", "no sample set, lease released", _diffusion_network),
    Case("diffusion-finetune-select-best-removed", ("diffusion", "finetune", "{tmp}/run", "--select", "best"), 2,
         "'best' is not one of", "no sample set, lease released", _diffusion_network),
    Case("diffusion-finetune-tighten-removed", ("diffusion", "finetune", "{tmp}/run", "--tighten", "0.5"), 2,
         "No such option '--tighten'", "no sample set, lease released", _diffusion_network),
    Case("diffusion-run-final-guidance-nan", ("diffusion", "run", "{tmp}/run", "--config", "{tmp}/c.toml"), 2,
         "final_guidance: must be a finite number", "no run directory", _write("c.toml", "final_guidance = nan\n")),
    Case("diffusion-run-physics-in-rounds-removed", ("diffusion", "run", "{tmp}/run", "--physics-guidance", "3"), 2,
         "No such option '--physics-guidance'", "no run directory"),
    Case("diffusion-run-config-unknown-key", ("diffusion", "run", "{tmp}/run", "--config", "{tmp}/c.toml"), 2,
         "unknown setting(s) temperature", "no run directory", _write("c.toml", "rounds = 4\n[sampling]\ntemperature = 0.5\n")),
    # a damaged dataset part is named in one line (train used to fail in Ray with a traceback)
    Case("diffusion-train-truncated-part", ("diffusion", "train", "{tmp}/run"), 2,
         "part-00001.parquet: not a readable Parquet file", "no network, lease released", _diffusion_truncated_part),
    Case("diffusion-train-short-part", ("diffusion", "train", "{tmp}/run"), 2, "part-00000.parquet: 5 rows, expected 20",
         "no network, lease released", _diffusion_short_part),
    # a second writer on one RUN gets one line naming the holder
    Case("diffusion-dataset-leased", ("diffusion", "dataset", "--n", "20", "--out", "{tmp}/run"), 2,
         "is in use by rayflavor diffusion run (pid 1 on", "the other process's lease kept", _diffusion_locked()),
    Case("diffusion-train-leased", ("diffusion", "train", "{tmp}/run"), 2, "is in use by rayflavor diffusion run (pid 1 on",
         "the other process's lease kept", _diffusion_locked(_diffusion_dataset)),
    Case("diffusion-sample-leased", ("diffusion", "sample", "{tmp}/run", "--n", "10"), 2, "is in use by",
         "the other process's lease kept", _diffusion_locked(_diffusion_network)),
    Case("diffusion-finetune-leased", ("diffusion", "finetune", "{tmp}/run"), 2, "is in use by",
         "the other process's lease kept", _diffusion_locked(_diffusion_network)),
    Case("diffusion-run-leased", ("diffusion", "run", "{tmp}/run"), 2, "is in use by", "the other process's lease kept",
         _diffusion_locked()),
    # a URI scheme pyarrow cannot serve: one line, never a local directory named "hdfs:"
    Case("diffusion-run-unsupported-scheme", ("diffusion", "run", "hdfs://host/run", "--teacher", "none", "--rounds", "1"), 2,
         "unsupported URI scheme 'hdfs'", "no run directory"),
    Case("diffusion-dataset-unsupported-scheme", ("diffusion", "dataset", "--out", "ftp://host/run"), 2,
         "unsupported URI scheme 'ftp'", "no run directory"),
]


def _fill(arg: str, tmp: Path) -> str:
    return arg.format(tmp=tmp, fn=examples.path("fn"), seesaw=examples.path("seesaw"))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=pytest.mark.skipif(bool(c.skip), reason=c.skip or ""))
                                  for c in CASES])
def test_bad_input(case: Case, tmp_path: Path):
    if case.setup is not None:
        case.setup(tmp_path)
    args = [_fill(a, tmp_path) for a in case.args]
    old_umask = os.umask(0o022)
    try:
        if case.runner == "subprocess":
            proc = subprocess.run([sys.executable, "-m", "rayflavor.cli.main", *args], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
            code, output = proc.returncode, proc.stdout + proc.stderr
        else:
            res = CliRunner().invoke(cli, args)
            code, output = res.exit_code, res.output
            assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    finally:
        os.umask(old_umask)
    assert "Traceback" not in output, output
    assert code == case.exit, output
    assert case.says in output, output
    if code == 2:  # one line that names the problem (click's usage errors add Usage/Try lines)
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and case.says in errors[0], output
    AFTER[case.after](tmp_path)


def test_every_case_is_unique_and_checked():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert all(c.after in AFTER for c in CASES)


# --- object-storage faults: the same promise (one line, exit 2, nothing written) against an S3
# API on 127.0.0.1 (the moto fixtures of conftest.py). A row: (id, args with {bucket} for the
# test's fresh bucket, message fragment, endpoint override or None).
OBJECT_STORE_CASES = [
    ("scan-missing-bucket", ("scan", "--out", "s3://rf-no-such-bucket/scan", "--seed", "1", "--no-live"),
     "bucket does not exist", None),
    ("dedupe-missing-bucket", ("dedupe", "s3://rf-no-such-bucket/scan"), "is not a scan", None),
    ("analyze-missing-bucket", ("analyze", "s3://rf-no-such-bucket/scan"), "bucket 'rf-no-such-bucket' does not exist",
     None),
    ("diffusion-dataset-missing-bucket", ("diffusion", "dataset", "--out", "s3://rf-no-such-bucket/run"),
     "bucket does not exist", None),
    ("reference-missing-bucket", ("diffusion", "reference", "s3://rf-no-such-bucket/run"), "bucket does not exist", None),
    ("scan-unreachable-endpoint", ("scan", "--out", "{bucket}/scan", "--seed", "1", "--no-live"), "cannot reach",
     "http://127.0.0.1:9"),
    ("dedupe-empty-prefix", ("dedupe", "{bucket}/nothing-here"), "is not a scan (no islands/ and no scan.json)", None),
]


@pytest.mark.parametrize("case_id, args, says, endpoint", OBJECT_STORE_CASES, ids=[c[0] for c in OBJECT_STORE_CASES])
def test_object_storage_faults_are_one_line(s3_bucket, monkeypatch, case_id, args, says, endpoint):
    import boto3

    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    res = CliRunner().invoke(cli, [a.replace("{bucket}", s3_bucket) for a in args])
    assert "Traceback" not in res.output and res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0], res.output
    if not endpoint:  # nothing was written into the test's bucket
        s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
        assert s3.list_objects_v2(Bucket=s3_bucket.removeprefix("s3://")).get("KeyCount", 0) == 0
