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
