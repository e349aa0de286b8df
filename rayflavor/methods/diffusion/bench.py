"""Throughput of the table-2 network and of the samplers (``rayflavor bench diffusion``).

Numbers are samples per second *per core*: measured with ``torch.set_num_threads(threads)``
and divided by ``threads``. The bound is the bare matmuls of one forward pass
(:meth:`FoldedNet.matmul_only`); a sampler with K steps and CFG needs 2K forward passes per
sample, so its bound is ``matmul_rate / (2K)`` and the reported ratio is measured / bound.
"""

from __future__ import annotations

import time

import torch

from rayflavor.methods.diffusion.network import EpsNet, FoldedNet
from rayflavor.methods.diffusion.sampling import guided_eps_fn, sample
from rayflavor.methods.diffusion.schedule import NoiseSchedule


def _rate(fn, batch: int, min_seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n * batch / dt


def bench(*, batch: int = 4096, threads: int = 1, steps: int = 50, guidance: float = 8.0,
          min_seconds: float = 2.0, net: EpsNet | None = None) -> dict:
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
        out["forward_ratio"] = out["forward_folded"] / out["matmul_bound"]
        return out
    finally:
        torch.set_num_threads(old)
