"""Ray actors running NSGA-III islands, and the scan driver.

Layout of a scan directory ``OUT``::

    OUT/scan.json                                    configuration, versions, seeds, status, results
    OUT/islands/island-XXXX/part-NNNNNN.parquet      valid models, committed in order
    OUT/islands/island-XXXX/checkpoint.pkl           island state + number of committed parts
    OUT/models.parquet                               global dedupe (rayflavor dedupe OUT)

Commit protocol (per island, inside its actor, every ``flush_seconds`` and at every stop): drain
the island's new models, write them as part ``seq`` (atomic rename), then atomically replace the
checkpoint with the island state and ``next_seq = seq + 1``.  A restarted actor loads the
checkpoint and deletes parts numbered ``>= next_seq`` (written by an attempt that died before its
checkpoint); the island's seen-charges set is part of the checkpoint, so the replayed generations
neither lose a committed model nor write one twice.  A killed driver leaves the same state:
``--resume`` starts actors that load their checkpoints.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import ray

from rayflavor.orchestration.runtime import ensure_ray

from rayflavor.methods.ga.island import Island, IslandConfig
from rayflavor.orchestration.progress import Progress
from rayflavor.physics import data as fndata
from rayflavor.storage.parquet import atomic_write_bytes, discard_parts_from, island_dir, to_table, write_part

CHECKPOINT = "checkpoint.pkl"
SCAN_FORMAT = "rayflavor-scan/1"


def checkpoint_path(out: str | Path, island: int) -> Path:
    return island_dir(out, island) / CHECKPOINT


def load_checkpoint(out: str | Path, island: int) -> dict | None:
    p = checkpoint_path(out, island)
    if not p.is_file():
        return None
    with open(p, "rb") as fh:
        return pickle.load(fh)


class IslandRunner:
    """Plain-Python body of the actor (testable without Ray)."""

    def __init__(self, out: str, island: int, seed: int, config: dict, data_name: str, flush_seconds: float = 2.0):
        self.out, self.island, self.flush_seconds = out, island, flush_seconds
        self.data = fndata.load(data_name)
        ck = load_checkpoint(out, island)
        if ck is None:
            self.isl = Island(IslandConfig(**config), self.data, island=island, seed=seed)
            self.seq, self.wall, self.starts = 0, 0.0, 1
        else:
            self.isl = Island.from_state(ck["state"], self.data)
            self.seq, self.wall, self.starts = ck["next_seq"], ck["wall_seconds"], ck["starts"] + 1
        discard_parts_from(out, island, self.seq)
        self._commit()

    def _commit(self) -> None:
        models = self.isl.drain()
        if models is not None:
            write_part(self.out, self.island, self.seq, to_table(models, island=self.island, seed=self.isl.seed))
            self.seq += 1
        ck = {"state": self.isl.get_state(), "next_seq": self.seq, "wall_seconds": self.wall, "starts": self.starts}
        atomic_write_bytes(checkpoint_path(self.out, self.island), pickle.dumps(ck, protocol=5))

    def run(self, seconds: float) -> dict:
        """Step for about ``seconds`` (or until the island stops), committing regularly."""
        t0 = time.perf_counter()
        last = t0
        while not self.isl.done and time.perf_counter() - t0 < seconds:
            self.isl.step()
            now = time.perf_counter()
            if now - last >= self.flush_seconds:
                self.wall += now - last
                last = now
                self._commit()
        self.wall += time.perf_counter() - last
        self._commit()
        return self.status()

    def stop(self, reason: str) -> dict:
        if not self.isl.done:
            self.isl.c.stop_reason = reason
        self._commit()
        return self.status()

    def status(self) -> dict:
        s = self.isl.status()
        s.update(wall_seconds=self.wall, starts=self.starts, parts=self.seq, pid=os.getpid())
        return s


IslandActor = ray.remote(num_cpus=1)(IslandRunner)


@dataclass
class ScanConfig:
    """The exact configuration of a scan (stored in ``OUT/scan.json``)."""

    out: str
    islands: int = 64
    island: dict = field(default_factory=dict)  # IslandConfig fields
    seed: int = 0
    data: str = "nufit-6.0+pdg-2024"
    time_limit: float | None = None  # seconds
    chunk_seconds: float = 1.0
    flush_seconds: float = 2.0
    max_restarts: int = 5


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("rayflavor", "ray", "pymoo", "numpy", "numba", "polars", "pyarrow", "click"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def write_scan_json(cfg: ScanConfig, **extra) -> None:
    p = Path(cfg.out) / "scan.json"
    doc = {}
    if p.is_file():
        doc = json.loads(p.read_text())
    doc.update(
        format=SCAN_FORMAT,
        config=asdict(cfg),
        island_config=IslandConfig(**cfg.island).resolved(),
        seeds={str(i): cfg.seed + i for i in range(cfg.islands)},
        versions=_versions(),
    )
    doc.update(extra)
    atomic_write_bytes(p, (json.dumps(doc, indent=2, default=str) + "\n").encode())


def read_scan_json(out: str | Path) -> dict:
    return json.loads((Path(out) / "scan.json").read_text())


@dataclass
class ScanResult:
    statuses: dict[int, dict]
    wall_seconds: float
    interrupted: bool


def run_scan(cfg: ScanConfig, *, address: str | None = None, live: bool = True, echo=print) -> ScanResult:
    """Run (or continue) every island of ``cfg`` to its stop; see the module docstring."""
    ensure_ray(address)
    out = Path(cfg.out)
    (out / "islands").mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat()
    write_scan_json(cfg, status="running", started_at=started)

    statuses: dict[int, dict] = {}
    todo: list[int] = []
    for i in range(cfg.islands):
        ck = load_checkpoint(out, i)
        if ck is not None and ck["state"]["counters"]["stop_reason"] not in (None, "time-limit", "interrupted"):
            c = ck["state"]["counters"]
            statuses[i] = {"island": i, "seed": cfg.seed + i, "generation": c["generation"], "n_valid": c["n_found"],
                           "best_satisfied": c["best_satisfied"], "stop_reason": c["stop_reason"],
                           "wall_seconds": ck["wall_seconds"], "step_seconds": c["step_seconds"], "starts": ck["starts"],
                           "first_valid_seconds": c["first_valid_seconds"], "n_evals": c["n_evals"]}
        else:
            if ck is not None:  # continue an island stopped by a time limit or Ctrl-C
                ck["state"]["counters"]["stop_reason"] = None
                ck["state"]["counters"]["last_improvement"] = ck["state"]["counters"]["generation"]
                atomic_write_bytes(checkpoint_path(out, i), pickle.dumps(ck, protocol=5))
            todo.append(i)
            statuses[i] = {"island": i, "seed": cfg.seed + i, "stop_reason": None, "state": "queued"}

    slots = max(1, int(ray.available_resources().get("CPU", 1)))
    actor_cls = IslandActor.options(max_restarts=cfg.max_restarts, max_task_retries=cfg.max_restarts)
    active: dict[int, tuple] = {}  # island -> (actor, future)
    progress = Progress(cfg.islands, live=live, echo=echo)
    t0 = time.monotonic()
    interrupted = False
    old_handler = signal.getsignal(signal.SIGTERM)

    def _term(signum, frame):  # SIGTERM behaves like Ctrl-C
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        pass

    def remaining() -> float | None:
        return None if cfg.time_limit is None else cfg.time_limit - (time.monotonic() - t0)

    def submit(i: int, actor) -> None:
        rem = remaining()
        chunk = cfg.chunk_seconds if rem is None else max(0.0, min(cfg.chunk_seconds, rem))
        active[i] = (actor, actor.run.remote(chunk))

    try:
        while todo or active:
            rem = remaining()
            if rem is not None and rem <= 0:
                break
            while todo and len(active) < slots:
                i = todo.pop(0)
                actor = actor_cls.remote(str(out), i, cfg.seed + i, cfg.island, cfg.data, cfg.flush_seconds)
                statuses[i]["state"] = "running"
                submit(i, actor)
            futs = {fut: i for i, (_, fut) in active.items()}
            ready, _ = ray.wait(list(futs), num_returns=1, timeout=0.5)
            for fut in ready:
                i = futs[fut]
                actor = active[i][0]
                try:
                    st = ray.get(fut)
                except ray.exceptions.RayActorError:
                    if statuses[i].get("failures", 0) >= cfg.max_restarts:
                        statuses[i].update(stop_reason="failed", state="failed")
                        del active[i]
                        continue
                    statuses[i]["failures"] = statuses[i].get("failures", 0) + 1
                    submit(i, actor)  # the actor restarts from its checkpoint
                    continue
                statuses[i].update(st, state="running")
                if st["stop_reason"] is not None:
                    statuses[i]["state"] = "done"
                    del active[i]
                    ray.kill(actor)
                else:
                    submit(i, actor)
            progress.update(statuses, time.monotonic() - t0)
        reason = "time-limit"
    except KeyboardInterrupt:
        interrupted = True
        reason = "interrupted"
    finally:
        try:
            signal.signal(signal.SIGTERM, old_handler)
        except ValueError:
            pass
    # stop whatever still runs: each actor commits its last models and checkpoint
    stops = {i: actor.stop.remote(reason) for i, (actor, _) in active.items()}
    for i, ref in stops.items():
        try:
            statuses[i].update(ray.get(ref, timeout=60), state="stopped")
        except Exception:  # noqa: BLE001 - a dead actor: its last checkpoint stands
            statuses[i].update(stop_reason=reason, state="stopped")
        ray.kill(active[i][0])
    for i in todo:
        statuses[i].update(stop_reason=reason if reason == "interrupted" else "time-limit", state="not started")
    wall = time.monotonic() - t0
    progress.update(statuses, wall, final=True)
    write_scan_json(
        cfg,
        status="interrupted" if interrupted else "finished",
        started_at=started,
        finished_at=datetime.now(timezone.utc).isoformat(),
        islands_status={str(i): {k: s.get(k) for k in ("generation", "n_valid", "stop_reason", "wall_seconds", "starts")} for i, s in statuses.items()},
    )
    return ScanResult(statuses, wall, interrupted)
