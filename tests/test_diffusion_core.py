"""Diffusion method without Ray: schedule, network folding, samplers, CFG, selection, training, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rayflavor.methods.diffusion import selection, training
from rayflavor.methods.diffusion.ddpm import EpsNet, FoldedNet, NoiseSchedule, cfg, guided_eps_fn, sample, timesteps


def test_schedule_matches_eqs_2_13_2_14():
    s = NoiseSchedule()
    t = np.arange(1, 1001)
    beta = (1 - t / 1000) * 1e-4 + t / 1000 * 0.02
    np.testing.assert_allclose(s.betas[1:].numpy(), beta, rtol=1e-6)
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), np.cumprod(1 - beta), rtol=1e-5)
    assert s.alpha_bars.dtype == torch.float32 and s.alpha_bars64.dtype == torch.float64


def test_forward_noising_closed_form():
    """q_sample is eq. 2.12 exactly, and its samples have mean sqrt(ab) x0 and variance 1 - ab."""
    s = NoiseSchedule()
    x0 = torch.tensor([[0.7, -0.3]]).expand(200_000, 2).contiguous()
    for t_ in (1, 100, 500, 1000):
        t = torch.full((x0.shape[0],), t_)
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t_))
        xt = s.q_sample(x0, t, eps)
        ab = float(np.prod(1 - ((1 - np.arange(1, t_ + 1) / 1000) * 1e-4 + np.arange(1, t_ + 1) / 1000 * 0.02)))
        torch.testing.assert_close(xt, np.sqrt(ab) * x0 + np.sqrt(1 - ab) * eps, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(xt.mean(0).numpy(), np.sqrt(ab) * x0[0].numpy(), atol=0.01)
        np.testing.assert_allclose(xt.var(0).numpy(), [1 - ab] * 2, rtol=0.02, atol=1e-5)


def test_folded_network_equals_table2_network():
    torch.manual_seed(0)
    net = EpsNet()
    assert [l.in_features for l in net.layers] == [35, 76, 140, 268, 524, 268, 140, 76]
    assert [l.out_features for l in net.layers] == [64, 128, 256, 512, 256, 128, 64, 23]
    fast = FoldedNet(net)
    x = torch.randn(300, 23)
    lab = torch.randn(11)
    ts = torch.tensor([0.001, 0.5, 1.0])
    b = fast.biases(torch.cat([lab.expand(3, 11), ts[:, None]], 1))
    for k in range(3):
        ref = net(x, ts[k].expand(300), lab.expand(300, 11))
        torch.testing.assert_close(fast(x, b, k), ref, atol=2e-5, rtol=1e-4)


def test_cfg_gamma_one_is_conditional():
    torch.manual_seed(1)
    e_u, e_c = torch.randn(10, 23), torch.randn(10, 23)
    torch.testing.assert_close(cfg(e_u, e_c, 1.0), e_c)
    torch.testing.assert_close(cfg(e_u, e_c, 0.0), e_u)
    net = FoldedNet(EpsNet())
    lab = torch.randn(11)
    s = NoiseSchedule()
    x = torch.randn(64, 23)
    ts = timesteps(1000, 20)
    f1 = guided_eps_fn(net, lab, schedule=s, steps=20, guidance=1.0)
    f3 = guided_eps_fn(net, lab, schedule=s, steps=20, guidance=3.0)
    cond = net(x, net.biases(torch.cat([lab, torch.tensor([ts[5] / 1000])])[None]), 0).clone()
    unc = net(x, net.biases(torch.cat([torch.zeros(11), torch.tensor([ts[5] / 1000])])[None]), 0).clone()
    torch.testing.assert_close(f1(x, 5).clone(), cond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f3(x, 5).clone(), -2 * unc + 3 * cond, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("sampler,steps,rtol", [("ddpm", 1000, 0.06), ("ddim", 1000, 0.06), ("ddpm", 100, 0.15),
                                                ("ddim", 200, 0.08)])
def test_samplers_reproduce_gaussian_with_exact_noise_predictor(sampler, steps, rtol):
    """For x0 ~ N(mu, s^2): E[eps | x_t] = sqrt(1-ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab).

    All T steps: within sampling noise. Fewer steps: the discretisation error (variance too
    large for respaced DDPM with sigma^2 = beta', too small for DDIM) stays below rtol.
    """
    s = NoiseSchedule()
    mu = torch.tensor([0.5, -0.2, 0.0])
    var = torch.tensor([0.04, 0.25, 1.0])
    ts = timesteps(1000, steps)
    ab = s.alpha_bars64.numpy()[ts]

    def eps_fn(x, k):
        a = float(ab[k])
        return np.sqrt(1 - a) * (x - np.sqrt(a) * mu) / (a * var + 1 - a)

    g = torch.Generator().manual_seed(3)
    x = sample(eps_fn, torch.randn(40_000, 3, generator=g), schedule=s, sampler=sampler, steps=steps, generator=g, bound="clamp")
    np.testing.assert_allclose(x.mean(0).numpy(), mu.numpy(), atol=0.02)
    np.testing.assert_allclose(x.var(0).numpy(), var.numpy(), rtol=rtol)


def test_selection_picks_exactly_the_rows_meeting_the_conditions():
    rng = np.random.default_rng(0)
    n = 5000
    chi2_mass = 10 ** rng.uniform(1, 4, n)
    chi2_mix = 10 ** rng.uniform(2.5, 4.5, n)
    chi2 = chi2_mass + chi2_mix + 10 ** rng.uniform(0, 3.5, n)
    chi2[:3] = np.nan
    got = selection.select(chi2, chi2_mass, chi2_mix)
    want = [bool(c < 5.5e3 and (m < 1e3 or x < 4.5e3)) for c, m, x in zip(chi2, chi2_mass, chi2_mix)]
    assert got.tolist() == want
    assert 0 < got.sum() < n
    c = selection.conditions(chi2_mass[got], chi2_mix[got])
    assert sum(c.values()) == got.sum()


def _toy(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.uniform(-1, 1, (n, 23))
    lab = np.c_[g[:, :11] * 2 + 1]
    return g, lab


def test_training_loss_falls_and_resume_continues_exactly(tmp_path):
    torch.set_num_threads(1)
    g, lab = _toy()
    norm = training.Normalizer.fit(g, lab, "paper")
    x, l = torch.from_numpy(norm.g_to_net(g)), torch.from_numpy(norm.labels_to_net(lab))
    s = NoiseSchedule()
    losses = []
    torch.manual_seed(0)
    a = training.new_state(norm, total_steps=400)
    training.train_loop(a, s, x, l, every=100, on_report=lambda st, loss: losses.append(loss))
    assert losses[-1] < 0.8 * losses[0]
    # interrupted + resumed run == uninterrupted run
    torch.manual_seed(1)
    b = training.new_state(norm, total_steps=60)
    init = {k: v.clone() for k, v in b.model.state_dict().items()}
    training.train_loop(b, s, x, l, stop_at=30, every=1000)
    training.save(tmp_path / "c.pt", b)
    c = training.load_state(tmp_path / "c.pt")
    assert c.step == 30
    training.train_loop(c, s, x, l, every=1000)
    torch.manual_seed(1)
    d = training.new_state(norm, total_steps=60)
    d.model.load_state_dict(init)
    training.train_loop(d, s, x, l, stop_at=30, every=1000)
    training.train_loop(d, s, x, l, every=1000)
    for k, v in d.model.state_dict().items():
        torch.testing.assert_close(c.model.state_dict()[k], v)
    assert c.step == 60 and c.scheduler.last_epoch == d.scheduler.last_epoch


@pytest.mark.parametrize("sampler,steps", [("ddpm", 100), ("ddim", 50)])
def test_clip_keeps_samples_inside_the_data_range(sampler, steps):
    """A predictor whose data sit at x0 = 3 (outside [-1, 1]): without clip the samples end near 3,
    with clip = 1 every sample ends at 1 (x0_hat is clamped at every step, the last step returns it)."""
    s = NoiseSchedule()
    ts = timesteps(1000, steps)
    ab = s.alpha_bars64.numpy()[ts]

    def eps_fn(x, k):  # exact for the point mass x0 = 3
        return (x - np.sqrt(ab[k]) * 3.0) / np.sqrt(1 - ab[k])

    g = torch.Generator().manual_seed(0)
    free = sample(eps_fn, torch.randn(500, 4, generator=g), schedule=s, sampler=sampler, steps=steps, generator=g, bound="clamp")
    assert (free - 3.0).abs().max() < 0.05
    clipped = sample(eps_fn, torch.randn(500, 4, generator=g), schedule=s, sampler=sampler, steps=steps, generator=g,
                     clip=1.0, bound="clamp")
    torch.testing.assert_close(clipped, torch.ones_like(clipped), atol=1e-4, rtol=0)


def test_window_miss_is_zero_exactly_for_solutions_and_nearest_takes_them_first():
    """On real seesaw points around a solution: miss == 0 <=> the 3 sigma solution flag, and the
    nearest-k selection holds every solution before any non-solution, non-solutions by miss."""
    from importlib import resources

    import pyarrow.parquet as pq

    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    ds = physics_data.load(seesaw.DEFAULT_DATA)
    t = pq.read_table(resources.files("rayflavor.examples") / "seesaw_example.parquet")
    x = seesaw.from_columns({c: t.column(c).to_numpy() for c in seesaw.PARAMETERS})
    x0 = x[seesaw.evaluate(x, data=ds)["solution"]][0]
    rng = np.random.default_rng(4)
    scale = np.repeat(10.0 ** np.linspace(-4, -1, 6), 100)[:, None]
    pts = x0 * (1 + scale * rng.normal(size=(600, x0.size)))
    res = seesaw.evaluate(pts, data=ds)
    values = np.stack([res[n] for n in seesaw.SOLUTION_TERMS], axis=1)
    miss = selection.window_miss(values, seesaw.solution_windows(ds, "NO"))
    sol = res["solution"]
    assert 20 < sol.sum() < 580  # both kinds present
    np.testing.assert_array_equal(miss == 0, sol)
    k = int(sol.sum()) + 50
    m = selection.nearest(miss, res["chi2"], k)
    assert m.sum() == k and m[sol].all()
    assert miss[m].max() <= miss[~m].min()
    # the set grows with the solutions it holds (--per-solution), never below n_best, never drops one
    n_sol = int(sol.sum())
    assert selection.nearest_size(miss, 10, per_solution=2) == 2 * n_sol
    assert selection.nearest_size(miss, 10, per_solution=0.0) == n_sol
    assert selection.nearest_size(miss, 2 * n_sol + 1, per_solution=2) == 2 * n_sol + 1
    import pyarrow as pa

    from rayflavor.methods.diffusion.rounds import selected_rows
    from rayflavor.methods.diffusion.settings import SelectionSettings

    table = pa.table({k: np.asarray(v) for k, v in res.items() if np.ndim(v) == 1})
    rows, _ = selected_rows(table, SelectionSettings(select="nearest", n_best=10, per_solution=1.5))
    assert rows.num_rows == int(1.5 * n_sol) < len(pts)
    assert int(np.sum(rows.column("solution").to_numpy())) == n_sol


def test_refit_without_solutions_maps_the_finetuning_set_onto_the_unit_box():
    g, lab = _toy()
    norm = training.Normalizer.fit(g, lab, "paper")
    sub_g, sub_l = g[:200] * 0.05 + 0.3, lab[:200]
    sub_g[:, 5] = 0.7  # a column the selection pinned to one value (e.g. clamped on a prior face)
    new = norm.refit(sub_g, sub_l, "solutions")  # no solution marked: the whole set's range
    x = new.g_to_net(sub_g)
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x.min(0)[np.arange(23) != 5], -1, atol=1e-6)
    np.testing.assert_allclose(x.max(0)[np.arange(23) != 5], 1, atol=1e-6)
    np.testing.assert_allclose(new.g_from_net(x), sub_g, rtol=0, atol=1e-6)  # round trip, float32 net units
    np.testing.assert_allclose(new.labels_to_net(sub_l).std(0), 1, atol=1e-4)
    assert norm.refit(sub_g, sub_l, "none") is norm
    for removed in ("all", "labels"):  # rejected by the measurements (README); no silent fallback
        with pytest.raises(ValueError, match="refit must be one of"):
            norm.refit(sub_g, sub_l, removed)


def test_refit_solutions_maps_the_solutions_onto_the_unit_box_and_standardises_every_label():
    g, lab = _toy()
    norm = training.Normalizer.fit(g, lab, "paper")
    sub_g, sub_l = g[:400], lab[:400]
    focus = np.zeros(400, bool)
    focus[:50] = True
    sub_g[:50] = sub_g[:50] * 0.1 + 0.2  # the solutions: a small cluster inside the set
    new = norm.refit(sub_g, sub_l, "solutions", focus)
    x = new.g_to_net(sub_g)
    np.testing.assert_allclose(x[:50].min(0), -1, atol=1e-6)
    np.testing.assert_allclose(x[:50].max(0), 1, atol=1e-6)
    assert np.abs(x[50:]).max() > 2  # the near-misses lie outside, still in the training set
    np.testing.assert_allclose(new.labels_to_net(sub_l).std(0), 1, atol=1e-4)  # over every row
    np.testing.assert_allclose(new.labels_to_net(sub_l).mean(0), 0, atol=1e-5)
    few = focus & (np.arange(400) < training.MIN_FOCUS - 1)  # too few solutions: the whole set, as "all"
    for f in (few, None):
        r = norm.refit(sub_g, sub_l, "solutions", f)
        np.testing.assert_array_equal(r.g_lo, training.Normalizer.fit(sub_g, sub_l, "paper").g_lo)


def _near_known_solution(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` seesaw points scattered by relative ``noise`` around the shipped example's first row,
    a known NO solution: some stay solutions, some do not."""
    from rayflavor import examples
    from rayflavor.physics import seesaw
    from rayflavor.storage.tables import read_columns

    x0 = seesaw.from_columns(read_columns(examples.path("seesaw")))[:1]
    return np.repeat(x0, n, axis=0) * (1 + rng.normal(0, noise, (n, x0.shape[1])))


def test_label_solutions_is_the_solution_flag_of_the_exact_physics():
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    ds = physics_data.load(seesaw.DEFAULT_DATA)
    rng = np.random.default_rng(4)
    x = np.concatenate([_near_known_solution(400, 0.01, rng), seesaw.sample_prior(200, rng)])
    for ordering in ("NO", "IO"):
        res = seesaw.evaluate(x, ordering=ordering, data=ds)
        got = selection.label_solutions(seesaw.labels(res), seesaw.solution_windows(ds, ordering), ordering)
        np.testing.assert_array_equal(got, res["solution"])
        if ordering == "NO":
            assert 20 < got.sum() < 400  # both kinds of row are present


def test_bench_flops_count_the_folded_matmul_weights_and_cli_reports_ratios():
    """The flop count behind the GFLOP/s figure is 2 x the per-row weights of the folded network;
    the CLI's JSON carries every rate it prints."""
    import json

    from click.testing import CliRunner

    from rayflavor.cli.main import cli
    from rayflavor.bench.diffusion import flops_per_forward

    net = EpsNet()
    assert flops_per_forward(net) == 2 * sum(w.numel() for w in FoldedNet(net).w_h) == 2 * 347_008
    out = CliRunner().invoke(cli, ["bench", "diffusion", "--batch", "32", "--steps", "2", "--seconds", "0.1", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.output)
    assert r["matmul_bound"] > 0 and r["gemm_gflops"] > 0 and r["ddim"] > 0
    assert r["matmul_gflops"] == pytest.approx(r["matmul_bound"] * 2 * 347_008 / 1e9)


def test_finetune_state_with_refit_solutions_takes_the_g_range_of_the_exact_solutions(tmp_path):
    """The fine-tuning state finds the set's solutions from their labels (NO windows) and maps exactly
    their range onto [-1, 1]."""
    from rayflavor.methods.diffusion.rounds import finetune_state
    from rayflavor.methods.diffusion.settings import TuneSettings
    from rayflavor.physics import data as physics_data
    from rayflavor.physics import seesaw

    ds = physics_data.load(seesaw.DEFAULT_DATA)
    x = _near_known_solution(600, 0.02, np.random.default_rng(9))
    res = seesaw.evaluate(x, data=ds)
    lab, sol = seesaw.labels(res), np.asarray(res["solution"], bool)
    assert 20 < sol.sum() < 500
    init = tmp_path / "pre.pt"
    training.save(init, training.new_state(training.Normalizer.fit(x, lab, "paper"), total_steps=10), with_optimizer=False)
    state = finetune_state(init, x, lab, TuneSettings(refit="solutions", steps=10))
    np.testing.assert_allclose(state.norm.g_lo, x[sol].min(0), rtol=1e-12)
    np.testing.assert_allclose(state.norm.g_hi, x[sol].max(0), rtol=1e-12)
    few = finetune_state(init, x[~sol], lab[~sol], TuneSettings(refit="solutions", steps=10))  # no solution
    np.testing.assert_allclose(few.norm.g_lo, x[~sol].min(0), rtol=1e-12)
    assert finetune_state(init, x, lab, TuneSettings(refit="none", steps=10)).norm.g_lo.tolist() == \
        training.Normalizer.fit(x, lab, "paper").g_lo.tolist()
    # the network keeps exactly its solutions' labels (the labels of `--labels solutions`), through a save
    training.save(tmp_path / "tuned.pt", state, with_optimizer=False)
    kept = training.solution_labels(training.load_model(tmp_path / "tuned.pt")[2])
    np.testing.assert_array_equal(kept, lab[sol])
    assert training.solution_labels(training.load_model(init)[2]) is None
    assert len(training.kept_labels(np.zeros((training.MAX_SOLUTION_LABELS + 7, 11)))) == training.MAX_SOLUTION_LABELS


def test_a_label_per_row_is_the_network_conditioned_row_by_row():
    """guided_eps_fn with one label per row equals the table-2 network called on each row's label, for
    the conditional pass, the empty label and CFG in between; and generate() with every row on the same
    label draws exactly the points of that one label."""
    from rayflavor.methods.diffusion.generate import generate

    torch.manual_seed(3)
    net = EpsNet()
    net.eval()
    fast = FoldedNet(net)
    s = NoiseSchedule()
    x, lab = torch.randn(40, 23), torch.randn(40, 11)
    ts = timesteps(1000, 10)
    for gamma in (0.0, 1.0, 2.5):
        f = guided_eps_fn(fast, lab, schedule=s, steps=10, guidance=gamma)
        for k in (0, 4, 9):
            t = torch.full((40,), float(ts[k]) / 1000)
            with torch.no_grad():
                ref = (1 - gamma) * net(x, t, torch.zeros(40, 11)) + gamma * net(x, t, lab)
            torch.testing.assert_close(f(x, k).clone(), ref, atol=2e-5, rtol=1e-4)
    g = np.random.default_rng(4).uniform(-1, 1, (200, 23))
    norm = training.Normalizer.fit(g, np.random.default_rng(5).normal(size=(200, 11)), "paper")
    one = np.random.default_rng(6).normal(size=11)
    common = {"steps": 5, "seed": 1, "sampler": "ddim", "bound": "clamp", "project": 0, "outside": "bound"}
    a = generate(fast, norm, one, 50, guidance=1.0, **common).points
    b = generate(fast, norm, np.tile(one, (50, 1)), 50, guidance=1.0, **common).points
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)  # float32: the label and time parts are added apart
    with pytest.raises(ValueError, match="needs 50 labels"):
        generate(fast, norm, np.tile(one, (49, 1)), 50, guidance=8.0, **common)


def _outside_fixture():
    """A network in the paper's coordinates (untrained: the reverse process is replaced in these tests)."""
    torch.manual_seed(3)
    net = EpsNet()
    net.eval()
    g = np.random.default_rng(4).uniform(-1, 1, (200, 23))
    norm = training.Normalizer.fit(g, np.random.default_rng(5).normal(size=(200, 11)), "paper")
    return FoldedNet(net), norm, np.random.default_rng(6).normal(size=11)


def test_redrawn_samples_all_lie_in_the_prior_box_and_the_first_draws_inside_are_kept_unchanged(monkeypatch):
    """outside 'redraw': every point inside the prior box; ``drawn`` counts the redrawn draws; the
    first batch's draws that were inside are exactly the points outside 'bound' gives for those rows
    (the same noise; a point inside is never moved by the bound).  The reverse process is replaced
    by x_T * 0.4, so that ~1/4 of the draws leave [-1, 1] in some feature."""
    from rayflavor.methods.diffusion import generate as gen

    net, norm, one = _outside_fixture()
    monkeypatch.setattr(gen, "sample", lambda fn, x, **kw: x.mul_(0.4))
    common = {"steps": 5, "seed": 2, "sampler": "ddim", "bound": "clamp", "project": 0, "guidance": 1.0}
    plain = gen.generate(net, norm, one, 400, outside="bound", **common)
    red = gen.generate(net, norm, one, 400, outside="redraw", **common)
    assert plain.drawn == 400 and red.points.shape == plain.points.shape
    lo, hi = norm.g_lo, norm.g_hi
    assert ((red.points >= lo) & (red.points <= hi)).all()
    # the bound run's points on a face are the ones that were outside: that many draws were redrawn first
    tol = 1e-9 * (hi - lo)
    on_face = (np.isclose(plain.points, lo, rtol=0, atol=tol) | np.isclose(plain.points, hi, rtol=0, atol=tol)).any(axis=1)
    assert 40 < on_face.sum() < 200 and red.drawn >= 400 + on_face.sum()
    np.testing.assert_array_equal(red.points[~on_face], plain.points[~on_face])
    # the redrawn rows are new draws: none repeats a point of the first batch
    assert not np.isin(red.points[on_face][:, 0], red.points[~on_face][:, 0]).any()


def test_a_network_that_never_lands_in_the_prior_box_stops_with_one_line(monkeypatch):
    from rayflavor.methods.diffusion import generate as gen

    net, norm, one = _outside_fixture()
    monkeypatch.setattr(gen, "sample", lambda fn, x, **kw: x.fill_(3.0))  # every draw far outside
    with pytest.raises(ValueError, match=r"only 0 of \d+ draws of this network fall inside the prior box"):
        gen.generate(net, norm, one, 50, steps=2, seed=1, sampler="ddim", bound="clamp", project=0, guidance=1.0,
                     outside="redraw", batch=4096)
    with pytest.raises(ValueError, match="outside must be one of bound, redraw"):
        gen.generate(net, norm, one, 5, steps=2, seed=1, sampler="ddim", bound="clamp", project=0, guidance=1.0,
                     outside="drop")


def test_a_split_column_is_typed_string_also_on_an_empty_shard():
    """An empty dataset shard once had a null-typed ``split`` column, so training failed on a
    schema mismatch between parts."""
    import pyarrow as pa

    from rayflavor.methods.diffusion.data import dataset_shard, with_split

    t = dataset_shard(0, 0, 0)
    assert t.num_rows == 0 and t.schema.field("split").type == pa.string()
    assert with_split(t.drop_columns(["split"]), 0).schema.field("split").type == pa.string()
    full = dataset_shard(30, 0, 0)
    assert full.schema == t.schema and full.column("split").to_pylist().count("val") == 3


def test_progress_bars_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, capsys):
    """Off a terminal (or with another log function) a bar prints nothing; on one, nested bars share
    one rich display with rate and ETA, and lines logged meanwhile still reach the output."""
    import io
    import sys

    from rayflavor.orchestration import diffusion_progress as dp

    with dp.bar("sample", 10, "samples", log=lambda *_: None) as update:
        update(5)
    assert not dp.interactive(lambda *_: None)
    out = io.StringIO()
    out.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", out)
    assert dp.interactive(print)
    with dp.bar("rounds 1-2", 2, "rounds") as outer:
        with dp.bar("train tuned-1", 100, "steps") as inner:
            inner(50)
            print("round 1: done")
            inner(100)
        outer(1)
        assert dp._live is not None
    assert dp._live is None
    assert "round 1: done" in out.getvalue()
    ticks = []
    with dp.polling(lambda: ticks.append(1), interval=0.01):
        import time
        time.sleep(0.1)
    assert len(ticks) >= 2


def test_a_summary_counts_the_redrawn_draws_and_says_so_and_older_parts_drew_n():
    from rayflavor.methods.diffusion.sampleset import drawn_note, summarize

    part = {"n": 100, "solutions": 99, "selected": 0, "seconds_sample": 1.0}
    s = summarize([{**part, "drawn": 150}, part])  # the second part was written before `outside` existed
    assert (s["n"], s["drawn"], s["fraction"], s["fraction_drawn"]) == (200, 250, 0.99, 198 / 250)
    assert drawn_note(s) == "; 0.792 of all draws, 50 redrawn outside the prior box"
    assert drawn_note(summarize([part])) == ""
