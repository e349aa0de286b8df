"""Invariants of the CLI, tested as properties (hypothesis) over generated inputs.

For every generated draw -- option values (integers up to 2**128, floats with NaN, infinities and
denormals, arbitrary text), settings files (TOML and JSON), Parquet inputs (column types, nulls,
duplicated rows and column names, nested columns) and damaged scans -- each command, run with
click's CliRunner in a fresh temporary directory under ``umask 022``, must:

1. exit 0 with a correct result, or exit 2 with exactly one ``Error:`` line; never a traceback;
2. never lose a committed row: every row of a committed part that ``dedupe`` does not name as
   damaged is in ``models.parquet`` afterwards;
3. never replace a result file by one with fewer rows unless it exits != 0 (then the file is
   untouched) or prints a warning naming the cause;
4. write nothing outside the output location (the temporary tree is compared before and after).

``scan`` is checked up to the point where it starts Ray: option parsing, the settings file,
settings validation, the data set, the writability probe and the lease all run for real, and
:func:`rayflavor.orchestration.runtime.ensure_ray` is replaced by one that refuses like an
unreachable cluster (``RayAddressError``).  That keeps every example in milliseconds and also
exercises the scan's own clean-up of a refused start (lease released, no empty OUT left); running
islands is the business of the scan tests.

Examples per property come from the hypothesis profile (tests/conftest.py): ``ci`` (30, the
default), ``mid`` (300), ``long`` (2000); ``analyze`` runs a third of them (its figures take
seconds per example): ``HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties_cli.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rayflavor.cli.main import cli  # noqa: E402
from rayflavor.physics import fn, seesaw  # noqa: E402
from test_bad_inputs import _fn_rows, _seesaw_rows  # noqa: E402

# ------------------------------------------------------------------------------ the invariants


@contextmanager
def _sandbox():
    """A fresh temporary directory (also the working directory) under umask 022."""
    old_umask, old_cwd = os.umask(0o022), os.getcwd()
    with tempfile.TemporaryDirectory(prefix="rf-prop-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old_cwd)
            os.umask(old_umask)


def _tree(root: Path) -> dict[str, str]:
    """relative path -> content hash (files), 'dir', or 'link:<target>'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = f"link:{os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def _outside(before: dict, after: dict, allowed: tuple[str, ...]) -> list[str]:
    """Paths created, changed or removed that lie outside every ``allowed`` relative prefix."""
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(k for k in changed if not any(k == a or k.startswith(a.rstrip("/") + "/") for a in allowed))


def _run(args: list[str]):
    """Invariant 1: (exit code, output) of a run that ended in 0 or in exactly one Error line."""
    res = CliRunner().invoke(cli, args)
    out = res.output
    assert "Traceback" not in out, out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 2), (res.exit_code, out)
    event(f"{args[0]} exit {res.exit_code}" + (" (Ray start refused)" if "ray start refused" in out else ""))
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    if res.exit_code == 2:
        assert len(errors) == 1, out
    else:
        assert not errors, out
    return res.exit_code, out


# ------------------------------------------------------------------------------ value strategies

BIG_INTS = st.integers(min_value=-(2**128), max_value=2**128)
ODD_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 1e300, -0.0, 0.0]))
TEXT = st.text(max_size=24)
OPTION_VALUE = st.one_of(BIG_INTS.map(str), ODD_FLOATS.map(repr), TEXT, st.sampled_from(["", "nan", "-1", "1e22", "0x10"]))

COLUMN_KINDS = ("nan", "inf", "denormal", "huge", "string", "nulls", "list", "struct", "bool", "float32", "int64",
                "drop", "duplicate_name", "empty_string")


def _mutate(cols: dict[str, pa.Array], names: list[str], column: str, kind: str, draw) -> list[str]:
    """Apply one column mutation to ``cols`` (name -> array) and ``names`` (column order)."""
    n = len(next(iter(cols.values()))) if cols else 0
    if column not in cols:
        return names
    base = cols[column]
    if kind == "drop":
        del cols[column]
        return [c for c in names if c != column]
    if kind == "duplicate_name":
        return names + [column]  # the same column twice
    if kind in ("nan", "inf", "denormal", "huge"):
        value = {"nan": math.nan, "inf": draw(st.sampled_from([math.inf, -math.inf])), "denormal": 5e-324,
                 "huge": 1e300}[kind]
        try:
            v = np.array(base.to_pylist(), dtype=np.float64)
        except (TypeError, ValueError):
            return names
        if v.ndim != 1:
            return names
        rows = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n)) if n else []
        v[rows] = value
        cols[column] = pa.array(v)
    elif kind == "string":
        cols[column] = pa.array([draw(TEXT) for _ in range(n)])
    elif kind == "empty_string":
        cols[column] = pa.array([""] * n)
    elif kind == "nulls":
        mask = [draw(st.booleans()) for _ in range(n)]
        cols[column] = pa.array([None if m else v for m, v in zip(mask, base.to_pylist())], type=base.type)
    elif kind == "list":
        cols[column] = pa.array([[v, v] for v in base.to_pylist()])
    elif kind == "struct":
        cols[column] = pa.array([{"a": v} for v in base.to_pylist()])
    elif kind == "bool":
        cols[column] = pa.array([bool(draw(st.booleans())) for _ in range(n)])
    elif kind == "float32":
        try:
            cols[column] = pa.array(np.asarray(base.to_pylist(), dtype=np.float64).astype(np.float32))
        except (TypeError, ValueError):
            pass
    elif kind == "int64":
        cols[column] = pa.array([draw(st.integers(-(2**63), 2**63 - 1)) for _ in range(n)], type=pa.int64())
    return names


def _table(cols: dict[str, pa.Array], names: list[str]) -> pa.Table:
    return pa.Table.from_arrays([cols[c] for c in names], names=names)


@st.composite
def parquet_input(draw, model: str, evaluated: bool = False):
    """(table, rows) of ``model`` parameters (and observables when ``evaluated``), mutated."""
    n = draw(st.integers(1, 6))
    rows = _fn_rows(n, seed=draw(st.integers(0, 3))) if model == "fn" else _seesaw_rows(n, seed=draw(st.integers(0, 3)))
    if evaluated:
        x = np.column_stack([rows[k] for k in (fn.PARAMETERS if model == "fn" else seesaw.PARAMETERS)])
        rows = {**rows, **(fn.evaluate(x) if model == "fn" else seesaw.evaluate(x))}
        flag = "valid" if model == "fn" else "solution"
        rows[flag] = np.array([draw(st.booleans()) for _ in range(n)])
    cols = {k: pa.array(np.asarray(v).astype(object) if np.asarray(v).dtype.kind == "U" else np.asarray(v))
            for k, v in rows.items()}
    names = list(cols)
    if draw(st.booleans()):  # duplicated rows
        idx = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
        cols = {k: pa.concat_arrays([a, a.take(pa.array(idx))]) for k, a in cols.items()}
    if draw(st.booleans()):
        cols["extra"] = pa.array([draw(TEXT) for _ in range(len(next(iter(cols.values()))))])
        names.append("extra")
    for _ in range(draw(st.integers(0, 3))):
        names = _mutate(cols, names, draw(st.sampled_from(names)), draw(st.sampled_from(COLUMN_KINDS)), draw)
    if not names:
        names, cols = ["extra"], {"extra": pa.array(["x"])}
    return _table(cols, names)


def _write_parquet(table: pa.Table, path: Path) -> bool:
    try:
        pq.write_table(table, path)
        return True
    except (pa.ArrowException, ValueError, TypeError):
        return False


# ------------------------------------------------------------------------------ evaluate


SAFE_NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=120).filter(
    lambda s: s not in (".", "..") and len(s.encode()) <= 255)


@given(model=st.sampled_from(["fn", "seesaw"]), data=st.data(),
       tolerance=st.one_of(st.none(), OPTION_VALUE), ordering=st.one_of(st.none(), st.sampled_from(["NO", "IO"]), TEXT),
       name=st.one_of(st.just("o.parquet"), st.just("x" * 248), SAFE_NAME))
def test_evaluate_invariants(model, data, tolerance, ordering, name):
    with _sandbox() as tmp:
        table = data.draw(parquet_input(model))
        if not _write_parquet(table, tmp / "in.parquet"):
            return
        (tmp / "out").mkdir()
        before = _tree(tmp)
        args = ["evaluate", "--model", model, "in.parquet", "-o", str(Path("out") / name)]
        if tolerance is not None:
            args += ["--mass-tolerance", tolerance]
        if ordering is not None:
            args += ["--ordering", ordering]
        code, out = _run(args)
        after = _tree(tmp)
        target = f"out/{name}"
        assert not _outside(before, after, (target,)), _outside(before, after, (target,))
        if code == 0:  # a correct result: every input row, evaluated, with a boolean valid flag
            result = pq.read_table(tmp / target)
            assert result.num_rows == table.num_rows
            assert pa.types.is_boolean(result.schema.field("valid").type)
            assert set(table.column_names) <= set(result.column_names)
        else:
            assert target not in after


# ------------------------------------------------------------------------------ dedupe

DEDUPE_DAMAGE = ("tear_checkpoint", "repeat_entry", "drop_entry", "wrong_rows", "random_bytes", "truncate_part",
                 "other_schema", "huge_charge", "null_charge", "delete_part", "delete_island", "garbage_lock",
                 "live_lock", "garbage_scan_json", "part_column_type")


def _charges(path: Path) -> set[tuple]:
    t = pq.read_table(path, columns=list(fn.CHARGES))
    return set(zip(*[t.column(c).to_pylist() for c in fn.CHARGES]))


def _damage(out: Path, kind: str, draw) -> None:
    from rayflavor.storage.island_store import IslandStore
    from rayflavor.storage.location import resolve

    islands = sorted((out / "islands").glob("island-*"))
    if not islands:
        return
    d = draw(st.sampled_from(islands))
    ck_path = d / "checkpoint.json"
    try:
        ck = json.loads(ck_path.read_text())
        parts = ck["parts"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    part = d / draw(st.sampled_from(parts))["name"] if parts else None
    if kind == "tear_checkpoint":
        raw = ck_path.read_bytes()
        ck_path.write_bytes(raw[: draw(st.integers(0, max(len(raw) - 1, 0)))])
    elif kind in ("repeat_entry", "drop_entry", "wrong_rows") and parts:
        i = draw(st.integers(0, len(parts) - 1))
        if kind == "repeat_entry":
            parts.append(dict(parts[i]))
        elif kind == "drop_entry":
            parts.pop(i)
        else:
            parts[i]["rows"] = draw(st.one_of(st.integers(-5, 100), st.none(), st.text(max_size=3)))
        ck_path.write_text(json.dumps(ck))
    elif part is None or not part.exists():
        return
    elif kind == "random_bytes":
        part.write_bytes(draw(st.binary(max_size=64)))
    elif kind == "truncate_part":
        raw = part.read_bytes()
        if raw:
            part.write_bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    elif kind == "other_schema":
        pq.write_table(pa.table({"q_Q1": [1.5], "x": ["a"]}), part)
    elif kind in ("huge_charge", "null_charge", "part_column_type"):
        try:
            t = pq.read_table(part)
            t.schema.field("island")
        except (pa.ArrowException, OSError, KeyError):  # damaged already
            return
        col = draw(st.sampled_from(list(fn.CHARGES) + (["island", "m_t", "ordering"] if kind == "part_column_type" else [])))
        i = t.schema.get_field_index(col)
        if i < 0 or t.num_rows == 0:
            return
        v = t.column(col).to_pylist()
        if kind == "huge_charge":
            v[0] = draw(st.sampled_from([2**62, -(2**63), 2**31, 40000]))
            arr = pa.array(v, pa.int64())
        elif kind == "null_charge":
            v[0] = None
            arr = pa.array(v, t.schema.field(i).type)
        else:
            arr = pa.array([str(x) for x in v])
        pq.write_table(t.set_column(i, col, arr), part)
    elif kind == "delete_part":
        part.unlink()
    elif kind == "delete_island":
        import shutil

        shutil.rmtree(d)
    elif kind == "garbage_lock":
        (out / "LOCK.json").write_bytes(draw(st.binary(max_size=16)))
        old = time.time() - 3600
        os.utime(out / "LOCK.json", (old, old))
    elif kind == "live_lock":
        import socket

        (out / "LOCK.json").write_text(json.dumps({"owner": "rayflavor scan", "host": socket.gethostname(), "pid": 1,
                                                   "token": "other", "acquired_at": time.time(),
                                                   "expires_at": time.time() + 600}))
    elif kind == "garbage_scan_json":
        (out / "scan.json").write_bytes(draw(st.binary(max_size=32)))
    del IslandStore, resolve


def _committed_readable_parts(out: Path) -> dict[str, set[tuple]]:
    """part path -> its charge rows, for every part a readable checkpoint lists that reads with
    the model-row schema (what a dedupe must keep unless it names the part)."""
    from rayflavor.storage.dedupe import schema_problem

    parts = {}
    for d in sorted((out / "islands").glob("island-*")):
        try:
            ck = json.loads((d / "checkpoint.json").read_text())
            names = [p["name"] for p in ck["parts"]]
            quarantined = {q["name"] for q in ck.get("quarantined", [])}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for name in names:
            if name in quarantined:
                continue
            try:
                if schema_problem(pq.read_schema(d / name)) is None:
                    parts[str(d / name)] = _charges(d / name)
            except (OSError, pa.ArrowException, ValueError, TypeError):
                continue
    return parts


@given(data=st.data(), rows=st.integers(0, 24), islands=st.integers(1, 3), per_part=st.integers(2, 9),
       dup=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 50), deduped_before=st.booleans(),
       damage=st.lists(st.sampled_from(DEDUPE_DAMAGE), max_size=3), compact=st.booleans(),
       data_option=st.one_of(st.none(), st.sampled_from(["nufit-6.0+pdg-2024", "nope"]), TEXT))
def test_dedupe_invariants(data, rows, islands, per_part, dup, seed, deduped_before, damage, compact, data_option):
    from rayflavor.bench.dedupe import synthetic_parts
    from rayflavor.storage.dedupe import dedupe

    with _sandbox() as tmp:
        out = tmp / "scan"
        synthetic_parts(str(out), rows, islands, rows_per_part=per_part, duplicate_fraction=dup, seed=seed)
        if deduped_before:
            dedupe(str(out), "nufit-6.0+pdg-2024", compact=False, warn=lambda m: None)
        models = out / "models.parquet"
        old_rows = pq.read_metadata(models).num_rows if models.exists() else None
        old_bytes = models.read_bytes() if models.exists() else None
        for kind in damage:
            _damage(out, kind, data.draw)
        committed = _committed_readable_parts(out)
        before = _tree(tmp)
        args = ["dedupe", "scan", "--compact" if compact else "--no-compact"]
        if data_option is not None:
            args += ["--data", data_option]
        code, text = _run(args)
        after = _tree(tmp)
        assert not _outside(before, after, ("scan",)), _outside(before, after, ("scan",))
        if code != 0:  # invariant 3: refused, the result file untouched
            assert (models.read_bytes() if models.exists() else None) == old_bytes
            return
        assert models.exists()
        new_rows = pq.read_metadata(models).num_rows
        if old_rows is not None and new_rows < old_rows:  # invariant 3: a shrink names its cause
            assert any(line.startswith("warning:") and f"{old_rows} to {new_rows} rows" in line
                       for line in text.splitlines()), text
        kept = _charges(models)
        for part, charges in committed.items():  # invariant 2: nothing committed and undamaged lost
            island = int(Path(part).parent.name.split("-")[1])
            if Path(part).name in text or f"island {island} skipped" in text:  # named as damaged
                continue
            assert charges <= kept, (part, text)


# ------------------------------------------------------------------------------ analyze


@settings(max_examples=max(5, settings.default.max_examples // 3))  # figures cost seconds per example
@given(model=st.sampled_from(["fn", "seesaw"]), data=st.data(),
       fmt=st.one_of(st.none(), st.sampled_from(["png", "pdf"]), TEXT),
       out_dir=st.one_of(st.none(), st.just("figs"), st.just("in.parquet"), st.just("blocker/figs")))
def test_analyze_invariants(model, data, fmt, out_dir):
    with _sandbox() as tmp:
        table = data.draw(parquet_input(model, evaluated=True))
        if not _write_parquet(table, tmp / "in.parquet"):
            return
        (tmp / "blocker").write_text("a file where --out wants a directory")
        before = _tree(tmp)
        args = ["analyze", "in.parquet"]
        if fmt is not None:
            args += ["--format", fmt]
        if out_dir is not None:
            args += ["--out", out_dir]
        code, text = _run(args)
        allowed = (out_dir or "analysis",)
        assert not _outside(before, _tree(tmp), allowed), _outside(before, _tree(tmp), allowed)
        if code == 0:  # counts as stated: rows of the file, analysed rows no more than flagged ones
            import re

            m = re.search(r": (\d+) (?:valid models|solutions)(?: of (\d+) rows)?", text)
            assert m, text
            flag = "valid" if model == "fn" else "solution"
            flagged = table.num_rows
            if flag in table.column_names:
                flagged = sum(1 for v in table.column(flag).to_pylist() if v is True or v == 1)
            assert int(m.group(1)) <= flagged
            if m.group(2):
                assert int(m.group(2)) == table.num_rows


# ------------------------------------------------------------------------------ scan setup


def _scan_command() -> click.Command:
    return cli.commands["scan"]


def _value_options() -> list[click.Option]:
    """The scan's options that take a value (--out is the sandbox's, --config is drawn apart)."""
    return [p for p in _scan_command().params if isinstance(p, click.Option) and not p.is_flag
            and p.name not in ("out", "config") and not p.hidden]


def _config_keys() -> list[str]:
    import dataclasses

    from rayflavor.orchestration.scan_settings import ScanSettings
    from rayflavor.methods.ga.config import IslandConfig

    return [f.name for f in dataclasses.fields(ScanSettings)] + [f"island.{f.name}" for f in dataclasses.fields(IslandConfig)]


CONFIG_VALUE = st.one_of(BIG_INTS, ODD_FLOATS, TEXT, st.booleans(), st.lists(st.integers(-3, 3), max_size=3),
                         st.dictionaries(TEXT, st.integers(), max_size=2))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def _write_config(path: Path, mapping: dict, fmt: str) -> None:
    top = {k: v for k, v in mapping.items() if not k.startswith("island.")}
    island = {k.split(".", 1)[1]: v for k, v in mapping.items() if k.startswith("island.")}
    if fmt == "json":
        doc = {**top, **({"island": island} if island else {})}
        path.write_text(json.dumps(doc, allow_nan=True))
        return
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in top.items()]
    if island:
        lines += ["[island]"] + [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in island.items()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def ray_start_refused(monkeypatch):
    """ensure_ray refuses like an unreachable cluster: the scan stops just before Ray starts."""
    from rayflavor.orchestration import runtime

    def refuse(address=None, *a, **k):
        raise runtime.RayAddressError("ray start refused by the property test")

    monkeypatch.setattr(runtime, "ensure_ray", refuse)


@given(data=st.data(), config=st.one_of(st.none(), st.tuples(st.sampled_from(["toml", "json"]), st.data())))
def test_scan_setup_invariants(ray_start_refused, data, config):
    options = _value_options()
    chosen = data.draw(st.lists(st.sampled_from(options), max_size=4, unique_by=lambda o: o.name))
    args = ["scan", "--out", "scanout", "--no-live"]
    for opt in chosen:
        choices = list(getattr(opt.type, "choices", []) or [])
        value = data.draw(st.one_of(st.sampled_from(choices), OPTION_VALUE) if choices else OPTION_VALUE)
        args += [opt.opts[-1] if opt.opts[-1].startswith("--") else opt.opts[0], value]
    with _sandbox() as tmp:
        if config is not None:
            fmt, cdata = config
            keys = cdata.draw(st.lists(st.sampled_from(_config_keys() + ["bogus"]), max_size=4, unique=True))
            mapping = {k: cdata.draw(CONFIG_VALUE) for k in keys}
            _write_config(tmp / f"settings.{fmt}", mapping, fmt)
            args += ["--config", f"settings.{fmt}"]
        before = _tree(tmp)
        code, text = _run(args)
        assert code == 2  # without Ray, a scan stops: at bad input, or at the refused Ray start
        assert _tree(tmp) == before, _outside(before, _tree(tmp), ())  # a refused start leaves nothing
