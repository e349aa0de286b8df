"""``rayflavor diffusion``: user mistakes in the order of the steps."""

import pytest
from click.testing import CliRunner

from rayflavor.cli.main import cli


@pytest.mark.parametrize("args, message", [
    (["train"], "no training data"),
    (["sample", "--n", "10"], "no trained network"),
    (["sample", "--n", "10", "--network", "tuned-7"], "has no network 'tuned-7'"),
    (["finetune"], "no trained network"),
])
def test_diffusion_steps_out_of_order_fail_in_one_line_before_ray_starts(tmp_path, monkeypatch, args, message):
    import rayflavor.orchestration.runtime as runtime

    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a run that cannot proceed")

    monkeypatch.setattr(runtime, "ensure_ray", no_ray)
    run = tmp_path / "run"
    run.mkdir()
    r = CliRunner().invoke(cli, ["diffusion", args[0], str(run), *args[1:]])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def _network_run(run):
    """A run directory with an untrained pre-network (enough for the CLI to get past its checks)."""
    import numpy as np

    from rayflavor.methods.diffusion import training
    from rayflavor.physics import seesaw
    from rayflavor.storage import runs

    g = seesaw.sample_prior(50, np.random.default_rng(0))
    lab = seesaw.labels(seesaw.evaluate(g))
    ok = np.isfinite(lab).all(1)
    training.save(runs.network_path(run, "pre"),
                  training.new_state(training.Normalizer.fit(g[ok], lab[ok], "paper"), total_steps=1), with_optimizer=False)


def test_a_dead_holder_does_not_block_a_run_directory(tmp_path, monkeypatch):
    """A lease left by a process that no longer exists is taken over at once; a command holds the
    lease while it works and releases it afterwards."""
    import json
    import os
    import socket
    import time

    import rayflavor.orchestration.runtime as runtime

    monkeypatch.setattr(runtime, "ensure_ray", lambda *a, **k: None)
    run = tmp_path / "run"
    _network_run(run)
    dead = 2 ** 22 + 12345
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
        except PermissionError:
            dead += 1
    (run / "LOCK.json").write_text(json.dumps({"owner": "x", "host": socket.gethostname(), "pid": dead,
                                                "token": "t", "expires_at": time.time() + 600}))
    r = CliRunner().invoke(cli, ["diffusion", "sample", str(run), "--guidance", "nan"])
    assert r.exit_code == 2 and "guidance" in r.output  # got past the lease check to the settings
    calls = []
    import rayflavor.orchestration.diffusion_sample as ds_mod

    monkeypatch.setattr(ds_mod, "sample_run", lambda *a, **k: calls.append((run / "LOCK.json").exists()))
    r = CliRunner().invoke(cli, ["diffusion", "sample", str(run), "--n", "10"])
    assert r.exit_code == 0, r.output
    assert calls == [True]  # held while it worked
    assert not (run / "LOCK.json").exists()  # released afterwards


@pytest.mark.parametrize("args, message", [
    (["--labels", "solutions"], "network 'pre' keeps no solution labels"),
    (["--labels", "solutions", "--ordering", "IO"], "use labels 'central' for IO"),
])
def test_sampling_options_the_network_cannot_serve_fail_in_one_line_before_ray_starts(tmp_path, monkeypatch, args,
                                                                                        message):
    import rayflavor.orchestration.runtime as runtime

    monkeypatch.setattr(runtime, "ensure_ray", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Ray started")))
    run = tmp_path / "run"
    _network_run(run)
    r = CliRunner().invoke(cli, ["diffusion", "sample", str(run), "--n", "10", *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
