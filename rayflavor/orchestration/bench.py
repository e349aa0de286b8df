"""``rayflavor bench scan``: the fast island against the FN paper's plain configuration.

Every (configuration, seed) pair runs one island for a fixed budget of core-seconds as a 1-CPU
Ray task; nothing is written.  Reported per configuration: median time to the first valid model
(island compute seconds; runs without one count as "> budget"), unique valid models per core-hour
(charge assignments, pooled over seeds) and physically distinct ones (light textures, see
:mod:`rayflavor.storage.dedupe`), and the ratio fast / paper.
"""

from __future__ import annotations

import time

import numpy as np
import ray

from rayflavor.methods.ga.island import Island, IslandConfig
from rayflavor.physics import data as fndata
from rayflavor.physics import fn


def run_island(method: str, regime: str, seed: int, seconds: float, data_name: str = fn.DEFAULT_DATA) -> dict:
    """Step one island for ``seconds``; its status plus the charges of every valid model found."""
    # no stop but the budget: a target or patience stop would cap the per-core-hour counts
    cfg = IslandConfig(method=method, regime=regime, patience=10**9, target_valid=10**9)
    isl = Island(cfg, fndata.load(data_name), seed=seed)
    t0 = time.perf_counter()
    charges = []
    while time.perf_counter() - t0 < seconds and not isl.done:
        isl.step()
        m = isl.drain()
        if m is not None:
            charges.append(np.column_stack([m[c] for c in fn.CHARGES]).astype(np.int64))
    st = isl.status()
    st["seconds"] = time.perf_counter() - t0
    st["method"] = method
    st["charges"] = np.concatenate(charges) if charges else np.empty((0, 18), np.int64)
    return st


_remote = ray.remote(num_cpus=1)(run_island)


METHODS = ("fast", "paper")


def bench_scan(*, seeds: int, seconds: float, regime: str = "up", seed: int = 0, address: str | None = None,
               methods: tuple[str, ...] = METHODS) -> list[dict]:
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray(address)
    refs = [_remote.remote(m, regime, seed + k, seconds) for k in range(seeds) for m in methods]
    return ray.get(refs)


def _light(charges: np.ndarray) -> int:
    if len(charges) == 0:
        return 0
    e = fn.exponents(charges)
    nu, nN = e[:, 18:27].reshape(-1, 3, 3), e[:, 36:45].reshape(-1, 3, 3)
    w = nu[:, :, 0][:, :, None] + nu[:, :, 0][:, None, :] - nN[:, 0, 0][:, None, None]
    return len(np.unique(np.concatenate([e[:, :18], e[:, 27:36], w.reshape(-1, 9)], axis=1), axis=0))


def summarise(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for m in METHODS:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        hours = sum(r["seconds"] for r in rs) / 3600.0
        ch = np.concatenate([r["charges"] for r in rs])
        uniq = len(np.unique(ch, axis=0)) if len(ch) else 0
        firsts = [r["first_valid_seconds"] if r["first_valid_seconds"] is not None else np.inf for r in rs]
        out[m] = {
            "runs": len(rs),
            "found": int(np.sum(np.isfinite(firsts))),
            "first_valid_s": sorted(float(f) for f in firsts if np.isfinite(f)),
            "gen_per_s": float(np.mean([r["generation"] / r["seconds"] for r in rs])),
            "median_first_valid_s": float(np.median(firsts)),
            "unique": uniq,
            "unique_per_core_hour": uniq / hours if hours else 0.0,
            "light_per_core_hour": _light(ch) / hours if hours else 0.0,
            "budget_s": max((r["seconds"] for r in rs), default=0.0),
        }
    return out


def format_bench(rows: list[dict]) -> str:
    s = summarise(rows)
    lines = [f"{'config':<8} {'runs':>4} {'found':>5} {'gen/s':>7} {'median first valid':>20} {'unique':>7} "
             f"{'unique/core-h':>14} {'distinct/core-h':>16}"]
    for m, r in s.items():
        fv = f"{r['median_first_valid_s']:.1f} s" if np.isfinite(r["median_first_valid_s"]) else f"> {r['budget_s']:.0f} s"
        lines.append(f"{m:<8} {r['runs']:>4} {r['found']:>5} {r['gen_per_s']:>7.1f} {fv:>20} {r['unique']:>7} "
                     f"{r['unique_per_core_hour']:>14.1f} {r['light_per_core_hour']:>16.1f}")
    for m, r in s.items():
        lines.append(f"{m}: first valid model after {[round(f) for f in r['first_valid_s']]} s (island compute time)")
    if len(s) < 2:
        return "\n".join(lines)
    f, p = s["fast"]["unique_per_core_hour"], s["paper"]["unique_per_core_hour"]
    ratio = "inf (paper found none)" if p == 0 and f > 0 else ("n/a (neither found any)" if p == 0 else f"{f / p:.1f}")
    lines.append(f"ratio fast/paper (unique valid per core-hour): {ratio}")
    return "\n".join(lines)
