"""No figure or table claims more than the Chao2 estimator gives: the discovery figure's title,
the discovery table of the report and the text of ``dedupe`` / ``analyze`` say the same about the
estimate of the total (its interval, or "no estimate" and why), and a share "seen" appears only
beside its interval."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rayflavor.analysis import discovery
from rayflavor.analysis.discovery import Discovery, discovery_figure
from rayflavor.richness import chao2_from_counts

#: "estimated total E (95% interval L-H), P% (PL-PH%)" in all three outputs
ESTIMATE = re.compile(r"estimated total (\S+) \(95% interval (\S+)-(\S+)\), (\S+)% \((\S+)-(\S+)%\)")


def _discovery(counts: np.ndarray, islands: int) -> Discovery:
    """A discovery record whose Chao2 is computed from per-species incidence ``counts``."""
    n = int(np.count_nonzero(counts))
    return Discovery(np.linspace(0.1, 1.0, n), np.arange(1, n + 1), chao2_from_counts(counts, islands), 1.0)


def _figure_texts(fig) -> str:
    from matplotlib.text import Text

    return " ".join(t.get_text() for t in fig.findobj(Text))


def test_one_island_figure_claims_no_share_of_a_total(tmp_path, monkeypatch):
    """A one-island scan's curve was titled "96 found, 100% of the estimated total" while
    ``rayflavor dedupe`` said in the same run that an estimate needs >= 2 islands."""
    from matplotlib.figure import Figure

    drawn, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (drawn.append(self), save(self, *a, **k))[1])
    d = _discovery(np.ones(96, np.int64), 1)
    assert discovery_figure(d, tmp_path).is_file()
    (fig,) = drawn
    title, texts = fig.axes[0].get_title(), _figure_texts(fig)
    assert "96 light textures found by 1 island" in title and "no estimate (needs >= 2 islands)" in title
    assert "%" not in texts and "estimated total" not in texts and "Chao2" not in texts, texts


def test_one_island_table_and_text_say_no_estimate():
    d = _discovery(np.ones(96, np.int64), 1)
    row = discovery.discovery_table(d).row(0, named=True)
    assert row["estimated total (Chao2)"] == "no estimate (needs >= 2 islands)" and row["seen"] == "—"
    assert row["islands"] == 1 and row["light textures found"] == 96
    line = d.richness.line()
    assert line == "96 light textures found by 1 island; no estimate (needs >= 2 islands)"


def test_islands_that_found_nothing_give_no_estimate():
    d = _discovery(np.zeros(0, np.int64), 5)
    assert discovery.discovery_table(d).row(0, named=True)["estimated total (Chao2)"] == "no estimate (nothing found)"
    assert "no estimate (nothing found)" in d.richness.line() and "%" not in d.richness.line()


def test_saturated_scan_shows_its_interval_beside_the_share_seen():
    """Every light texture found by 3 of 3 islands: the estimate is what was found, and the share
    seen stands with its interval."""
    d = _discovery(np.full(7, 3, np.int64), 3)
    assert "estimated total 7 (95% interval 7-7), 100% (100-100%) of it seen" in d.richness.line()


def _texts(d: Discovery) -> dict[str, str]:
    """The estimate as the figure's title, the table row and the text output show it."""
    import matplotlib.pyplot as plt

    fig = discovery.discovery_plot(d)
    try:
        title, legend = fig.axes[0].get_title().replace("\n", " "), _figure_texts(fig.axes[0].get_legend())
    finally:
        plt.close(fig)
    row = discovery.discovery_table(d).row(0, named=True)
    total, seen = row["estimated total (Chao2)"], row["seen"]
    table = f"estimated total {total}, {seen}" if seen != "—" else total
    return {"figure": title, "table": table, "text": d.richness.line(), "legend": legend}


@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(0, 6), st.integers(0, 25))))
def test_figure_table_and_text_agree_on_the_estimate(incidence):
    """For any incidence (islands x models, True where the island found the model): the figure's
    title, the table row and the text output agree on whether there is an estimate and, when
    there is one, show the same total, interval and share seen."""
    islands = incidence.shape[0]
    counts = incidence.sum(axis=0)
    expected = islands >= 2 and bool(incidence.any())  # Chao2 needs 2 sampling units and something found
    d = _discovery(counts, islands)
    texts = _texts(d)
    shown = {k: texts[k] for k in ("figure", "table", "text")}
    if not expected:
        why = "no estimate (needs >= 2 islands)" if islands < 2 else "no estimate (nothing found)"
        for where, s in shown.items():
            assert why in s and "%" not in s and "estimated total" not in s, (where, s)
        assert "Chao2" not in texts["legend"]
        return
    parsed = {where: ESTIMATE.search(s) for where, s in shown.items()}
    assert all(parsed.values()), shown
    numbers = {m.groups() for m in parsed.values()}
    assert len(numbers) == 1, shown  # the same total, interval and share seen everywhere
    (total, low, high, seen, seen_low, seen_high), r = numbers.pop(), d.richness
    assert abs(float(total) - r.estimate) <= 0.5 and abs(float(low) - r.low) <= 0.5 and abs(float(high) - r.high) <= 0.5
    assert float(low) <= float(total) <= float(high) and int(low) >= r.observed
    pct = [0 if p == "<1" else int(p) for p in (seen_low, seen, seen_high)]
    assert 0 <= pct[0] <= pct[1] <= pct[2] <= 100
    assert (pct[1] == 100) == (r.estimate == r.observed)  # never "100%" while the estimate exceeds what was found
    assert not any("no estimate" in s for s in shown.values())


@pytest.fixture
def one_island_scan(tmp_path):
    """A committed, deduplicated one-island scan with island start times (as ``rayflavor scan`` writes)."""
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from rayflavor.bench.dedupe import synthetic_parts
    from rayflavor.storage.dedupe import dedupe
    from rayflavor.storage.island_store import IslandStore
    from rayflavor.storage.location import resolve

    src = resolve(tmp_path / "synthetic")
    synthetic_parts(src, 60, 1, rows_per_part=60, duplicate_fraction=0.1, seed=4)
    out = resolve(tmp_path / "scan")
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    t = pa.concat_tables([p.read_parquet() for p in IslandStore(src, 0).committed_parts()])
    found = [t0 + timedelta(seconds=10 + 30 * k) for k in range(t.num_rows)]
    t = t.set_column(t.schema.get_field_index("found_at"), "found_at", pa.array(found, pa.timestamp("us", tz="UTC")))
    store = IslandStore(out, 0)
    store.load()
    store.commit(t, {}, {}, {"wall_seconds": 1800.0, "starts": [{"at": t0.isoformat()}]})
    dedupe(out, "nufit-6.0+pdg-2024", compact=False)
    return tmp_path / "scan"


def test_one_island_scan_says_no_estimate_in_dedupe_analyze_and_the_report(one_island_scan):
    from click.testing import CliRunner

    from rayflavor.cli.main import cli

    ded = CliRunner().invoke(cli, ["dedupe", str(one_island_scan), "--no-compact"])
    ana = CliRunner().invoke(cli, ["analyze", str(one_island_scan), "--html"])
    assert ded.exit_code == 0 and ana.exit_code == 0, ded.output + ana.output
    for out in (ded.output, ana.output):
        assert "light textures found by 1 island; no estimate (needs >= 2 islands)" in out, out
        assert "% of it seen" not in out
    report = (one_island_scan / "analysis" / "report.html").read_text()
    assert "<h2>discovery (Chao2 over islands)</h2>" in report
    assert "no estimate (needs &gt;= 2 islands)" in report and "of it seen" not in report


@settings(max_examples=30, deadline=None)
@given(arrays(np.int64, st.integers(1, 30), elements=st.integers(1, 6)), st.integers(6, 12))
def test_islands_that_exchanged_points_give_a_loose_lower_bound_in_every_output(counts, islands):
    """Migration makes the islands dependent sampling units (docs/methods-fn.md#migration): the
    title, the table and the text all say so beside the estimate, and an independent scan's don't."""
    import dataclasses

    base = _discovery(counts, islands)
    for dependent in (False, True):
        d = dataclasses.replace(base, richness=dataclasses.replace(base.richness, dependent=dependent))
        outputs = [discovery.discovery_title(d).replace("\n", " "), discovery.discovery_table(d)["note"][0],
                   d.richness.line()]
        for text in outputs:
            assert ("loose lower bound" in text) is dependent, text
    # the bound from the repeats between islands, where it says more than the count found
    for at_least in (0.0, base.richness.observed * 10.0 + 7):
        d = dataclasses.replace(base, richness=dataclasses.replace(base.richness, at_least=at_least))
        outputs = [discovery.discovery_title(d).replace("\n", " "), discovery.discovery_table(d)["note"][0],
                   d.richness.line()]
        for text in outputs:
            assert ("by the repeats between islands (95%)" in text) is (at_least > 0), text


@pytest.mark.parametrize(("settings_doc", "exchanged"), [
    ({"migration": "none", "island": {"restart_archive": 0.0}}, False),
    ({"migration": "ring", "island": {"restart_archive": 0.0}}, True),
    ({"migration": "none", "island": {"restart_archive": 0.1}}, True),
    ({"migration": "full"}, True),
    ({}, False),
    (None, False),
])
def test_a_scan_json_says_whether_its_islands_exchanged_points(tmp_path, settings_doc, exchanged):
    import json

    from rayflavor.storage.location import resolve
    from rayflavor.storage.scan_data import islands_exchanged

    out = resolve(str(tmp_path))
    assert islands_exchanged(out) is False  # no scan.json
    (tmp_path / "scan.json").write_text(json.dumps({"settings": settings_doc} if settings_doc is not None else []))
    assert islands_exchanged(out) is exchanged


def test_a_total_far_beyond_the_curve_is_drawn_on_a_log_axis_with_the_bound_from_repeats():
    """3 060 light textures, none found twice by 45 islands (the 2026-12-07 long scan): the Chao2
    band and the bound from repeats lie ~10^3 above the curve; on a linear axis the curve was a flat
    line at zero."""
    import dataclasses

    counts = np.ones(3060, dtype=np.int64)
    per_island = np.full(45, 68)
    base = _discovery(counts, 45)
    d = dataclasses.replace(base, richness=chao2_from_counts(counts, 45, per_island))
    fig = discovery.discovery_plot(d)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert "at least (repeats between islands, 95%)" in labels and "Chao2 95% interval" in labels
    assert all(len(line) <= 90 for line in discovery.discovery_title(d).splitlines())  # inside the figure
    small = discovery.discovery_plot(_discovery(np.array([1, 2, 2, 3]), 4))
    assert small.axes[0].get_yscale() == "linear"
