"""``--bound``: clamp piles samples on the faces of [-1, 1], reflect does not."""

from __future__ import annotations

import numpy as np
import torch

from rayflavor.methods.diffusion.sampleset import SampleSet
from rayflavor.methods.diffusion.ddpm import bounded
from rayflavor.methods.diffusion.settings import SamplingSettings


def test_reflect_keeps_every_point_inside_without_a_point_mass_on_the_faces():
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.6
    clamped = bounded(x.clone(), -1.0, 1.0, "clamp")
    reflected = bounded(x.clone(), -1.0, 1.0, "reflect")
    outside = float((x.abs() > 1).double().mean())
    assert abs(float((clamped.abs() == 1).double().mean()) - outside) < 1e-12 and outside > 0.05
    assert float((reflected.abs() == 1).double().mean()) == 0.0 and float(reflected.abs().max()) <= 1.0
    # reflection folds the tails back: the density just inside a face is the sum of the two sides,
    # continuous up to the face (the last two bins near +1 agree within their noise)
    h, _ = np.histogram(reflected.numpy(), bins=40, range=(-1, 1))
    assert abs(h[-1] - h[-2]) < 5 * np.sqrt(h[-1]) and abs(h[0] - h[1]) < 5 * np.sqrt(h[0])
    inside = x.abs() <= 1
    assert torch.equal(reflected[inside], x[inside])  # points inside are untouched


def test_a_reflected_sample_set_has_its_own_tag():
    a = SampleSet("taught", SamplingSettings(physics=20, bound="clamp"))
    b = SampleSet("taught", SamplingSettings(physics=20, bound="reflect"))
    assert a.tag() == "taught-ddim50-g8-NO-clip1-pg20-n100000-s0"
    assert b.tag() == "taught-ddim50-g8-NO-clip1-reflect-pg20-n100000-s0"
    c = SampleSet("taught", SamplingSettings(physics=20, bound="reflect", outside="redraw"))
    assert c.tag() == "taught-ddim50-g8-NO-clip1-reflect-redraw-pg20-n100000-s0"  # never resumed as b
