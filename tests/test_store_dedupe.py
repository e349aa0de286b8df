"""Dedupe on a local OUT: committed parts only, damaged parts named and counted, compaction, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from rayflavor.bench.dedupe import synthetic_parts
from rayflavor.cli.dedupe import dedupe as dedupe_cmd
from rayflavor.storage import lease as lease_mod
from rayflavor.storage.dedupe import DamagedPartWarning, dedupe
from rayflavor.storage.island_store import IslandStore, committed_parts, island_location
from rayflavor.storage.location import resolve

DATA = "nufit-6.0+pdg-2024"
N, UNIQUE = 3000, 2400  # synthetic_parts(N, duplicate_fraction=0.2)


@pytest.fixture
def scan(tmp_path):
    out = tmp_path / "scan"
    w = synthetic_parts(str(out), N, 3, rows_per_part=400, duplicate_fraction=0.2, seed=5)
    assert w["unique"] == UNIQUE and w["parts"] == 9
    return out


def _models(out) -> pl.DataFrame:
    return pl.read_parquet(os.path.join(out, "models.parquet"))


def test_synthetic_scan_dedupes_to_the_known_counts_and_compacts(scan):
    c = dedupe(str(scan), DATA, compact=False)
    assert (c.found, c.unique, c.duplicates, c.damaged, c.parts) == (N, UNIQUE, N - UNIQUE, 0, 9)
    before = _models(scan).sort("q_Q1", "q_Q2", "q_Q3", "q_u1", "q_u2", "q_u3", "q_d1")
    assert before.height == UNIQUE and before.select(pl.struct(pl.col("^q_.*$")).n_unique()).item() == UNIQUE
    c2 = dedupe(str(scan), DATA)
    assert c2.compaction == "compacted 9 parts of 3 islands"
    assert (c2.found, c2.unique, c2.textures, c2.light_textures) == (c.found, c.unique, c.textures, c.light_textures)
    assert [len(IslandStore(resolve(scan), i).committed_parts()) for i in range(3)] == [1, 1, 1]
    after = _models(scan).sort("q_Q1", "q_Q2", "q_Q3", "q_u1", "q_u2", "q_u3", "q_d1")
    assert after.equals(before)  # compaction changes the files, not the result
    assert IslandStore(resolve(scan), 0).load()[2] == {"synthetic": True}  # state and info kept
    assert dedupe(str(scan), DATA).compaction == "already compact"


def test_kept_row_is_the_one_closest_to_the_central_values(tmp_path):
    out = resolve(tmp_path)
    synthetic_parts(out, 200, 1, rows_per_part=200, duplicate_fraction=0.0, seed=1)
    t = committed_parts(out)[0].read_parquet()
    far = t.slice(0, 1).set_column(t.schema.get_field_index("m_t"), "m_t", pa.array([1e-12]))
    far = far.set_column(far.schema.get_field_index("generation"), "generation", pa.array([-1], pa.int64()))
    IslandStore(out, 1).commit(far, {}, {}, {})  # same charges as row 0, much farther from m_t's centre
    c = dedupe(out, DATA)
    assert (c.found, c.unique) == (201, 200)
    kept = _models(tmp_path).filter(pl.col("q_Q1") == t["q_Q1"][0].as_py(), pl.col("q_u1") == t["q_u1"][0].as_py(),
                                    pl.col("q_N3") == t["q_N3"][0].as_py(), pl.col("q_Q2") == t["q_Q2"][0].as_py())
    assert kept["generation"].to_list() == [0]


def test_stray_part_of_a_dead_attempt_is_not_read(scan):
    stray = island_location(resolve(scan), 1) / "part-000003-deadbeef.parquet"
    stray.write_parquet(committed_parts(resolve(scan))[0].read_parquet())  # 400 rows nobody committed
    c = dedupe(str(scan), DATA, compact=False)
    assert (c.found, c.unique, c.damaged) == (N, UNIQUE, 0)


def _damage(scan):
    parts = committed_parts(resolve(scan))
    trunc = parts[1]
    data = trunc.read_bytes()
    trunc.local_path().write_bytes(data[: len(data) // 2])  # a truncated file
    other = parts[4]
    other.write_parquet(pa.table({"q_Q1": [1.5], "x": ["a"]}))  # another schema
    return trunc, other


def test_damaged_parts_are_named_skipped_counted_and_quarantined(scan):
    trunc, other = _damage(scan)
    warned = []
    c = dedupe(str(scan), DATA, warn=warned.append)
    assert c.damaged == 2 and c.found == N - 400 - 400
    assert any(trunc.uri in w and "unreadable" in w for w in warned)
    assert any(other.uri in w and "another schema" in w for w in warned)
    assert "damaged parts skipped 2" in c.line()
    assert _models(scan).height == c.unique
    # quarantined: kept, never read again, still reported by the next dedupe
    assert trunc.exists() and other.exists()
    assert {q["name"] for i in range(3) for q in IslandStore(resolve(scan), i).quarantined()} == {trunc.name, other.name}
    with pytest.warns(DamagedPartWarning, match="quarantined by an earlier dedupe"):
        c2 = dedupe(str(scan), DATA)
    assert (c2.found, c2.unique, c2.damaged) == (c.found, c.unique, 2)


def test_a_corrupt_page_behind_a_good_footer_is_found_and_skipped(scan):
    part = committed_parts(resolve(scan))[2]
    rows = part.read_parquet().num_rows
    raw = bytearray(part.read_bytes())
    raw[200:6000] = os.urandom(5800)  # column chunks, not the footer
    part.local_path().write_bytes(bytes(raw))
    warned = []
    c = dedupe(str(scan), DATA, compact=False, warn=warned.append)
    assert c.damaged == 1 and c.found == N - rows and any(part.uri in w for w in warned)


def test_compaction_is_skipped_while_a_scan_holds_the_lease(scan):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from rayflavor.storage import lease; from rayflavor.storage.location import resolve;"
                               "l = lease.acquire(resolve(sys.argv[1]), owner='rayflavor scan', ttl=120); print('held', flush=True); time.sleep(120)", str(scan)],
                              stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "held"
        c = dedupe(str(scan), DATA)
        assert c.compaction.startswith("not compacted") and "rayflavor scan" in c.compaction
        assert len(committed_parts(resolve(scan))) == 9 and c.found == N
    finally:
        holder.kill()
        holder.wait()
    assert not lease_mod.is_held(resolve(scan))  # a dead holder does not block the next one
    assert dedupe(str(scan), DATA).compaction.startswith("compacted")


def test_dedupe_of_a_scan_that_found_nothing_writes_an_empty_table(tmp_path):
    IslandStore(resolve(tmp_path), 0).commit(None, {}, {}, {})
    c = dedupe(str(tmp_path), DATA)
    assert (c.found, c.unique, c.damaged) == (0, 0, 0)
    m = _models(tmp_path)
    assert m.height == 0 and "distance" in m.columns and m["q_Q1"].dtype == pl.Int64


# ---------------------------------------------------------------------------------- CLI
def _one_line_error(res, fragment):
    assert res.exit_code == 2, res.output
    assert fragment in res.output and len(res.output.strip().splitlines()) == 1 and res.output.startswith("Error:")


def test_cli_prints_counts_warnings_and_compaction(scan):
    _damage(scan)
    res = CliRunner().invoke(dedupe_cmd, [str(scan)])
    assert res.exit_code == 0, res.output
    assert "damaged parts skipped 2" in res.stdout and "compacted" in res.stdout
    assert res.stderr.count("warning:") == 2


def test_cli_bad_inputs_are_one_line_and_exit_2(tmp_path, scan):
    _one_line_error(CliRunner().invoke(dedupe_cmd, [str(tmp_path / "nothing")]), "is not a scan")
    _one_line_error(CliRunner().invoke(dedupe_cmd, ["ftp://host/x"]), "unsupported URI scheme")
    _one_line_error(CliRunner().invoke(dedupe_cmd, [str(scan), "--data", str(tmp_path / "no.toml")]), "neither a shipped name")
    (scan / "scan.json").write_text("{ not json")
    _one_line_error(CliRunner().invoke(dedupe_cmd, [str(scan)]), "scan.json: not valid JSON")
    (scan / "scan.json").write_text(json.dumps({"settings": {"data": 3}}))
    _one_line_error(CliRunner().invoke(dedupe_cmd, [str(scan)]), "'settings.data' is not a data set")
    (scan / "scan.json").write_text(json.dumps({"settings": {"data": DATA}}))
    res = CliRunner().invoke(dedupe_cmd, [str(scan), "--no-compact"])
    assert res.exit_code == 0 and f"found {N}" in res.output


def test_a_killed_dedupes_leftover_is_removed_and_models_parquet_follows_the_umask(scan):
    stale = scan / ".models.parquet.tmp-999999999-abcd1234"  # no such pid: a killed dedupe's
    stale.write_bytes(b"half a file")
    old = os.umask(0o027)
    try:
        dedupe(str(scan), DATA, compact=False)
    finally:
        os.umask(old)
    assert not stale.exists()
    assert (scan / "models.parquet").stat().st_mode & 0o777 == 0o640


def test_an_unreadable_island_checkpoint_is_named_and_counted_not_fatal(scan):
    ck = island_location(resolve(scan), 2) / "checkpoint.json"
    ck.write_bytes(b'{"format": "rayflavor-island/1", "parts": [')  # cut short
    warned = []
    c = dedupe(str(scan), DATA, warn=warned.append)
    assert c.damaged == 1 and c.found == 2000 and any(ck.uri in w and "island 2 skipped" in w for w in warned)


def test_dedupe_estimates_how_much_of_the_space_the_islands_have_seen(scan):
    """The Chao2 estimate printed by dedupe uses the island incidence of every committed row
    (not only the kept ones): recomputed here from the parts with numpy."""
    from click.testing import CliRunner

    from rayflavor.richness import chao2

    rows = pl.concat([pl.from_arrow(p.read_parquet()) for p in committed_parts(resolve(scan))])
    from rayflavor.physics import fn

    q = rows.select(list(fn.CHARGES)).to_numpy()
    expect = chao2(rows["island"].to_numpy(), q)
    c = dedupe(str(scan), DATA, compact=False)
    r = c.richness_unique
    assert (r.observed, r.singletons, r.doubletons, r.units) == (expect.observed, expect.singletons,
                                                                 expect.doubletons, 3)
    assert r.observed == UNIQUE and r.estimate == pytest.approx(expect.estimate)
    assert c.richness_light.observed == c.light_textures
    out = CliRunner().invoke(dedupe_cmd, [str(scan), "--data", DATA, "--no-compact"])
    assert out.exit_code == 0 and "estimated total" in out.output and "Chao2 over 3 islands" in out.output
