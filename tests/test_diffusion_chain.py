"""The diffusion chain end to end on Ray (tiny sizes: seconds of work, Ray Train's start-up aside).

``diffusion run`` from the CLI (settings stored whole, a rerun resumes without training again),
the long-round path (one trainer per round, with checkpoints), and two faults once seen that
need Ray: a round with nothing selected, a leftover dataset manifest.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rayflavor import configfile
from rayflavor.cli.main import cli
from rayflavor.methods.diffusion import coordinates, training
from rayflavor.methods.diffusion.settings import FinetuneSettings, SamplingSettings, SelectionSettings, TuneSettings
from rayflavor.physics import seesaw
from rayflavor.storage import runs

pytestmark = pytest.mark.ray

TINY_RUN = ["--n-data", "400", "--train-steps", "30", "--teacher", "none", "--rounds", "2", "--ft-steps", "10", "--n-select", "300",
            "--n", "200", "--coordinates", "paper", "--seed", "4"]
#: the tiny chain's settings that are not options
TINY_CONFIG = ("final_physics = 1\nfinal_project = 0\nfinal_orbits = 0\n[sampling]\nsteps = 3\n"
               "[selection]\nselect = 'cuts'\nmin_select = 50\n")


def _config(tmp_path, text: str) -> list[str]:
    (tmp_path / "tiny.toml").write_text(text)
    return ["--config", str(tmp_path / "tiny.toml")]


def _tiny_network(run):
    """A 400-point dataset (2 shards) and an untrained pre-network, without a trainer."""
    from rayflavor.orchestration.diffusion_dataset import make_dataset
    from rayflavor.orchestration.diffusion_train import load_training_data

    make_dataset(run, n=400, seed=5, shards=2, log=lambda *_: None)
    g, lab, val = load_training_data(runs.dataset_dir(run))
    training.save(runs.network_path(run, "pre"),
                  training.new_state(training.Normalizer.fit(g[~val], lab[~val], "paper"), total_steps=1), with_optimizer=False)


def test_diffusion_run_end_to_end_stores_its_settings_and_resumes(ray_session, tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["diffusion", "run", str(run), *TINY_RUN, *_config(tmp_path, TINY_CONFIG)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = r.output
    assert [l.split(":")[0] for l in out.splitlines() if l.startswith("round ")] == ["round 1", "round 2"]
    assert "solutions, network only:" in out and "solutions, physics guidance 1 steps:" in out
    assert runs.networks(run) == ["pre", "tuned-1", "tuned-2"]
    stored = json.loads((run / "run.json").read_text())["settings"]
    st = configfile.from_mapping(type(configfile.default(FinetuneSettings, "sampling")), stored["sampling"])
    assert st == SamplingSettings(guidance=1.0, n=300, steps=3)  # the chain's rounds, as typed
    assert stored["rounds"] == 2 and stored["final_physics"] == 1 and stored["selection"]["min_select"] == 50
    # every round's set is in RUN/finetune, every final sample in RUN/samples, solutions collected
    assert sorted(p.name for p in (run / "finetune").glob("tuned-*.parquet")) == ["tuned-1.parquet", "tuned-2.parquet"]
    assert runs.solutions_path(run).is_file()
    # a rerun with the stored settings resumes: nothing is trained or sampled again
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("networks/*/model.pt")}
    assert len(stamps) == 3
    again = CliRunner().invoke(cli, ["diffusion", "run", str(run), "--config", str(run / "run.json")],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "already finished" in again.output and "round " not in again.output
    assert "0 shards generated" in again.output
    assert {p: p.stat().st_mtime_ns for p in run.glob("networks/*/model.pt")} == stamps


def test_teacher_chain_end_to_end_learns_from_a_reference_and_resumes(ray_session, tmp_path):
    """The nested teacher's chain: a teacher reference in RUN/teacher (random stream 1), the
    pre-network fine-tuned on its solutions into 'taught', both final samples from 'taught'."""
    import numpy as np
    import polars as pl

    run = tmp_path / "run"
    args = ["--n-data", "400", "--train-steps", "20", "--n", "200", "--seed", "2", "--teacher", "nested",
            *_config(tmp_path, "teacher_tasks = 2\nteacher_live = 30\nteacher_steps = 15\nfinal_project = 20\n"
                               "final_orbits = 3\n[sampling]\nsteps = 3\n")]
    r = CliRunner().invoke(cli, ["diffusion", "run", str(run), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "round " not in r.output and "teacher: 60 solutions" in r.output
    assert "solutions, network only:" in r.output and "solutions, projected 20 steps + orbits 3 sweeps:" in r.output
    assert runs.networks(run) == ["pre", "taught"]
    ref = json.loads((run / "teacher" / "reference.json").read_text())
    assert ref["settings"]["stream"] == 1 and ref["settings"]["seed"] == 2 and ref["settings"]["n_live"] == 30
    rows = pl.read_parquet(run / "finetune" / "taught.parquet")
    assert rows.height == 60 and rows["solution"].all() and set(rows["split"]) == {"train", "val"}
    _, _, d = training.load_model(runs.network_path(run, "taught"))
    assert d["step"] == 15
    # the taught network's normalisation spans the teacher's training solutions in its Casas-Ibarra coordinates
    # (M3 from the heaviest-M3 face; refit to their box), and it keeps their labels, on which each final point is
    # conditioned
    _, norm, d = training.load_model(runs.network_path(run, "taught"))
    train = rows.filter(pl.col("split") == "train")
    g = np.column_stack([train[c].to_numpy() for c in seesaw.PARAMETERS])
    coords = coordinates.encode(g, "casas-ibarra-m3edge")  # the network's 25 features
    assert norm.coordinates == "casas-ibarra-m3edge" and \
        training.load_model(runs.network_path(run, "pre"))[1].coordinates == "casas-ibarra-m3edge"
    assert np.allclose(norm.g_lo, coords.min(axis=0)) and np.allclose(norm.g_hi, coords.max(axis=0))
    np.testing.assert_array_equal(training.solution_labels(d),
                                  np.column_stack([train[c].to_numpy() for c in seesaw.LABELS]))
    tags = sorted(p.name for p in (run / "samples").iterdir())
    assert all(t.startswith("taught-") and "-NO-lsol-" in t for t in tags) and len(tags) == 2
    # the held-out table reads exactly the two final sets (not a round's), against a reference
    table = CliRunner().invoke(cli, ["bench", "diffusion-seeds", str(run), "--reference", str(run / "teacher")],
                               catch_exceptions=False)
    assert table.exit_code == 0, table.output
    from rayflavor.bench import seeds

    row = seeds.seed_row(run, pl.read_parquet(run / "teacher" / "reference.parquet"))
    assert (row.seed, row.teacher, sorted(row.sets)) == (2, "nested", ["guided", "network"])
    assert row.sets["network"].n == row.sets["guided"].n == 200
    assert (row.sets["guided"].physics, row.sets["guided"].project, row.sets["guided"].orbits) == (0, 20, 3)
    assert any(t.endswith("-reflect-proj20-orb3-n200-s4") for t in tags)  # the projected set: its own tag, seed + 2
    sols = pl.from_arrow(runs.read_table(runs.solutions_path(run)))
    assert row.sets["guided"].solutions == sols.filter(pl.col("projection") == 20).height
    # every solution names its sample set (a loop variable once overwrote it with "orbits")
    assert set(sols["sample_set"]) <= set(tags) and (sols.filter(pl.col("projection") == 20)["sample_set"] ==
                                                     next(t for t in tags if "-proj20-" in t)).all()
    # the bench finds the set's solutions by that name
    assert (row.sets["guided"].fidelity is not None) == (row.sets["guided"].solutions > 0)
    assert row.sets["guided"].core_seconds > 0 and table.output.splitlines()[2].startswith(
        "| 2 | nested, casas-ibarra-m3edge, labels solutions, projected 20 steps + orbits 3 sweeps |")
    assert "effective samples per core-second" in table.output
    # beside the network-only set, its floor: the rows the network learned (each chain's last state) against the
    # reference (here the whole teacher they come from)
    floor_row = table.output.split("The network-only set against its floor:")[1].strip().splitlines()[2]
    assert floor_row.startswith("| 2 | ")
    assert float(floor_row.split(" | ")[3].split()[0]) == pytest.approx(row.teacher_fidelity.worst, abs=5e-4)
    assert row.teacher_fidelity.n_run == 60  # 2 tasks x 30 chains, not every kept state
    own = CliRunner().invoke(cli, ["analyze", str(run), "--reference", str(run / "teacher")])
    assert own.exit_code == 2 and "this run's own teacher" in own.output  # not an independent reference
    more = CliRunner().invoke(cli, ["diffusion", "finetune", str(run), "--rounds", "1", "--n-select", "100"])
    assert more.exit_code == 2 and "newest network is 'taught'" in more.output  # no self-training after a teacher
    stamps = {p: p.stat().st_mtime_ns for p in [*run.glob("networks/*/model.pt"), run / "teacher" / "reference.parquet"]}
    again = CliRunner().invoke(cli, ["diffusion", "run", str(run), "--config", str(run / "run.json")],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "teacher: 2 nested" not in again.output and "0 shards generated" in again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # a run of an earlier release names this teacher 'reference': it resumes as the same chain
    manifest = json.loads((run / "run.json").read_text())
    manifest["settings"]["teacher"] = "reference"
    (run / "run.json").write_text(json.dumps(manifest))
    old = CliRunner().invoke(cli, ["diffusion", "run", str(run), *args[:-2]], catch_exceptions=False)
    assert old.exit_code == 0, old.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_importance_teacher_chain_learns_every_resampled_draw(ray_session, tmp_path):
    """``--teacher importance``: the teacher is the exact sampler's reference (random stream 1, the
    chain's seed), the taught network learns every one of its resampled rows, and a rerun keeps it."""
    import polars as pl

    run = tmp_path / "run"
    args = ["--n-data", "400", "--train-steps", "20", "--n", "200", "--seed", "5", "--teacher", "importance",
            *_config(tmp_path, "teacher_tasks = 2\nteacher_proposals = 40000\nteacher_steps = 15\n"
                               "final_project = 0\n[sampling]\nsteps = 3\n")]
    r = CliRunner().invoke(cli, ["diffusion", "run", str(run), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "teacher: 2 tasks of 40000 exact importance draws" in r.output
    ref = json.loads((run / "teacher" / "reference.json").read_text())
    assert (ref["method"], ref["proposals"], ref["settings"]["stream"], ref["settings"]["seed"]) == \
        ("importance", 80_000, 1, 5)
    resampled = pl.read_parquet(run / "teacher" / "reference.parquet")
    rows = pl.read_parquet(run / "finetune" / "taught.parquet")
    assert rows.height == resampled.height == ref["rows"] > 10 and rows["solution"].all()
    assert f"teacher: {rows.height} solutions (resampled draws)" in r.output
    assert sorted(rows["log10_h2_over_m3_ev"].to_list()) == sorted(resampled["log10_h2_over_m3_ev"].to_list())
    assert runs.networks(run) == ["pre", "taught"]
    assert training.load_model(runs.network_path(run, "taught"))[2]["step"] == 15
    stamp = (run / "teacher" / "reference.parquet").stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["diffusion", "run", str(run), *args], catch_exceptions=False)
    assert again.exit_code == 0 and "exact importance draws" not in again.output
    assert (run / "teacher" / "reference.parquet").stat().st_mtime_ns == stamp


def test_long_rounds_get_a_trainer_each_with_checkpoints(ray_session, tmp_path):
    """Rounds longer than ``session_max_steps`` run from the driver (sample tasks, then a trainer
    with checkpoints) through the same round as the short path, and leave the same records."""
    from rayflavor.orchestration.diffusion_rounds import finetune, round_record

    run = tmp_path / "run"
    _tiny_network(run)
    st = FinetuneSettings(rounds=1, sampling=SamplingSettings(n=300, steps=3, guidance=1.0),
                          selection=SelectionSettings(select="nearest", n_best=40), tune=TuneSettings(steps=20))
    lines = []
    out = finetune(run, st, session_max_steps=10, log=lines.append)
    assert [o["network"] for o in out] == ["tuned-1"] and out[0]["step"] == 20
    assert any(l.startswith("round 1:") for l in lines) and any("train: 'tuned-1' finished at step 20" in l for l in lines)
    assert not any("in one trainer" in l for l in lines)
    ckpts = runs.ray_storage(run) / "tuned-1-0"  # its own trainer, checkpointed
    assert any((ckpts / c / "state.pt").is_file() for c in ckpts.list() if c.startswith("checkpoint_"))
    rec = round_record(run, 1)
    assert rec["selected"] == 40 == out[0]["selected"] and rec["sample"]["n"] == 300
    t = runs.read_table(runs.finetune_path(run, "tuned-1"))
    assert t.num_rows == 40 and t.column("split").to_pylist().count("val") == 4
    _, norm, d = training.load_model(runs.network_path(run, "tuned-1"))
    assert d["step"] == 20 and d["meta"]["init"].endswith("networks/pre/model.pt")


def test_finetune_with_nothing_selected_fails_in_one_line(ray_session, tmp_path):
    """``--select cuts --min-select 0`` on a network whose samples meet no cut used to exit 0
    ("rounds 1-1 ... wall 20 s") without a tuned network."""
    run = tmp_path / "run"
    _tiny_network(run)
    r = CliRunner().invoke(cli, ["diffusion", "finetune", str(run), "--n-select", "20", "--select", "cuts",
                                 "--steps", "2", "--train-steps", "10",
                                 *_config(tmp_path, "[selection]\nmin_select = 0\n")])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1].startswith("Error: round 1: only 0 of 20 samples of 'pre' meet the selection")
    assert runs.networks(run) == ["pre"] and not runs.finetune_path(run, "tuned-1").exists()
    assert not (run / "LOCK.json").exists()


def test_a_dataset_that_never_started_does_not_block_the_corrected_command(ray_session, tmp_path):
    """A manifest without any finished part (a failed first attempt) is replaced; a damaged part is
    redone instead of being counted as finished."""
    from rayflavor.orchestration.diffusion_dataset import make_dataset

    run = tmp_path / "run"
    runs.write_json({"n": 20, "seed": -1, "shards": 1, "data": seesaw.DEFAULT_DATA, "ordering": "NO",
                     "val_fraction": 0.1}, runs.dataset_dir(run) / "manifest.json")
    info = make_dataset(run, n=40, seed=1, shards=2, log=lambda *_: None)
    assert info["generated_shards"] == 2
    part = runs.part_path(runs.dataset_dir(run), 1)
    good = runs.read_table(part)
    part.write_bytes(part.read_bytes()[:100])
    info = make_dataset(run, n=40, seed=1, shards=2, log=lambda *_: None)
    assert info["generated_shards"] == 1
    assert runs.read_table(part).equals(good)
    runs.require_dataset(run)  # readable, the manifest's row counts
    with pytest.raises(ValueError, match="other settings"):
        make_dataset(run, n=40, seed=2, shards=2, log=lambda *_: None)
