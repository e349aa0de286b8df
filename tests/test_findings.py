"""The FN findings recipes: the commands, the numbers measured from synthetic finished scans, the
IO m_ee contrast over seeds, and the rewrite of the docs' table."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor.analysis.discovery import IslandTimes
from rayflavor.bench.contrast import compare, contrast_dir, contrast_seeds, run_contrast
from rayflavor.bench.findings import (DOCS_END, DOCS_START, FINDINGS, SCANS, ScanRecord, format_table, measure,
                                      read_scan, recipe_targets, replace_between_markers, scan_command)
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
    # the small-m_ee row was measured on a scan steered by a target, the plain NO row was not
    small_line, no_line = table.splitlines()[2:]
    assert r["targets"] == ["m_ee<0.0001"] and "| `m_ee<0.0001` |" in small_line
    assert no["targets"] == [] and "| no-up | — |" in no_line


def test_measure_reads_a_scan_that_committed_no_model(tmp_path):
    """A short targeted scan may end with no model at all: its row says none, it does not fail."""
    out = resolve(tmp_path / "no-up-small-mee")
    _island(out, 0, 3, 0.0, m_ee=[1e-3] * 3, ordering=["NO"] * 3, seed=4)
    dedupe(out, fn.DEFAULT_DATA, compact=False)
    rec = read_scan(out)
    empty = ScanRecord(rec.models.head(0), IslandTimes(rec.times.models.select("island", "island_seconds").head(0),
                                                      {0: 20.0}))
    r = measure(empty, next(f for f in FINDINGS if f.key == "no-up-small-mee"), data.load(fn.DEFAULT_DATA))
    assert (r["valid"], r["selected"], r["light"], r["first_s"], r["islands_with"]) == (0, 0, 0, None, 0)
    assert "| none |" in format_table([r])


def _settings(argv):
    from rayflavor.cli import options
    from rayflavor.cli.scan import build_settings, scan

    ctx = scan.make_context("scan", argv[1:])
    return build_settings(ctx.params["preset"], ctx.params["config"], options.given(ctx))


def test_every_recipe_is_a_valid_scan_command():
    for name in SCANS:
        argv = scan_command(name, islands=2, time_limit="15m", seed=7, out="x")
        assert argv[0] == "scan"
        s = _settings(argv)
        assert s.islands == 2 and s.seed == 7 and s.time_limit == 900 and s.island.restarts == 1000
        assert s.island.target_valid == 200
    s = _settings(scan_command("masses-6", islands=2, time_limit="1m", seed=0, out="x"))
    assert s.island.mass_tolerance == 0.06
    s = _settings(scan_command("io-down", islands=2, time_limit="1m", seed=0, out="x"))
    assert (s.island.ordering, s.island.regime) == ("IO", "down")
    # the small-m_ee findings read scans of their own, steered to m_ee < 1e-4 eV in both regimes
    for regime in ("up", "down"):
        finding = next(f for f in FINDINGS if f.key == f"no-{regime}-small-mee")
        s = _settings(scan_command(finding.scan, islands=2, time_limit="1m", seed=0, out="x"))
        assert (s.island.ordering, s.island.regime, s.island.targets) == ("NO", regime, ("m_ee<0.0001",))
        assert recipe_targets(finding.scan) == ("m_ee<0.0001",)
    assert next(f for f in FINDINGS if f.key == "no-up").scan == "no-up" and recipe_targets("no-up") == ()


def test_findings_command_refuses_unknown_recipes_and_prints_commands(tmp_path):
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", str(tmp_path / "f"), "--only", "nope"])
    assert r.exit_code == 2 and "unknown recipe scan nope" in r.output
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", str(tmp_path / "f"), "--only", "masses-6", "--dry-run"])
    assert r.exit_code == 0 and r.output.count("$ rayflavor scan") == 1 and "masses-6.toml" in r.output
    # each printed command is scan_command's, word for word, the contrast's too (seed k: --seed + k * --islands)
    out = resolve(tmp_path / "f")
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", out.uri, "--only", "no-up-small-mee", "--seed", "4",
                                 "--contrast", "io-mee", "--seeds", "2", "--dry-run"])
    want = [scan_command("no-up-small-mee", islands=2, time_limit="15m", seed=4, out=(out / "no-up-small-mee").uri)]
    want += [scan_command(scan, islands=2, time_limit="15m", seed=s, out=contrast_dir(out, "io-mee", scan, s, 4).uri)
             for s in (4, 6) for scan in ("io-up", "io-down")]
    assert want[1][-1] == (out / "io-up").uri and want[3][-1] == (out / "contrast-io-mee" / "io-up-seed6").uri
    assert r.exit_code == 0 and r.output.splitlines() == ["$ rayflavor " + " ".join(c) for c in want]
    # with the io scans among the findings' own, seed 0 of the contrast is named, not printed twice
    r = CliRunner().invoke(cli, ["bench", "findings", "--out", out.uri, "--only", "io-up,io-down", "--seed", "4",
                                 "--contrast", "io-mee", "--seeds", "2", "--dry-run"])
    assert r.exit_code == 0 and r.output.count("$ rayflavor scan") == 4 and r.output.count("seed 4: the findings'") == 2


def _finished(loc, models: pl.DataFrame) -> None:
    """A finished scan at ``loc`` as the findings read it: scan.json says finished, models.parquet."""
    sink = io.BytesIO()
    models.write_parquet(sink)
    (loc / "models.parquet").write_bytes(sink.getvalue())
    (loc / "scan.json").write_json({"status": "finished"})


def _io_models(mee: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"ordering": ["IO"] * len(mee), "m_ee": mee}, schema={"ordering": pl.String, "m_ee": pl.Float64})


def test_the_contrast_keeps_finished_scans_resumes_the_rest_and_tests_the_per_seed_medians(tmp_path):
    loc = resolve(tmp_path)
    units = contrast_seeds(100, 3, 2)
    assert units == [100, 102, 104]  # island seeds 100..105, none shared
    # seed 0 is the findings' own io scan (the same command), the others have directories of their own
    assert contrast_dir(loc, "io-mee", "io-up", 100, 100).uri == (loc / "io-up").uri
    assert contrast_dir(loc, "io-mee", "io-up", 102, 100).uri == (loc / "contrast-io-mee" / "io-up-seed102").uri
    up = {100: [0.017, 0.018], 102: [0.016], 104: []}  # seed 104 up-leading: no IO model, left out
    down = {100: [0.020, 0.022, 0.021], 102: [0.019], 104: [0.023]}
    for s in units:
        _finished(contrast_dir(loc, "io-mee", "io-up", s, 100), _io_models(up[s]))
    for s in units[:2]:
        _finished(contrast_dir(loc, "io-mee", "io-down", s, 100), _io_models(down[s]))
    # the last scan was interrupted: a dry run prints its resume command, in the interleaved order
    resume = contrast_dir(loc, "io-mee", "io-down", 104, 100)
    (resume / "scan.json").write_json({"status": "running"})
    lines: list[str] = []
    assert run_contrast(loc, "io-mee", seeds=3, islands=2, time_limit="1m", seed=100, address=None, dry_run=True,
                        echo=lines.append) is None
    assert [x.split(":")[0] for x in lines] == ["io-up seed 100", "io-down seed 100", "io-up seed 102",
                                                "io-down seed 102", "io-up seed 104",
                                                f"$ rayflavor scan --resume --out {resume.uri}"]
    _finished(contrast_dir(loc, "io-mee", "io-down", 104, 100), _io_models(down[104]))
    lines.clear()
    r = run_contrast(loc, "io-mee", seeds=3, islands=2, time_limit="1m", seed=100, address=None, dry_run=False,
                     echo=lines.append)
    assert r["n"] == {"up": 2, "down": 3} and r["left_out"] == {"up": [104], "down": []}
    assert r["median"]["up"] == pytest.approx(0.01675) and r["median"]["down"] == pytest.approx(0.021)
    assert r["prob_down_greater"] == 1.0 and r["p"] == pytest.approx(0.2)  # 2 of C(5, 2) splits as extreme
    assert r["verdict"].startswith("down-leading IO m_ee larger: not supported, p = 0.2")
    text = "\n".join(lines)
    assert "left out (no IO model): up-leading seed(s) 104" in text and lines[-1] == r["verdict"]
    assert (loc / "contrast-io-mee.json").read_json()["verdict"] == r["verdict"]


def test_the_contrast_verdict_says_supported_opposite_or_not_testable():
    low = {s: 0.016 + 1e-4 * s for s in range(8)}
    high = {s: 0.020 + 1e-4 * s for s in range(8)}
    r = compare(low, high)
    assert r["verdict"].startswith("down-leading IO m_ee larger: supported, p = 0.00016")
    assert r["effect"] == pytest.approx(0.004) and r["effect_ci"][0] > 0
    assert compare(high, low)["verdict"].startswith("down-leading IO m_ee larger: opposite, p = 0.00016")
    r = compare(low, {s: None for s in range(8)})
    assert r["p"] is None and r["verdict"] == ("down-leading IO m_ee larger: not testable (no seed with such a "
                                               "model down-leading)")


MARKED = f"# t\n\nintro\n{DOCS_START}\n\n| old |\n|---|\n\n{DOCS_END}\n\nafter\n"


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x0b\x0c\x1c\x1d\x1e"
                                       "\x85\u2028\u2029"), max_size=200),
       st.text(max_size=50).filter(lambda t: DOCS_START not in t and DOCS_END not in t))
def test_the_docs_rewrite_changes_only_the_text_between_the_markers(block, around):
    if DOCS_START in block or DOCS_END in block:
        return
    text = around + "\n" + MARKED + around
    new = replace_between_markers(text, block)
    head, tail = text.split(DOCS_START)[0], text.split(DOCS_END)[1]
    assert new.startswith(head + DOCS_START + "\n") and new.endswith(DOCS_END + tail)
    assert replace_between_markers(new, block) == new  # rewriting with the same table changes nothing


def test_findings_rewrites_the_docs_table_and_refuses_a_file_without_markers(tmp_path):
    out = resolve(tmp_path / "f")
    no_up = out / "no-up"
    _island(no_up, 0, 6, 0.0, m_ee=[1e-3] * 6, ordering=["NO"] * 6, seed=3)
    dedupe(no_up, fn.DEFAULT_DATA, compact=False)
    (no_up / "scan.json").write_json({"status": "finished"})
    for s in contrast_seeds(7, 2, 2):
        _finished(contrast_dir(out, "io-mee", "io-up", s, 7), _io_models([0.018, 0.019]))
        _finished(contrast_dir(out, "io-mee", "io-down", s, 7), _io_models([0.016]))
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers here\n")
    args = ["bench", "findings", "--out", out.uri, "--only", "no-up", "--seed", "7", "--time-limit", "1m"]
    r = CliRunner().invoke(cli, [*args, "--docs", str(plain)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("Error: ")
    assert "findings-table:start" in r.output and "no-up" not in r.output  # refused before any scan
    r = CliRunner().invoke(cli, [*args, "--seeds", "3"])
    assert r.exit_code == 2 and "give --contrast too" in r.output
    doc = tmp_path / "findings.md"
    doc.write_text(MARKED)
    r = CliRunner().invoke(cli, [*args, "--contrast", "io-mee", "--seeds", "2", "--docs", str(doc)])
    assert r.exit_code == 0, r.output
    assert "no-up: finished before, kept" in r.output and "$ rayflavor" not in r.output
    text = doc.read_text()
    assert text.startswith("# t\n\nintro\n" + DOCS_START + "\n\n| finding (FN paper) |") and "| old |" not in text
    assert text.endswith(f"\n\n{DOCS_END}\n\nafter\n")
    assert (f"by `rayflavor bench findings --out {out.uri} --islands 2 --time-limit 1m --seed 7 --only no-up "
            f"--contrast io-mee --seeds 2 --docs {doc}` on ") in text
    assert "down-leading IO m_ee larger: not supported, p = 0.33 (2 down-leading and 2 up-leading seeds)" in text
