"""Ray actors running NSGA-III islands, and the scan driver.

Layout of a scan's ``OUT`` (a local directory or an object-store prefix, see
:mod:`rayflavor.storage.location`)::

    OUT/scan.json          settings (whole, under "settings"), versions, seeds, status, island starts
    OUT/LOCK.json          the driver's lease: one scan at a time per OUT (storage/lease.py)
    OUT/islands/island-XXXX/...   parts and checkpoints of island XXXX (storage/island_store.py)
    OUT/models.parquet     global dedupe (rayflavor dedupe OUT)

Commit protocol (per island, inside its actor): when ``flush_rows`` new models wait or
``flush_seconds`` have passed, and at every stop, the actor drains the island's new models and
hands them with the island state to :meth:`IslandStore.commit` (a write-once part, then the
checkpoint that lists it).  A restarted actor (killed process, lost node: Ray restarts it up to
``max_restarts`` times, anywhere in the cluster) loads the last committed checkpoint from OUT;
the island's seen-charges set is part of it, so the replayed generations neither lose a committed
model nor write one twice.  ``--resume`` starts actors that load their checkpoints the same way.

Scheduling: the driver never sizes the work to the CPUs it sees.  At the start it submits one
island actor (1 CPU) for every island still to run; Ray runs what fits and keeps the rest
pending, and the pending actors are the demand Ray's autoscaler acts on (``ray status``:
"Demands"), so an empty cluster grows until every island can run and shrinks as they finish.
Per island the driver tracks ``pending`` (submitted, no node yet) -> ``running`` (on a node) ->
``done`` / ``stopped`` / ``killed`` / ``failed``.  When an island is done while others are still
pending, its actor (already placed, its worker process warm) takes the pending island submitted
last and that island's unplaced actor is killed: the demand shrinks by the CPU that stays busy,
and no worker process is started for it.  A lost actor's island gets a new actor.  A driver that
dies takes its actors, and so its demand, along (they belong to its job), unlike a standing
``request_resources`` (see docs/experiments.md, 2026-12-06, for the measurement behind this choice).

Migration (``migration`` = ``ring`` / ``full``, and the archive of ``island.restart_archive``):
islands exchange only through the driver.  An actor's ``run`` returns, with the island's status,
its latest emigrant batch (picked every ``migration_every`` generations); the driver keeps it in an
:class:`~rayflavor.orchestration.migration.Exchange` and hands the island's neighbours their new
immigrants with their next ``run`` call.  An island that is not running neither sends nor
receives (a finished island's last batch still reaches the neighbours that have not had it), so
a lost or finished island never stops the exchange among the others.  The accepted
immigrants are part of the island's population and so of its checkpoint; the exchange itself is
not stored (a resumed scan starts it empty).  ``scan.json`` records its counts under ``migration``.

Failures: every store operation of the scan (the driver's and the actors') retries transient
store errors for ``store_retry_seconds`` (:mod:`rayflavor.storage.location`), so an island keeps
its drained models in memory through an outage and commits them when the store answers again.
An island whose call raises (a store that stays down, a full disk, a bug) is ``failed`` with the
error's first line; the other islands go on, its committed parts stand, and ``--resume``
continues it from its last checkpoint.  When the driver itself cannot write to the store, every
island is stopped.  Either way ``scan.json`` ends with ``status: "failed"`` and ``failure`` (the
reason), and :class:`ScanResult` carries the same ``failure``.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import ray

from rayflavor import configfile
from rayflavor.messages import typed_line
from rayflavor.methods.ga.island import IslandConfig, island_from_state, make_island
from rayflavor.orchestration.migration import ARCHIVE_SIZE, Exchange
from rayflavor.orchestration.progress import Progress
from rayflavor.orchestration.runtime import ensure_ray
from rayflavor.orchestration.scan_settings import RETIRED, ScanSettings, as_stored
from rayflavor.physics import data as fndata
from rayflavor.storage import lease as lease_mod
from rayflavor.storage import scan_data
from rayflavor.storage.island_store import IslandStore
from rayflavor.storage.location import Location, StorageError, resolve
from rayflavor.storage.parquet import to_table

SCAN_FORMAT = "rayflavor-scan/2"
#: stop reasons after which ``--resume`` continues an island (every other stop is final)
RESUMABLE = (None, "time-limit", "interrupted")
#: seconds an actor gets past the time limit (on top of its running chunk) before it is killed
STOP_GRACE = 10.0
LEASE_TTL = 60.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _where() -> dict:
    """The node this process runs on (inside an actor: the Ray node; elsewhere: the host)."""
    node_id, ip = None, socket.gethostname()
    if not ray.is_initialized():  # plain-Python use of the runner: asking Ray would connect to a cluster
        return {"node_id": node_id, "node_ip": ip, "pid": os.getpid(), "at": _now()}
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001
        pass
    try:
        ip = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001
        pass
    return {"node_id": node_id, "node_ip": ip, "pid": os.getpid(), "at": _now()}


class IslandRunner:
    """Plain-Python body of the island actor (testable without Ray).

    One runner works on one island at a time and may be handed the next one when its island
    stops (the driver reuses a placed actor instead of starting a new worker process).  Every
    call names its island: a runner that Ray restarted (lost node, killed process) starts empty,
    and the retried call reopens that island from its last checkpoint in OUT.

    ``out``: the OUT :class:`Location` (or its URI or path); ``config``: the island settings as a mapping
    (:func:`configfile.to_mapping` of an :class:`IslandConfig`); ``data``: a loaded data set (sent
    whole, so a data file on the driver's machine reaches every node) or a shipped name.
    ``make`` / ``restore`` build an island (default: the GA engine's :func:`make_island` /
    :func:`island_from_state`; the cluster benchmark passes a tiny synthetic island).
    ``migration``: ``(every, migrants)`` when the scan exchanges migrants (``None``: it does not,
    and the island is never asked for emigrants): every ``every`` generations the island picks
    ``migrants`` emigrants, and the latest batch goes back with the result of :meth:`run`.
    """

    def __init__(self, out: Location | str, config: dict, data: Any, flush_rows: int, flush_seconds: float,
                 make: Callable | None = None, restore: Callable | None = None,
                 migration: tuple[int, int] | None = None):
        self.out = out if isinstance(out, Location) else resolve(out)
        self.config, self.flush_rows, self.flush_seconds = config, flush_rows, flush_seconds
        self.migration = migration
        self.data = fndata.load(data) if isinstance(data, str) else data
        self.make, self.restore = make or make_island, restore or island_from_state
        self.island: int | None = None
        self.isl = None

    def _open(self, island: int, seed: int) -> None:
        """Continue ``island`` from its last checkpoint (or start it) and record this start."""
        if self.island == island:
            return
        self.island = None  # set once the island is open (a failed load leaves none open)
        self.unsaved: list = []  # drained model tables not yet committed (a commit that failed)
        self.store = IslandStore(self.out, island)
        loaded = self.store.load()
        if loaded is None:
            cfg = self.config
            if isinstance(cfg, dict):
                cfg = configfile.from_mapping(IslandConfig, cfg, where="island settings")
            self.isl = self.make(cfg, self.data, island=island, seed=seed)
            self.info: dict = {"wall_seconds": 0.0, "starts": []}
        else:
            meta, arrays, info = loaded
            self.isl = self.restore(meta, arrays, self.data)
            self.info = dict(info)
            self.info.setdefault("wall_seconds", 0.0)
            self.info.setdefault("starts", [])
        if self.isl.done and self.isl.status().get("stop_reason") in RESUMABLE:
            self.isl.resume()  # continue an island stopped by a time limit or Ctrl-C
        self.info["starts"] = [*self.info["starts"], _where()]
        self.first_step_at: float | None = None
        self.emigrated_at = self.isl.generation  # generation of the last emigrant batch (this start)
        self.island = island
        self._commit()

    def _commit(self) -> None:
        """Drain the island and commit its new models with its state.  Drained models stay in
        ``self.unsaved`` until a commit succeeds, so a commit that raises loses none of them
        (the island state committed later is the state after every drain)."""
        import pyarrow as pa

        models = self.isl.drain()
        if models is not None:
            self.unsaved.append(to_table(models, island=self.island, seed=self.isl.seed))
        table = pa.concat_tables(self.unsaved) if self.unsaved else None
        meta, arrays = self.isl.get_state()
        self.info["status"] = self.isl.status()
        self.store.commit(table, meta, arrays, self.info)
        self.unsaved = []
        self.last_commit = time.perf_counter()

    def start(self, island: int, seed: int) -> dict:
        """Open ``island`` and return its status (the driver learns the node from it)."""
        self._open(island, seed)
        return self.status()

    def run(self, island: int, seed: int, seconds: float, immigrants: Any = None, archive: Any = None) -> dict:
        """Step ``island`` for about ``seconds`` (or until it stops); commit when ``flush_rows``
        models wait, ``flush_seconds`` passed since the last commit, or the island stopped.

        With migration: ``immigrants`` (gene rows from its neighbours) are taken in first,
        ``archive`` (the scan-wide archive, gene rows) replaces the island's copy, and the status
        returned carries ``emigrants`` (``{"genes", "loss"}``) when a batch is due."""
        self._open(island, seed)
        t0 = time.perf_counter()
        last = t0
        if self.first_step_at is None:
            self.first_step_at = time.time()
        if archive is not None:
            self.isl.set_archive(archive)
        if immigrants is not None and self.migration is not None:
            self.isl.immigrate(immigrants, self.migration[1])
        while not self.isl.done and time.perf_counter() - t0 < seconds:
            self.isl.step()
            now = time.perf_counter()
            if self.isl.done or self.isl.n_pending >= self.flush_rows or now - self.last_commit >= self.flush_seconds:
                self.info["wall_seconds"] += now - last
                last = now
                self._commit()
        self.info["wall_seconds"] += time.perf_counter() - last
        st = self.status()
        if self.migration is not None and not self.isl.done and \
                self.isl.generation - self.emigrated_at >= self.migration[0]:
            genes, loss = self.isl.emigrants(self.migration[1])
            self.emigrated_at = self.isl.generation
            st["emigrants"] = {"genes": genes, "loss": loss}
        return st

    def stop(self, island: int, seed: int, reason: str) -> dict:
        """Stop ``island`` for ``reason`` (unless it stopped on its own) and commit."""
        self._open(island, seed)
        if not self.isl.done:
            self.isl.request_stop(reason)
        self._commit()
        return self.status()

    def status(self) -> dict:
        s = dict(self.isl.status())
        s.update(wall_seconds=self.info["wall_seconds"], starts=len(self.info["starts"]),
                 start_nodes=self.info["starts"], node=self.info["starts"][-1].get("node_id"),
                 node_ip=self.info["starts"][-1].get("node_ip"), pid=os.getpid(),
                 first_step_at=self.first_step_at, n_pending=self.isl.n_pending)
        return s


@ray.remote(num_cpus=1)
class IslandActor(IslandRunner):
    """The Ray actor of one island: :class:`IslandRunner` on 1 CPU (its processes show as
    ``ray::IslandActor``)."""


# ---------------------------------------------------------------------------------- scan.json
def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("rayflavor", "ray", "pymoo", "numpy", "numba", "polars", "pyarrow", "click"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def write_scan_json(out: Location, settings: ScanSettings, **extra) -> None:
    """(Re)write ``OUT/scan.json``: the settings whole under "settings", plus ``extra``."""
    loc = out / "scan.json"
    doc = loc.read_json() if loc.exists() else {}
    doc.update(format=SCAN_FORMAT, settings=configfile.to_mapping(settings),
               seeds={str(i): settings.island_seed(i) for i in range(settings.islands)}, versions=_versions())
    doc.update(extra)
    loc.write_json(doc)


def read_scan_json(out: Location) -> dict:
    return (out / "scan.json").read_json()


def read_settings(out: Location) -> ScanSettings:
    """The settings stored in ``OUT/scan.json`` (ConfigError/ValueError: one line)."""
    doc = read_scan_json(out)
    if "settings" not in doc:
        raise ValueError(f"{out.uri}/scan.json has no 'settings' (written by an older rayflavor; "
                         "start a new scan with --config built from it)")
    stored = as_stored({k: v for k, v in doc["settings"].items() if k not in RETIRED})
    return configfile.from_mapping(ScanSettings, stored, where=f"{out.uri}/scan.json")


# ---------------------------------------------------------------------------------- lease
class HeldLease:
    """A lease on OUT renewed by a background thread every ttl/3 until :meth:`release`."""

    def __init__(self, out: Location, *, owner: str = "rayflavor scan", ttl: float = LEASE_TTL,
                 wait: float = 0.0) -> None:
        """``wait``: seconds to keep trying while another holder's lease is live (a retried job
        waits out the lease of its dead predecessor, which lapses within ``ttl``)."""
        give_up = time.monotonic() + wait
        while True:
            try:
                self.lease = lease_mod.acquire(out, owner=owner, ttl=ttl)
                break
            except lease_mod.LeaseHeld:
                if time.monotonic() >= give_up:
                    raise
                time.sleep(min(5.0, max(0.1, give_up - time.monotonic())))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, args=(ttl / 3.0,), daemon=True, name="scan-lease")
        self._thread.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.lease.renew()
            except Exception:  # noqa: BLE001 - a failed renewal is retried at the next tick
                pass

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.lease.release()

    def __enter__(self) -> "HeldLease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------------------------- driver
@dataclass
class ScanResult:
    """What a scan did.  ``failure``: why it failed (an island that raised, a store that stayed
    down; one line), ``None`` when it did not."""

    statuses: dict[int, dict]
    wall_seconds: float
    interrupted: bool
    driver_cpu_seconds: float = 0.0
    nodes: dict[int, list[dict]] = field(default_factory=dict)
    failure: str | None = None


@dataclass
class _Slot:
    actor: Any
    ref: Any  # the actor's call in flight (start or run)


def _summary(s: dict) -> dict:
    keys = ("generation", "n_valid", "stop_reason", "restarts", "stop_history", "wall_seconds", "starts", "state", "node",
            "error", "immigrants", "emigrant_batches", "archive_seeded")
    return {k: s.get(k) for k in keys}


def island_statuses_from_store(out: Location, settings: ScanSettings) -> dict[int, dict]:
    """Per island: the status stored with its last checkpoint (state ``done`` after a final stop,
    else ``queued``; islands that never committed one are ``queued`` with no starts)."""
    st: dict[int, dict] = {}
    for i in range(settings.islands):
        loaded = IslandStore(out, i).load()
        base = {"island": i, "seed": settings.island_seed(i)}
        if loaded is None:
            st[i] = {**base, "stop_reason": None, "state": "queued", "starts": 0, "start_nodes": []}
        else:
            info = loaded[2]
            s = dict(info.get("status") or {})
            st[i] = {**base, **s, "wall_seconds": info.get("wall_seconds", 0.0), "starts": len(info.get("starts", [])),
                     "start_nodes": list(info.get("starts", [])), "state": "queued"}
            if s.get("stop_reason") not in RESUMABLE:
                st[i]["state"] = "done"
    return st


def run_scan(settings: ScanSettings, out: Location | str, *, address: str | None = None, live: bool = True,
             echo=print, lease: HeldLease | None = None, make: Callable | None = None,
             restore: Callable | None = None, stop_grace: float = STOP_GRACE,
             data_changed_ok: bool = False) -> ScanResult:
    """Run (or continue) every island of ``settings`` to its stop, writing to ``out``.

    The islands use the scan's own copy of its data set, ``OUT/data.toml``
    (:mod:`rayflavor.storage.scan_data`, written at the first start); ``data_changed_ok``: go on
    with that copy even though ``settings.data`` was edited since (refused otherwise).

    The caller may pass a lease it holds on ``out`` (the CLI does, to cover the dedupe after the
    scan); otherwise one is acquired here and released at the end.  See the module docstring.
    """
    if settings.seed is None:
        raise ValueError("run_scan needs a seed (the CLI draws one when none is given)")
    out = resolve(out) if isinstance(out, str) else out
    out = out.with_retries(settings.store_retry_seconds)  # the actors get it with the same patience
    ensure_ray(address)
    own_lease = lease is None
    if own_lease:
        lease = HeldLease(out)
    cpu0 = time.process_time()
    try:
        return _drive(settings, out, live=live, echo=echo, make=make, restore=restore, cpu0=cpu0, stop_grace=stop_grace,
                      data_changed_ok=data_changed_ok)
    finally:
        if own_lease:
            lease.release()


def _drive(settings: ScanSettings, out: Location, *, live, echo, make, restore, cpu0, stop_grace,
           data_changed_ok) -> ScanResult:
    started = _now()
    data, data_file = scan_data.keep_copy(out, settings.data, changed_ok=data_changed_ok)
    statuses = island_statuses_from_store(out, settings)
    write_scan_json(out, settings, status="running", failure=None, started_at=started, data_file=data_file,
                    island_starts={str(i): s["start_nodes"] for i, s in statuses.items()})
    todo = [i for i, s in statuses.items() if s["state"] == "queued"]
    island_cfg = configfile.to_mapping(settings.island)
    # the exchange of migrants (and the restart archive); None: independent islands, as in the paper
    archive = settings.island.restart_archive > 0
    exchange = Exchange(settings.migration, settings.islands, archive_size=ARCHIVE_SIZE if archive else 0) \
        if settings.migration != "none" or archive else None
    migration = (settings.migration_every, settings.migrants) if exchange is not None else None
    archive_ref: list = [None, -1]  # the archive in the object store, and its version (put once per change)
    # SPREAD: independent islands balance over the nodes (a lost node takes fewer of them along);
    # pending ones are still demand the autoscaler sees
    actor_cls = IslandActor.options(max_restarts=settings.max_restarts, max_task_retries=settings.max_restarts,
                                    scheduling_strategy="SPREAD")
    slots: dict[int, _Slot] = {}
    #: islands whose (new) actor has not answered yet, in submission order: the ones an idle
    #: placed actor may take over
    unplaced: dict[int, None] = {}
    failures: dict[int, int] = {}
    progress = Progress(settings.islands, live=live, echo=echo)
    t0 = time.monotonic()
    deadline = None if settings.time_limit is None else t0 + settings.time_limit
    interrupted = False
    driver_failure: str | None = None
    old_handler = None
    last_json = time.monotonic()

    def _term(signum, frame):  # SIGTERM behaves like Ctrl-C
        raise KeyboardInterrupt

    try:
        old_handler = signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        pass

    def chunk() -> float:
        if deadline is None:
            return settings.chunk_seconds
        return max(0.0, min(settings.chunk_seconds, deadline - time.monotonic()))

    def assign(i: int, actor) -> None:
        slots[i] = _Slot(actor, actor.start.remote(i, settings.island_seed(i)))
        statuses[i].update(state="pending", assigned_at=time.time())  # to this actor (new or placed)
        statuses[i].setdefault("submitted_at", statuses[i]["assigned_at"])

    def submit_new(i: int) -> None:
        assign(i, actor_cls.remote(out, island_cfg, data, settings.flush_rows, settings.flush_seconds,
                                   make, restore, migration))
        unplaced[i] = None

    def run_next(i: int, actor) -> _Slot:
        """Island ``i``'s next running chunk, with its immigrants and the archive."""
        if exchange is None:
            return _Slot(actor, actor.run.remote(i, settings.island_seed(i), chunk()))
        imm = exchange.take(i) if settings.migration != "none" else None
        if archive and archive_ref[1] != exchange.archive_version:
            archive_ref[:] = [ray.put(exchange.archive()), exchange.archive_version]
        return _Slot(actor, actor.run.remote(i, settings.island_seed(i), chunk(), imm, archive_ref[0]))

    def finish(i: int, state: str) -> None:
        """Island ``i`` is over: its actor takes the pending island submitted last (whose unplaced
        actor is killed), or is killed itself, which frees its CPU for a pending island."""
        slot = slots.pop(i)
        unplaced.pop(i, None)
        statuses[i]["state"] = state
        if exchange is not None and state != "done":  # a done island's last batch stays for its neighbours
            exchange.forget(i)
        if unplaced and state == "done" and (deadline is None or time.monotonic() < deadline):
            j, _ = unplaced.popitem()
            ray.kill(slots[j].actor, no_restart=True)
            assign(j, slot.actor)
        else:
            ray.kill(slot.actor, no_restart=True)

    try:
        with progress:
            for i in todo:  # every island at once: the pending ones are the demand the autoscaler sees
                submit_new(i)
            while slots:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                refs = {slot.ref: i for i, slot in slots.items()}
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                if ready:
                    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
                for ref in ready:
                    i = refs[ref]
                    slot = slots.get(i)
                    if slot is None or slot.ref is not ref:  # handed to another actor in this batch
                        continue
                    try:
                        st = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the island raised: it failed, the others go on
                        statuses[i].update(stop_reason="failed", error=typed_line(exc))
                        finish(i, "failed")
                        continue
                    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                        failures[i] = failures.get(i, 0) + 1
                        statuses[i]["failures"] = failures[i]
                        if failures[i] > settings.max_restarts:
                            statuses[i].update(stop_reason="failed",
                                               error=f"the island's actor died {failures[i]} times (lost nodes or processes)")
                            finish(i, "failed")
                        else:  # Ray gave up on this actor: a new one continues from the checkpoint
                            if exchange is not None:
                                exchange.forget(i)  # it sends again once it runs again
                            ray.kill(slot.actor, no_restart=True)
                            del slots[i]
                            unplaced.pop(i, None)
                            submit_new(i)
                        continue
                    except ray.exceptions.RayError as exc:  # its result was lost, out of memory, ...
                        statuses[i].update(stop_reason="failed", error=typed_line(exc))
                        finish(i, "failed")
                        continue
                    unplaced.pop(i, None)
                    emigrants = st.pop("emigrants", None)
                    if exchange is not None and emigrants is not None:
                        exchange.post(i, emigrants["genes"], emigrants["loss"])
                    statuses[i].update(st)
                    if st.get("stop_reason") is not None:
                        finish(i, "done")
                        continue
                    statuses[i]["state"] = "running"
                    slots[i] = run_next(i, slot.actor)
                progress.update(statuses, time.monotonic() - t0)
                if time.monotonic() - last_json > 10.0:
                    last_json = time.monotonic()
                    write_scan_json(out, settings, status="running", started_at=started,
                                    island_starts={str(i): s.get("start_nodes", []) for i, s in statuses.items()})
            reason = "time-limit"
    except KeyboardInterrupt:
        interrupted = True
        reason = "interrupted"
    except (StorageError, OSError) as exc:  # the driver's own writes failed for good: stop every island
        driver_failure = f"the driver could not write to {out.uri}: {typed_line(exc)}"
        reason = "interrupted"
    finally:
        if old_handler is not None:
            try:
                signal.signal(signal.SIGTERM, old_handler)
            except ValueError:
                pass
    _stop_all(slots, statuses, reason, grace=stop_grace + settings.chunk_seconds, seed_of=settings.island_seed,
              outage_grace=settings.store_retry_seconds, store_down=lambda: not _answers(out))
    wall = time.monotonic() - t0
    progress.final(statuses, wall)
    nodes = {i: s.get("start_nodes", []) for i, s in statuses.items()}
    failure = _failure(statuses, driver_failure)
    status = "failed" if failure else "interrupted" if interrupted else "finished"
    try:
        write_scan_json(out, settings, status=status, failure=failure, started_at=started,
                        finished_at=_now(), wall_seconds=wall,
                        islands_status={str(i): _summary(s) for i, s in statuses.items()},
                        island_starts={str(i): v for i, v in nodes.items()},
                        migration=None if exchange is None else exchange.summary())
    except (StorageError, OSError) as exc:
        failure = (f"{failure or 'the scan ended ' + status}; and {out.uri}/scan.json could not be updated "
                   f"(it may still say 'running'): {typed_line(exc)}")
    return ScanResult(statuses, wall, interrupted, time.process_time() - cpu0, nodes, failure)


def _failure(statuses: dict[int, dict], driver_failure: str | None) -> str | None:
    """One line saying why the scan failed (``None``: it did not): the driver's error, else the
    failed islands (how many, the first one's number and error)."""
    failed = sorted(i for i, s in statuses.items() if s.get("state") == "failed")
    if driver_failure:
        return driver_failure
    if not failed:
        return None
    first = failed[0]
    more = f" (and {len(failed) - 1} more island(s): {', '.join(map(str, failed[1:6]))}{', ...' if len(failed) > 6 else ''})" \
        if len(failed) > 1 else ""
    return f"island {first} failed: {statuses[first].get('error') or 'unknown error'}{more}"


def _answers(out: Location) -> bool:
    """Whether the store of ``out`` answers right now (one attempt, no retries)."""
    try:
        (out.with_retries(0) / "scan.json").exists()
        return True
    except (StorageError, OSError):
        return False


def _stop_all(slots: dict[int, _Slot], statuses: dict[int, dict], reason: str, *, grace: float,
              seed_of: Callable[[int], int], outage_grace: float = 0.0,
              store_down: Callable[[], bool] = lambda: False) -> None:
    """Ask every started actor to stop and commit; kill what has not answered within ``grace``
    seconds (its last checkpoint stands) and every actor that never started.  While the store
    does not answer (``store_down()``), unanswered actors are likely waiting out the outage to
    commit: they get ``outage_grace`` seconds more."""
    stops: dict[Any, int] = {}
    for i, slot in slots.items():
        if statuses[i].get("state") == "running":
            stops[slot.actor.stop.remote(i, seed_of(i), reason)] = i
        else:  # pending: no node yet, nothing to commit
            ray.kill(slot.actor, no_restart=True)
            statuses[i].update(stop_reason=reason, state="not started")
    ready: list = []
    if stops:
        ready, waiting = ray.wait(list(stops), num_returns=len(stops), timeout=grace)
        if waiting and outage_grace > 0 and store_down():
            more, _ = ray.wait(waiting, num_returns=len(waiting), timeout=outage_grace)
            ready = [*ready, *more]
    for ref in ready:
        i = stops.pop(ref)
        try:
            statuses[i].update(ray.get(ref), state="stopped")
        except ray.exceptions.RayTaskError as exc:  # raised while stopping: its last checkpoint stands
            statuses[i].update(stop_reason="failed", state="failed", error=typed_line(exc))
        except Exception:  # noqa: BLE001 - died while stopping: its last checkpoint stands
            statuses[i].update(stop_reason=reason, state="killed")
    for ref, i in stops.items():  # no answer within the grace: a step longer than the limit
        statuses[i].update(stop_reason=reason, state="killed")
    _settle_runs(slots, statuses)
    for i, slot in slots.items():
        ray.kill(slot.actor, no_restart=True)
    slots.clear()


def _settle_runs(slots: dict[int, _Slot], statuses: dict[int, dict]) -> None:
    """Read the calls still in flight when the driver left its loop (a stop queues behind them, so
    they have answered by now unless the actor hangs), so that Ray does not print one that raised
    -- a commit into a store that went away -- as an "Unhandled error" with its stack after the
    scan's own one-line report.  Its island's state stands as its stop left it (a stop that
    answered committed what the island held, or failed with its own error), except an island
    whose stop never answered: it fails with the run's error, which says why."""
    refs = {slot.ref: i for i, slot in slots.items() if slot.ref is not None}
    if not refs:
        return
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
    for ref in ready:
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            i = refs[ref]
            if statuses[i].get("state") == "killed":
                statuses[i].update(stop_reason="failed", state="failed", error=typed_line(exc))
        except ray.exceptions.RayError:  # died or lost: the stop's answer (or its absence) says it already
            pass
