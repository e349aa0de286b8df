"""Throughput of the table-2 network and of the samplers (``rayflavor bench diffusion``).

Numbers are samples per second *per core*: measured with ``torch.set_num_threads(threads)``
and divided by ``threads``. The bound is the bare matmuls of one forward pass
(:meth:`FoldedNet.matmul_only`); a sampler with K steps and CFG needs 2K forward passes per
sample, so its bound is ``matmul_rate / (2K)`` and the reported ratio is measured / bound.
For reference the benchmark also measures a large square fp32 matmul (``gemm_gflops``, the
machine's practical peak per core) and reports the network's matmuls in GFLOP/s
(``2 * sum(in * out)`` flops per row and forward pass, :func:`flops_per_forward`).
``ddim_physics``: DDIM with ``physics`` steps of physics guidance per reverse step
(:mod:`rayflavor.methods.diffusion.physics_guidance`; its cost is the exact seesaw observables
and their gradient, which do not depend on the network's weights, so the untrained network over
the prior box measures it).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from rayflavor.methods.diffusion.ddpm import EpsNet, FoldedNet, NoiseSchedule, guided_eps_fn, sample
from rayflavor.methods.diffusion.physics_guidance import PhysicsGuidance


def _rate(fn, batch: int, min_seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n * batch / dt


def flops_per_forward(net: EpsNet) -> int:
    """Multiply-add flops of one row's forward pass through the per-row matmuls (biases folded)."""
    sizes = (net.dim, *net.widths, net.dim)
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def gemm_gflops(n: int = 1024, min_seconds: float = 2.0) -> float:
    """GFLOP/s of an ``n x n`` by ``n x n`` fp32 matmul on the current torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    return _rate(lambda: torch.mm(a, b, out=out), 1, min_seconds) * 2 * n ** 3 / 1e9


def bench(*, batch: int = 4096, threads: int = 1, steps: int = 50, guidance: float = 8.0,
          min_seconds: float = 2.0, physics: int = 3, net: EpsNet | None = None) -> dict:
    """Forward-pass and sampler throughput (samples/s per core) with the bound ratios."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = net or EpsNet()
        fast = FoldedNet(net)
        sched = NoiseSchedule()
        x = torch.randn(batch, net.dim)
        c = torch.randn(4, net.label_dim + 1)
        b = fast.biases(c)
        t, lab = torch.rand(batch), torch.randn(batch, net.label_dim)
        out = {"batch": batch, "threads": threads, "steps": steps, "guidance": guidance}
        out["matmul_bound"] = _rate(lambda: fast.matmul_only(x), batch, min_seconds) / threads
        out["forward_folded"] = _rate(lambda: fast(x, b, 1), batch, min_seconds) / threads
        with torch.inference_mode():
            out["forward_eager"] = _rate(lambda: net(x, t, lab), batch, min_seconds) / threads
        eps_fn = guided_eps_fn(fast, torch.zeros(net.label_dim), schedule=sched, steps=steps, guidance=guidance)
        passes = 2 if guidance not in (0.0, 1.0) else 1
        for name in ("ddpm", "ddim"):
            rate = _rate(lambda: sample(eps_fn, torch.randn(batch, net.dim), schedule=sched, sampler=name,
                                        steps=steps), batch, min_seconds) / threads
            out[name] = rate
            out[f"{name}_ratio"] = rate / (out["matmul_bound"] / (passes * steps))
        if physics:
            from rayflavor.physics import data as physics_data
            from rayflavor.physics import seesaw

            pr = seesaw.PRIOR
            lo = np.array([pr["y"][0]] * 18 + [pr["mass_ratio"][0]] * 2 + [pr["log10_h2_over_m3_ev"][0]] + [pr["arg"][0]] * 2)
            hi = np.array([pr["y"][1]] * 18 + [pr["mass_ratio"][1]] * 2 + [pr["log10_h2_over_m3_ev"][1]] + [pr["arg"][1]] * 2)
            windows = seesaw.solution_windows(physics_data.load(seesaw.DEFAULT_DATA), "NO")
            refine = PhysicsGuidance(windows, iterations=physics).refiner(lo, hi)
            out["physics"] = physics
            out["ddim_physics"] = _rate(lambda: sample(eps_fn, torch.randn(batch, net.dim), schedule=sched,
                                                       sampler="ddim", steps=steps, clip=1.0, refine=refine),
                                        batch, min_seconds) / threads
        out["forward_ratio"] = out["forward_folded"] / out["matmul_bound"]
        out["flops_per_forward"] = flops_per_forward(net)
        out["matmul_gflops"] = out["matmul_bound"] * out["flops_per_forward"] / 1e9
        out["gemm_gflops"] = gemm_gflops(min_seconds=min_seconds) / threads
        return out
    finally:
        torch.set_num_threads(old)
