"""The species-richness estimator recovers known totals from synthetic island scans."""

from __future__ import annotations

import numpy as np
import pytest

from rayflavor.richness import chao2, chao2_from_counts, discovery_curve


def _scan(rng, total: int, islands: int, per_island: int, spread: float):
    """Islands that each find ``per_island`` models (with repeats) among ``total`` species whose
    detection weights are log-normal with width ``spread`` (0 = all equally easy)."""
    w = np.exp(spread * rng.standard_normal(total))
    p = w / w.sum()
    species = np.concatenate([rng.choice(total, per_island, p=p) for _ in range(islands)])
    units = np.repeat(np.arange(islands), per_island)
    return units, species


@pytest.mark.parametrize("total, spread", [(400, 0.0), (400, 0.3), (2000, 0.3)])
def test_chao2_interval_covers_the_known_total(total, spread):
    """Over 40 synthetic scans per population (32 islands each, a quarter to half of the species
    seen), the 95% interval holds the true total in at least 85% of them, and the estimate is
    far closer to it than the observed count."""
    rng = np.random.default_rng(12)
    hits, rel_err, rel_obs = 0, [], []
    for _ in range(40):
        units, species = _scan(rng, total, islands=32, per_island=total // 60, spread=spread)
        est = chao2(units, species)
        assert est.observed < total
        hits += est.low <= total <= est.high
        rel_err.append(abs(est.estimate - total) / total)
        rel_obs.append((total - est.observed) / total)
    assert hits >= 34, hits
    assert np.median(rel_err) < 0.5 * np.median(rel_obs)


def test_chao2_is_a_lower_bound_under_strong_heterogeneity():
    """Species much harder to find than others (log-normal width 1): the estimate falls short of
    the total, as documented, but still recovers most of what the observed count misses."""
    rng = np.random.default_rng(5)
    recovered = []
    for _ in range(10):
        units, species = _scan(rng, 400, islands=32, per_island=6, spread=1.0)
        est = chao2(units, species)
        assert est.observed < est.estimate < 400
        recovered.append((est.estimate - est.observed) / (400 - est.observed))
    assert np.median(recovered) > 0.4


def test_chao2_saturated_scan_is_exact_and_edge_cases():
    # every species found by every island: nothing left to find
    units = np.repeat(np.arange(5), 10)
    species = np.tile(np.arange(10), 5)
    est = chao2(units, species)
    assert (est.observed, est.estimate, est.low, est.high) == (10, 10.0, 10.0, 10.0)
    assert est.completeness == 1.0
    # one island: no estimate beyond what was seen, and the line says why
    one = chao2(np.zeros(4, int), np.arange(4))
    assert one.estimate == 4 and "needs >= 2 islands" in one.line()
    # no doubletons: the bias-corrected form, still finite and above the observed count
    nd = chao2_from_counts(np.array([1, 1, 1, 3]), m=4)
    assert nd.estimate == pytest.approx(4 + 0.75 * 3 * 2 / 2) and nd.low >= nd.observed
    assert chao2([], []).observed == 0


def test_species_keys_may_be_rows():
    # textures are rows of exponents: two rows equal as a whole are one species
    sp = np.array([[0, 1], [0, 1], [1, 0], [2, 2]])
    est = chao2(np.array([0, 1, 1, 2]), sp)
    assert est.observed == 3 and est.singletons == 2 and est.doubletons == 1


def test_discovery_curve_counts_core_hours_of_parallel_islands():
    units = np.array([0, 0, 1, 1])
    times = np.array([100.0, 3600.0, 200.0, 7200.0])
    species = np.array(["a", "b", "a", "c"])
    hours, found = discovery_curve(units, times, species, busy={0: 3600.0, 1: 7200.0})
    assert found.tolist() == [1, 2, 3]
    # "a" at 100 s: 2 x 100 core-s; "b" at 3600 s: 2 x 3600; "c" at 7200 s: island 0 stopped at 3600
    assert np.allclose(hours * 3600, [200.0, 7200.0, 10800.0])


def test_scan_discovery_reads_committed_parts_and_island_starts(tmp_path):
    """A synthetic 3-island scan whose islands started 100 s apart and found their models over
    an hour: the curve ends at the number of distinct light textures, within the busy core-hours,
    and the figure is drawn."""
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa

    from rayflavor.analysis.discovery import discovery_figure, scan_discovery
    from rayflavor.bench.dedupe import synthetic_parts
    from rayflavor.storage.dedupe import dedupe
    from rayflavor.storage.island_store import IslandStore, committed_parts
    from rayflavor.storage.location import resolve

    src = resolve(tmp_path / "synthetic")
    synthetic_parts(src, 600, 3, rows_per_part=200, duplicate_fraction=0.2, seed=2)
    out = resolve(tmp_path / "scan")
    t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for i in range(3):
        t = pa.concat_tables([p.read_parquet() for p in IslandStore(src, i).committed_parts()])
        found = [t0 + timedelta(seconds=100 * i + 10 + 3000 * k / t.num_rows) for k in range(t.num_rows)]
        t = t.set_column(t.schema.get_field_index("found_at"), "found_at", pa.array(found, pa.timestamp("us", tz="UTC")))
        store = IslandStore(out, i)
        store.load()
        store.commit(t, {}, {}, {"wall_seconds": 3600.0, "starts": [{"at": (t0 + timedelta(seconds=100 * i)).isoformat()}]})
    idle = IslandStore(out, 3)  # an island that ran for an hour and found nothing: still a sampling unit
    idle.load()
    idle.commit(None, {}, {}, {"wall_seconds": 3600.0, "starts": [{"at": t0.isoformat()}]})
    d = scan_discovery(out)
    assert d is not None and d.core_hours == pytest.approx(4.0)
    c = dedupe(out, "nufit-6.0+pdg-2024", compact=False)
    assert d.found[-1] == c.light_textures == d.richness.observed
    assert d.richness == c.richness_light and d.richness.units == 4  # the same estimate as the dedupe's
    assert 0 < d.hours[0] and d.hours[-1] <= 4 * 3010 / 3600
    assert np.all(np.diff(d.hours) >= 0)
    assert discovery_figure(d, tmp_path).is_file()
    assert len(committed_parts(out)) == 3
    from click.testing import CliRunner

    from rayflavor.cli.main import cli

    r = CliRunner().invoke(cli, ["analyze", out.uri])
    assert r.exit_code == 0, r.output
    assert "discovery: " in r.output and "light textures found; estimated total" in r.output
    assert "Chao2 over 4 islands" in r.output
    assert (tmp_path / "scan" / "analysis" / "fn_discovery.png").is_file()


# ---------------------------------------------------------------------------------- the bound from repeats
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rayflavor.richness import poisson_upper, repeat_bound  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 49))
def test_poisson_upper_is_the_mean_that_leaves_five_percent_below_the_count(c):
    """P(X <= c; lam) = 0.05 at the limit, and the limit grows with the count."""
    from math import exp, factorial

    lam = poisson_upper(c)
    assert abs(sum(exp(-lam) * lam**j / factorial(j) for j in range(c + 1)) - 0.05) < 1e-9
    assert poisson_upper(c + 1) > lam > c


def test_poisson_upper_joins_its_two_forms_smoothly_at_fifty():
    exact = poisson_upper(49)
    assert 0 < poisson_upper(50) - exact < 1.2 and poisson_upper(51) - poisson_upper(50) < 1.2


@pytest.mark.parametrize("spread", [0.0, 1.0])
def test_the_repeat_bound_stays_below_the_known_total(spread):
    """Islands that each find distinct species (as an island's tabu makes them) among 20 000,
    equally easy (spread 0) or log-normally heterogeneous: over 100 synthetic scans the bound
    is below the true total in at least 90% (95% expected; heterogeneity only lowers it), and
    with equally easy species it is not vacuous (above the species found)."""
    rng = np.random.default_rng(31)
    total, below, above_found = 20_000, 0, 0
    w = np.exp(spread * rng.standard_normal(total))
    p = w / w.sum()
    for _ in range(100):
        units, species = [], []
        for i in range(12):
            s = rng.choice(total, 60, replace=False, p=p)
            units.append(np.full(60, i))
            species.append(s)
        units, species = np.concatenate(units), np.concatenate(species)
        est = chao2(units, species)
        below += est.at_least <= total
        above_found += est.at_least > est.observed
    assert below >= 90, below
    if spread == 0.0:
        assert above_found >= 90, above_found


def test_the_repeat_bound_counts_pairs_of_finds_from_two_islands():
    """Three islands with 2, 3 and 1 species (pairs 2*3 + 2*1 + 3*1 = 11) and one species found by
    two of them (one repeat)."""
    units = np.array([0, 0, 1, 1, 1, 2])
    species = np.array(["a", "b", "a", "c", "d", "e"])
    assert chao2(units, species).at_least == pytest.approx(11 / poisson_upper(1))
    assert repeat_bound(np.array([2, 1, 1, 1, 1]), np.array([2, 3, 1])) == chao2(units, species).at_least
    assert repeat_bound(np.array([3]), np.array([1, 0, 0])) == 0.0  # one island found anything
