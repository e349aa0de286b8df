"""``rayflavor bench scan`` (the fast island against the FN paper's) and ``rayflavor bench
cluster`` (the scan driver's own cost on a fake multi-node cluster, and the dedupe at 10^7 rows).

``bench scan``:

Every (configuration, seed) pair runs one island for a fixed budget of core-seconds as a 1-CPU
Ray task, with the preset's own stops (patience, restarts) but no target; nothing is written.  Reported per configuration: median time to the first valid model
(island compute seconds; runs without one count as "> budget"), unique valid models per core-hour
(charge assignments, pooled over seeds) and physically distinct ones (light textures, see
:mod:`rayflavor.storage.dedupe`), and the ratio fast / paper.

``bench scan --migration none,ring,full`` compares migration topologies instead
(:func:`bench_migration`): every (topology, seed group) runs an *archipelago* of ``islands``
islands as one 1-CPU Ray task, the islands stepped one generation at a time, always the one with
the least compute so far, each to the same budget of its own compute seconds -- as if each had a
core of its own -- with the scan's migration policy (:class:`rayflavor.orchestration.migration.Exchange`,
the islands' ``emigrants``/``immigrate``) between generations.  The variants run interleaved on
the same seed groups; a row per island, summarised like the single islands (islands with a first
valid model within the budget, median time to it, light textures per core-hour pooled over the
variant's islands, so a model two islands share counts once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import ray

from dataclasses import replace

from rayflavor.methods.ga.island import ISLAND_PRESETS, compute_clock, make_island
from rayflavor.physics import data as fndata
from rayflavor.physics import fn


def run_island(method: str, regime: str, seed: int, seconds: float, data_name: str = fn.DEFAULT_DATA,
               overrides: dict | None = None) -> dict:
    """Step one island of preset ``method`` for ``seconds``; its status plus the charges of every
    valid model found.

    The island keeps the preset's own stops (patience, restarts) but has no ``target_valid`` (a
    target would cap the per-core-hour counts); ``overrides`` change IslandConfig fields."""
    cfg = replace(ISLAND_PRESETS[method], **{"regime": regime, "target_valid": 10**9, **(overrides or {})})
    isl = make_island(cfg, fndata.load(data_name), island=0, seed=seed)
    t0 = compute_clock()
    charges = []
    while compute_clock() - t0 < seconds and not isl.done:
        isl.step()
        m = isl.drain()
        if m is not None:
            charges.append(np.column_stack([m[c] for c in fn.CHARGES]).astype(np.int64))
    st = isl.status()
    st["seconds"] = compute_clock() - t0
    st["method"] = method
    st["budget_seconds"] = seconds
    st["charges"] = np.concatenate(charges) if charges else np.empty((0, 18), np.int64)
    return st


_remote = ray.remote(num_cpus=1)(run_island)


METHODS = ("fast", "paper")


def _quiet(_line: str) -> None:
    pass


def gather(jobs: list[tuple[str, ray.ObjectRef]], *, task_seconds: float, echo: Callable[[str], None] = _quiet) -> list:
    """The results of ``jobs`` (``(label, ref)`` pairs) in their order, with a line on ``echo``
    first (how many runs, on how many CPUs, about how long: ``task_seconds`` is one run's compute)
    and then one as each run finishes, in the order they finish."""
    if not jobs:
        return []
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    rounds = math.ceil(len(jobs) / cpus)
    total = rounds * task_seconds
    echo(f"{len(jobs)} runs of {task_seconds / 60:.3g} core-min each on {cpus} CPUs: "
         f"about {f'{total / 60:.0f} min' if total >= 90 else f'{total:.0f} s'}")
    label = {ref: name for name, ref in jobs}
    pending, t0 = [ref for _, ref in jobs], time.monotonic()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        done = len(jobs) - len(pending)
        echo(f"[{done}/{len(jobs)}] {label[ready[0]]} finished ({(time.monotonic() - t0) / 60:.1f} min)")
    return ray.get([ref for _, ref in jobs])


def run_variants(variants: dict[str, tuple[str, dict]], *, seeds: int, seconds: float, regime: str,
                 seed: int, address: str | None = None, echo: Callable[[str], None] = _quiet) -> list[dict]:
    """Every variant ``name -> (preset, IslandConfig overrides)`` on seeds ``seed .. seed+seeds-1``
    for ``seconds`` each, one 1-CPU Ray task per (variant, seed), submitted interleaved so that all
    variants see the same machine load.  Each row gets ``variant`` = its name; progress goes to
    ``echo`` (:func:`gather`)."""
    from rayflavor.orchestration.runtime import ensure_ray

    ensure_ray(address)
    jobs = [(name, seed + k, _remote.remote(m, regime, seed + k, seconds, fn.DEFAULT_DATA, ov))
            for k in range(seeds) for name, (m, ov) in variants.items()]
    results = gather([(f"{name}, seed {s}", ref) for name, s, ref in jobs], task_seconds=seconds, echo=echo)
    for (name, _, _), r in zip(jobs, results):
        r["variant"] = name
    return results


def bench_scan(*, seeds: int, seconds: float, regime: str, seed: int, address: str | None = None,
               methods: tuple[str, ...] = METHODS, echo: Callable[[str], None] = _quiet) -> list[dict]:
    """The presets ``methods`` at their defaults (no target), interleaved on the same seeds."""
    return run_variants({m: (m, {}) for m in methods}, seeds=seeds, seconds=seconds, regime=regime, seed=seed,
                        address=address, echo=echo)


def light_count(charges: np.ndarray) -> int:
    """Distinct light textures (:func:`rayflavor.physics.fn.light_textures`) among charge rows."""
    return len(np.unique(fn.light_textures(charges), axis=0)) if len(charges) else 0


def summarise(rows: list[dict], *, whole_budget: bool = False) -> dict[str, dict]:
    """Per variant (in order of appearance): runs, islands with a valid model, first-valid times
    (island compute seconds), unique valid charge assignments and light textures pooled over seeds
    and per core-hour.  Core-hours are the islands' own running time, or with ``whole_budget`` the
    full budget of every run (an island that stopped early idles its core until the end)."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == name]
        used = sum(r["budget_seconds"] if whole_budget else r["seconds"] for r in rs) / 3600.0
        ch = np.concatenate([r["charges"] for r in rs])
        uniq = len(np.unique(ch, axis=0)) if len(ch) else 0
        firsts = np.array([np.inf if r["first_valid_seconds"] is None else r["first_valid_seconds"] for r in rs])
        budget = max(r["budget_seconds"] for r in rs)
        light = light_count(ch)
        out[name] = {
            "runs": len(rs),
            "found": int(np.isfinite(firsts).sum()),
            "first_valid_s": sorted(float(f) for f in firsts if np.isfinite(f)),
            "gen_per_s": float(np.mean([r["generation"] / max(r["seconds"], 1e-9) for r in rs])),
            "median_first_valid_s": float(np.median(firsts)),
            "unique": uniq,
            "light": light,
            "unique_per_core_hour": uniq / used if used else 0.0,
            "light_per_core_hour": light / used if used else 0.0,
            "light_per_island_hour": [light_count(r["charges"]) / (r["seconds"] / 3600.0) for r in rs],
            "restarts": sorted(int(r.get("restarts", 0)) for r in rs),
            "busy_fraction": sum(r["seconds"] for r in rs) / sum(r["budget_seconds"] for r in rs),
            "budget_s": budget,
        }
    return out


def format_bench(rows: list[dict], *, whole_budget: bool = False) -> str:
    """The table of :func:`summarise`, the first-valid times, and fast/paper when both ran."""
    s = summarise(rows, whole_budget=whole_budget)
    lines = [f"{'variant':<14} {'runs':>4} {'found':>5} {'gen/s':>6} {'median first valid':>19} {'unique':>7} "
             f"{'unique/core-h':>13} {'light':>6} {'light/core-h':>12} {'busy':>5}"]
    for m, r in s.items():
        fv = f"{r['median_first_valid_s']:.1f} s" if np.isfinite(r["median_first_valid_s"]) else f"> {r['budget_s']:.0f} s"
        lines.append(f"{m:<14} {r['runs']:>4} {r['found']:>5} {r['gen_per_s']:>6.1f} {fv:>19} {r['unique']:>7} "
                     f"{r['unique_per_core_hour']:>13.4g} {r['light']:>6} {r['light_per_core_hour']:>12.4g} "
                     f"{100 * r['busy_fraction']:>4.0f}%")
    for m, r in s.items():
        per = np.array(r["light_per_island_hour"])
        lines.append(f"{m}: first valid model after {[round(f) for f in r['first_valid_s']]} s (island compute time); "
                     f"light textures per island-hour median {np.median(per):.4g}, quartiles "
                     f"{np.percentile(per, 25):.4g}-{np.percentile(per, 75):.4g}; restarts {r['restarts']}")
    if "fast" in s and "paper" in s:
        f, p = s["fast"]["unique_per_core_hour"], s["paper"]["unique_per_core_hour"]
        ratio = "inf (paper found none)" if p == 0 and f > 0 else ("n/a (neither found any)" if p == 0 else f"{f / p:.1f}")
        lines.append(f"ratio fast/paper (unique valid per core-hour): {ratio}")
    return "\n".join(lines)


def bench_restarts(*, seeds: int, seconds: float, patience: int, restarts: int, regime: str, seed: int,
                   address: str | None = None, echo: Callable[[str], None] = _quiet) -> list[dict]:
    """The fast island with ``restarts`` restarts against the same island stopping at its first
    stall (restarts 0, the paper's plain behaviour), on the same seeds and budget; summarise with
    ``whole_budget=True`` (a stopped island keeps its core idle until the scan ends)."""
    variants = {f"restarts {restarts}": ("fast", {"patience": patience, "restarts": restarts}),
                "plain stop": ("fast", {"patience": patience, "restarts": 0})}
    return run_variants(variants, seeds=seeds, seconds=seconds, regime=regime, seed=seed, address=address, echo=echo)


def bench_tabu(*, seeds: int, seconds: float, regime: str, seed: int, address: str | None = None,
               echo: Callable[[str], None] = _quiet) -> list[dict]:
    """The fast island with its tabu on found light textures against the tabu on found charge
    assignments only, on the same seeds and budget."""
    variants = {"tabu texture": ("fast", {"tabu": "texture"}), "tabu charges": ("fast", {"tabu": "charges"})}
    return run_variants(variants, seeds=seeds, seconds=seconds, regime=regime, seed=seed, address=address, echo=echo)


# ---------------------------------------------------------------------------------- migration
def run_archipelago(topology: str, regime: str, seeds: list[int], seconds: float, *, every: int, migrants: int,
                    restart_archive: float, foreign: str, data_name: str = fn.DEFAULT_DATA,
                    overrides: dict | None = None) -> list[dict]:
    """An archipelago of fast islands with seeds ``seeds`` (island ``k`` has index ``k``) in this
    process, each stepped to ``seconds`` of its own compute (steps and immigrations; CPU time of this
    thread, :data:`~rayflavor.methods.ga.island.compute_clock`), migration over
    ``topology`` every ``every`` generations of an island, ``migrants`` per batch; the restart
    archive with ``restart_archive > 0``; the islands' ``foreign`` setting (when they take
    immigrants and archive rows); ``overrides`` change other IslandConfig fields.  One row per
    island, as :func:`run_island` returns.

    The island that steps next is the one with the fewest evaluations so far (the lowest index on a
    tie): evaluations stand for compute, as in islands running side by side, but unlike measured
    CPU time they do not depend on the machine's load, so the islands' order, their exchanges and
    so their search repeat exactly from run to run; only where each island's CPU budget ends
    varies. (Picking the island with the least CPU time made two runs of the same 16 seeds differ
    1.5x in light textures per core-hour: docs/experiments.md#2026-12-07-refine-iters.)"""
    from rayflavor.orchestration.migration import ARCHIVE_SIZE, Exchange

    cfg = replace(ISLAND_PRESETS["fast"], **{"regime": regime, "target_valid": 10**9, "restart_archive": restart_archive,
                                             "foreign": foreign, **(overrides or {})})
    ds = fndata.load(data_name)
    isls = [make_island(cfg, ds, island=k, seed=s) for k, s in enumerate(seeds)]
    n = len(isls)
    exchange = Exchange(topology, n, archive_size=ARCHIVE_SIZE if restart_archive > 0 else 0)
    used, sent_at = np.zeros(n), np.zeros(n, dtype=np.int64)
    charges: list[list[np.ndarray]] = [[] for _ in range(n)]
    while True:
        live = [k for k in range(n) if not isls[k].done and used[k] < seconds]
        if not live:
            break
        k = min(live, key=lambda j: (isls[j].c.n_evals, j))
        isl = isls[k]
        t0 = compute_clock()
        imm = exchange.take(k) if topology != "none" else None
        if imm is not None:
            isl.immigrate(imm, migrants)
        if restart_archive > 0:
            isl.set_archive(exchange.archive())
        isl.step()
        if (topology != "none" or restart_archive > 0) and isl.generation - sent_at[k] >= every and not isl.done:
            exchange.post(k, *isl.emigrants(migrants))
            sent_at[k] = isl.generation
        used[k] += compute_clock() - t0
        m = isl.drain()
        if m is not None:
            charges[k].append(np.column_stack([m[c] for c in fn.CHARGES]).astype(np.int64))
        if isl.done and topology != "none":
            exchange.forget(k)
    rows = []
    for k, isl in enumerate(isls):
        st = isl.status()
        st.update(seconds=float(used[k]), method="fast", budget_seconds=seconds, topology=topology,
                  charges=np.concatenate(charges[k]) if charges[k] else np.empty((0, 18), np.int64))
        rows.append(st)
    return rows


_remote_archipelago = ray.remote(num_cpus=1)(run_archipelago)


def migration_variant(name: str, restart_archive: float) -> tuple[str, float, str, dict]:
    """``(topology, restart_archive, foreign, overrides)`` of a variant name such as
    ``ring+archive+until-found+neighbours=48``: a topology, then optionally ``+archive``,
    ``+until-found`` and ``+FIELD=NUMBER`` for any numeric IslandConfig field (checked as a config
    file would be).  ValueError (one line, naming the grammar) otherwise."""
    from rayflavor import configfile
    from rayflavor.methods.ga.migration import TOPOLOGIES

    grammar = (f"use {', '.join(TOPOLOGIES)}, optionally +archive, +until-found and +FIELD=NUMBER for a numeric "
               "island setting, e.g. ring+archive+until-found+neighbours=48")
    topology, *extras = name.split("+")
    sets = [e for e in extras if "=" in e]
    flags = [e for e in extras if "=" not in e]
    if topology not in TOPOLOGIES or not set(flags) <= {"archive", "until-found"} or len(set(extras)) < len(extras):
        raise ValueError(f"unknown migration variant {name!r} ({grammar})")
    overrides: dict = {}
    for e in sets:
        key, _, text = e.partition("=")
        try:
            value = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"variant {name!r}: {key}={text!r} is not a number ({grammar})") from None
        if key in overrides or key in ("regime", "target_valid", "restart_archive", "foreign"):
            raise ValueError(f"variant {name!r}: {key} cannot be set here ({grammar})")
        overrides[key] = value
    try:
        configfile.replace_from(ISLAND_PRESETS["fast"], overrides)
    except configfile.ConfigError as exc:
        raise ValueError(f"variant {name!r}: {exc}") from None
    return (topology, restart_archive if "archive" in flags else 0.0,
            "until-found" if "until-found" in flags else "always", overrides)


def bench_migration(variants: list[str], *, islands: int, seeds: int, seconds: float, regime: str, seed: int,
                    every: int, migrants: int, restart_archive: float, address: str | None = None,
                    echo: Callable[[str], None] = _quiet) -> list[dict]:
    """Every variant (``none``, ``ring``, ``full``; ``+archive``: with the restart archive at
    ``restart_archive``; ``+until-found``: islands take immigrants and archive rows only until
    their first valid model, ``IslandConfig.foreign``; ``+FIELD=NUMBER``: that island setting,
    :func:`migration_variant`) as an archipelago of ``islands`` islands
    (:func:`run_archipelago`) on the seed groups ``seed + g * islands ...`` (``g < seeds``),
    submitted interleaved.  One row per island with ``variant`` = its name; progress goes to
    ``echo`` (:func:`gather`)."""
    from rayflavor.orchestration.runtime import ensure_ray

    parsed = {v: migration_variant(v, restart_archive) for v in variants}
    ensure_ray(address)
    jobs = []
    for g in range(seeds):
        group = [seed + g * islands + k for k in range(islands)]
        for name, (t, a, f, ov) in parsed.items():
            ref = _remote_archipelago.remote(t, regime, group, seconds, every=every, migrants=migrants,
                                             restart_archive=a, foreign=f, overrides=ov)
            jobs.append((name, f"{name}, seeds {group[0]}..{group[-1]}", ref))
    results = gather([(label, ref) for _, label, ref in jobs], task_seconds=islands * seconds, echo=echo)
    rows = []
    for (name, _, _), archipelago in zip(jobs, results):
        for r in archipelago:
            r["variant"] = name
            rows.append(r)
    return rows


# ---------------------------------------------------------------------------------- bench cluster
class TinyIsland:
    """A synthetic island for :func:`bench_cluster`: ``steps`` steps of ``step_seconds`` each
    (sleeping, so the fake cluster's oversubscribed CPUs stay free for the driver), no models.
    It implements the island contract the scan driver uses (step, done, drain, n_pending, status,
    get_state, request_stop, resume; emigrants, immigrate, set_archive of the migration) so the
    driver, actors and commits are the real ones."""

    def __init__(self, config, data, *, island: int, seed: int, steps: int, step_seconds: float) -> None:
        self.config, self.island, self.seed = config, island, int(seed)
        self.steps, self.step_seconds = int(steps), float(step_seconds)
        self.generation, self.stop_reason = 0, None

    @classmethod
    def from_state(cls, meta: dict, arrays: dict, data) -> "TinyIsland":
        isl = cls(None, data, island=meta["island"], seed=meta["seed"], steps=meta["steps"], step_seconds=meta["step_seconds"])
        isl.generation, isl.stop_reason = meta["generation"], meta["stop_reason"]
        return isl

    def step(self) -> None:
        time.sleep(self.step_seconds)
        self.generation += 1
        if self.generation >= self.steps:
            self.stop_reason = "max-generations"

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def n_pending(self) -> int:
        return 0

    def drain(self):
        return None

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    # the migration contract (a scan's default ring): a tiny island has no near-misses to send or take
    def emigrants(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.empty((0, 0)), np.empty(0)

    def immigrate(self, genes: np.ndarray, n: int) -> None:
        pass

    def set_archive(self, genes: np.ndarray) -> None:
        pass

    def resume(self) -> bool:
        self.stop_reason = None
        return True

    def status(self) -> dict:
        return {"island": self.island, "seed": self.seed, "generation": self.generation, "n_valid": 0,
                "stop_reason": self.stop_reason, "restarts": 0, "stop_history": []}

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"island": self.island, "seed": self.seed, "steps": self.steps, "step_seconds": self.step_seconds,
                "generation": self.generation, "stop_reason": self.stop_reason}
        return meta, {"x": np.zeros(1)}


def _fake_cluster(nodes: int, cpus_per_node: int):
    """A :class:`ray.cluster_utils.Cluster` on 127.0.0.1: a head with no CPU for actors (the
    driver's node) and ``nodes`` worker nodes of ``cpus_per_node`` CPUs each; connected.  Ray keeps
    a node on 127.0.0.1 only with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` set before it is imported
    (``rayflavor bench cluster`` sets it); otherwise it moves the nodes to the host's address."""
    from ray.cluster_utils import Cluster

    common = {"include_dashboard": False, "object_store_memory": 80 * 1024**2, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **common})
    for _ in range(nodes):
        cluster.add_node(num_cpus=cpus_per_node, **common)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, _node_ip_address="127.0.0.1")
    return cluster


def _rss_mb() -> float:
    """Resident memory of this process (MB; Linux /proc, NaN elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class _PeakRss:
    """The driver's peak resident memory while the block runs (sampled every ``period`` s)."""

    def __init__(self, period: float = 0.2) -> None:
        import threading

        self.period, self.peak = period, _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> "_PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def bench_cluster(sizes, *, nodes: int, cpus_per_node: int, steps: int, step_seconds: float, chunk_seconds: float,
                  echo=print) -> list[dict]:
    """Run scans of ``sizes`` tiny islands (:class:`TinyIsland`) on a fake cluster of ``nodes``
    nodes with ``cpus_per_node`` CPUs each, all on 127.0.0.1 (the CPUs may exceed the machine's
    cores: the islands sleep).  The driver submits every island at once (the pending ones are the
    autoscaler's demand).  Per size: wall time, the driver's CPU time (all threads of the driver
    process, Ray's own among them) per island-second (an island-second: one second an island spent
    in its actor's ``run``), the driver's peak resident memory (MB), and the scheduling latency
    (the driver hands the island to the actor that runs it -> its first step; for a new actor from
    its submission, so including the worker process's start) as median, 95th percentile and maximum,
    also split into islands that needed a new actor and islands handed to an actor whose island was
    done.  The time an island waits for a free CPU is not latency but pending demand."""
    import tempfile
    from functools import partial

    from rayflavor.orchestration.islands import run_scan
    from rayflavor.orchestration.scan_settings import ScanSettings

    if ray.is_initialized():
        raise RuntimeError("bench_cluster starts its own Ray cluster: call it without a running Ray")
    cluster = _fake_cluster(nodes, cpus_per_node)
    rows = []
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="rayflavor-bench-cluster-") as out:
                settings = ScanSettings(islands=n, seed=0, chunk_seconds=chunk_seconds, flush_seconds=1.0)
                make = partial(TinyIsland, steps=steps, step_seconds=step_seconds)
                with _PeakRss() as rss:
                    res = run_scan(settings, out, live=False, echo=lambda *_: None, make=make,
                                   restore=TinyIsland.from_state)
            st = list(res.statuses.values())
            island_s = sum(s.get("wall_seconds", 0.0) or 0.0 for s in st)
            lat, fresh, seen = [], [], set()
            for i in sorted(res.statuses, key=lambda i: res.statuses[i].get("first_step_at") or 0.0):
                s = res.statuses[i]
                if s.get("first_step_at") is None or s.get("assigned_at") is None:
                    continue
                pid = (s.get("start_nodes") or [{}])[-1].get("pid")
                lat.append(s["first_step_at"] - s["assigned_at"])
                fresh.append(pid not in seen)  # a new worker process, or an actor handed the next island
                seen.add(pid)
            lat, fresh = np.array(lat), np.array(fresh, dtype=bool)

            def q(a, p):
                return float(np.quantile(a, p)) if len(a) else float("nan")

            row = {"islands": n, "cluster_cpus": nodes * cpus_per_node, "done": sum(s.get("state") == "done" for s in st),
                   "wall_s": res.wall_seconds, "driver_cpu_s": res.driver_cpu_seconds, "island_s": island_s,
                   "driver_cpu_per_island_s": res.driver_cpu_seconds / island_s if island_s else float("nan"),
                   "driver_peak_rss_mb": rss.peak,
                   "latency_median_s": q(lat, 0.5), "latency_p95_s": q(lat, 0.95),
                   "latency_max_s": float(lat.max()) if len(lat) else float("nan"),
                   "new_actors": int(fresh.sum()),
                   "latency_new_actor_median_s": q(lat[fresh], 0.5),
                   "latency_reused_median_s": q(lat[~fresh], 0.5)}
            rows.append(row)
            echo(format_cluster([row], header=not rows[:-1]))
    finally:
        ray.shutdown()
        cluster.shutdown()
    return rows


def format_cluster(rows: list[dict], header: bool = True) -> str:
    lines = [f"{'islands':>7} {'CPUs':>5} {'done':>5} {'wall s':>8} {'driver CPU s':>12} {'island-s':>9} "
             f"{'CPU/island-s':>12} {'peak RSS MB':>11} {'latency median/p95/max s':>25} {'actors':>6} "
             f"{'new/reused median s':>20}"] if header else []
    for r in rows:
        lat = f"{r['latency_median_s']:.2f}/{r['latency_p95_s']:.2f}/{r['latency_max_s']:.2f}"
        split = f"{r['latency_new_actor_median_s']:.2f}/{r['latency_reused_median_s']:.2f}"
        lines.append(f"{r['islands']:>7} {r['cluster_cpus']:>5} {r['done']:>5} {r['wall_s']:>8.1f} {r['driver_cpu_s']:>12.1f} "
                     f"{r['island_s']:>9.1f} {r['driver_cpu_per_island_s']:>12.4f} {r['driver_peak_rss_mb']:>11.0f} "
                     f"{lat:>25} {r['new_actors']:>6} {split:>20}")
    return "\n".join(lines)
