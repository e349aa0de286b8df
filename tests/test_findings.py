"""The FN findings recipes: the commands, and the numbers measured from a synthetic finished scan."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from click.testing import CliRunner

from rayflavor.bench.findings import FINDINGS, SCANS, format_table, measure, read_scan, scan_command
from rayflavor.cli.main import cli
from rayflavor.physics import data, fn
from rayflavor.storage.dedupe import dedupe
from rayflavor.storage.island_store import IslandStore
from rayflavor.storage.location import resolve
from rayflavor.storage.parquet import to_table

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _island(out, i: int, n: int, start_s: float, *, m_ee, ordering, seed: int) -> None:
    """Commit ``n`` evaluated FN rows for island ``i`` that started ``start_s`` after T0; row k
    found at start + 10 (k + 1) s, with planted ``m_ee`` and ``ordering``."""
    x = fn.random_parameters(n, np.random.default_rng(seed), max_charge=3)
    cols = {k: x[:, j] for j, k in enumerate(fn.PARAMETERS)}
    cols.update(fn.evaluate(x))
    cols.update(valid=np.ones(n, bool), m_ee=np.asarray(m_ee, float), ordering=np.asarray(ordering))
    cols["generation"] = np.arange(n, dtype=np.int64)
    cols["found_at"] = np.array([(T0 + timedelta(seconds=start_s + 10 * (k + 1))).timestamp() for k in range(n)])
    t = to_table(cols, island=i, seed=seed)
    store = IslandStore(out, i)
    store.load()
    store.commit(t, {}, {}, {"wall_seconds": 1800.0, "starts": [{"at": (T0 + timedelta(seconds=start_s)).isoformat()}]})


def test_measure_counts_the_models_that_show_a_finding_and_the_time_to_the_first(tmp_path):
    out = resolve(tmp_path / "no-up")
    # island 0: m_ee 1e-3 except rows 3 and 5 (5e-5); island 1 (started 100 s later): row 1 at 2e-5
    _island(out, 0, 8, 0.0, m_ee=[1e-3] * 3 + [5e-5, 1e-3, 5e-5, 1e-3, 1e-3], ordering=["NO"] * 8, seed=1)
    _island(out, 1, 4, 100.0, m_ee=[1e-3, 2e-5, 1e-3, 1e-3], ordering=["NO", "NO", "IO", "IO"], seed=2)
    c = dedupe(out, fn.DEFAULT_DATA, compact=False)
    ds = data.load(fn.DEFAULT_DATA)
    small = next(f for f in FINDINGS if f.key == "no-up-small-mee")
    rec = read_scan(out)
    r = measure(rec, small, ds)
    assert r["valid"] == c.unique == 12 and r["selected"] == 3 and r["islands"] == 2 and r["islands_with"] == 2
    assert r["first_per_island_s"] == [40.0, 20.0] and r["first_s"] == 20.0  # island-time, not wall time
    assert r["core_hours"] == pytest.approx(1.0) and r["per_core_hour"] == pytest.approx(3.0)
    assert r["m_ee_range"] == pytest.approx([2e-5, 5e-5])
    no = measure(rec, next(f for f in FINDINGS if f.key == "no-up"), ds)
    assert no["selected"] == 10 and no["first_s"] == 10.0
    assert 1 <= no["light"] <= no["selected"]
    table = format_table([r, no])
    assert table.count("\n") == 3 and "| 3 |" in table and "20 (2/2 islands)" in table


def test_every_recipe_is_a_valid_scan_command():
    from rayflavor.cli.scan import build_settings, scan

    for name in SCANS:
        argv = scan_command(name, islands=2, time_limit="15m", seed=7, out="x")
        assert argv[0] == "scan"
        ctx = scan.make_context("scan", argv[1:])
        s = build_settings(ctx, "fast", None)
        assert s.islands == 2 and s.seed == 7 and s.time_limit == 900 and s.island.restarts == 1000
    s = build_settings(scan.make_context("scan", scan_command("masses-6", islands=2, time_limit="1m", seed=0, out="x")[1:]),
                       "fast", None)
    assert s.island.mass_tolerance == 0.06


def test_findings_command_refuses_unknown_recipes_and_prints_commands(tmp_path):
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", str(tmp_path / "f"), "--only", "nope"])
    assert r.exit_code == 2 and "unknown recipe scan nope" in r.output
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", str(tmp_path / "f"), "--only", "masses-6", "--dry-run"])
    assert r.exit_code == 0 and r.output.count("$ rayflavor scan") == 1 and "--mass-tolerance 0.06" in r.output
