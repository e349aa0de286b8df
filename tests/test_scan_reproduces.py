"""The scan reproduces its recorded populations: the settings rework changed no search.

The hashes were recorded on the code before the settings were declared with
:mod:`rayflavor.settings_model` (commit cc27733): one in-process island per preset and seed, 30
generations, the SHA-256 of its state arrays (population, objectives, found set).  A search's
trajectory is the library versions' as much as the seed's (numpy 2.4.6, numba 0.68.1, pymoo 0.6.2
here): after an upgrade, record the hashes again on the code before the change under test.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from rayflavor.methods.ga.island import ISLAND_PRESETS, make_island
from rayflavor.physics import data

RECORDED = {("fast", 1): "f9292694edfac364", ("fast", 2): "4a5367251ce7be84",
            ("paper", 1): "dccd82ebafb74c72", ("paper", 2): "76b13e38cd8e51c2"}


def population_hash(config, seed: int, generations: int = 30) -> str:
    isl = make_island(config, data.load("nufit-6.0+pdg-2024"), island=0, seed=seed)
    for _ in range(generations):
        isl.step()
    _, arrays = isl.get_state()
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("preset, seed", sorted(RECORDED))
def test_an_island_reproduces_its_recorded_population(preset, seed):
    assert population_hash(ISLAND_PRESETS[preset], seed) == RECORDED[preset, seed]


def test_the_cli_builds_the_islands_the_presets_define(tmp_path):
    """What `rayflavor scan` runs is the preset with the options typed laid over it (so the hashes
    above are the scan's too)."""
    from rayflavor.cli import options
    from rayflavor.cli.scan import build_settings, scan

    def built(*argv):
        ctx = scan.make_context("scan", list(argv))
        return build_settings(ctx.params["preset"], ctx.params["config"], options.given(ctx))

    assert built().island == ISLAND_PRESETS["fast"]
    assert built("--preset", "paper", "--regime", "down").island == replace(ISLAND_PRESETS["paper"], regime="down")
    cfg = tmp_path / "c.toml"
    cfg.write_text("islands = 3\n[island]\npatience = 7\nregime = 'down'\n")
    s = built("--config", str(cfg), "--regime", "up", "--islands", "5")
    assert s.islands == 5 and s.island == replace(ISLAND_PRESETS["fast"], patience=7)
