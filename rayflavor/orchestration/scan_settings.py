"""The settings of one scan, defined once (no Ray import here).

:class:`ScanSettings` is what ``rayflavor scan`` builds (dataclass default < ``--preset`` <
``--config FILE`` < explicit option) and what :func:`rayflavor.orchestration.islands.run_scan`
runs; it is stored whole under ``"settings"`` in ``OUT/scan.json`` and read back from there by
``--resume``, ``dedupe`` and ``analyze`` (so ``--config OUT/scan.json`` repeats a scan).

Units: every duration in seconds.  Island ``i`` of a scan runs with seed ``seed + i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from rayflavor.methods.ga.island import ISLAND_PRESETS, IslandConfig
from rayflavor.physics.fn import DEFAULT_DATA

#: 6 hours of 64 islands flushing every 10 minutes leave 64 x 36 = 2304 parts (the sizing is in
#: :mod:`rayflavor.storage.island_store`); a lost node costs at most this much island time, never
#: a committed model.
FLUSH_SECONDS = 600.0
#: an island that finds models faster than this per flush period commits early (rows)
FLUSH_ROWS = 20_000
#: island ``i`` runs with seed ``seed + i``, stored as int64 in every part: seeds stay below this
SEED_LIMIT = 2**63


def _positive(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class ScanSettings:
    """Everything that defines a scan except where it writes (``OUT``) and which Ray it uses.

    islands        number of NSGA-III islands (one Ray actor of 1 CPU each)
    seed           base seed, island ``i`` uses ``seed + i``; ``None``: drawn at random by the CLI
                   and recorded in scan.json; ``seed + islands - 1 < 2**63`` (a part stores the
                   island's seed as int64)
    data           shipped data set name or path of a data file (absolute once resolved)
    time_limit     global wall-clock limit in seconds of this run (``None``: islands run to their
                   own stop); actors that do not answer within the limit plus a grace are killed,
                   their last checkpoint stands
    chunk_seconds  length of one actor call between driver status updates (s)
    flush_rows     an island commits a part when this many new models wait
    flush_seconds  ... or when this long has passed since its last commit (s); and at every stop
    max_restarts   restarts of a dead island actor (lost node, killed process) from its checkpoint
    store_retry_seconds  how long one store operation (a commit's PUT, a read, a list) keeps
                   retrying transient errors of an object store (unreachable, 503 SlowDown, 5xx)
                   with exponential backoff before the island, or the scan, fails (s); islands
                   keep their models in memory meanwhile.  Local disks are not retried: a full
                   disk fails at once
    island         the islands' search settings (:class:`IslandConfig`; presets
                   :data:`ISLAND_PRESETS`)
    """

    islands: int = 64
    seed: int | None = None
    data: str = DEFAULT_DATA
    time_limit: float | None = None
    chunk_seconds: float = 1.0
    flush_rows: int = FLUSH_ROWS
    flush_seconds: float = FLUSH_SECONDS
    max_restarts: int = 5
    store_retry_seconds: float = 300.0
    island: IslandConfig = field(default_factory=lambda: ISLAND_PRESETS["fast"])

    def __post_init__(self) -> None:
        def integer(name: str, value, lo: int, *, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")

        integer("islands", self.islands, 1)
        integer("seed", self.seed, 0, allow_none=True)
        if self.seed is not None and self.seed + self.islands > SEED_LIMIT:
            raise ValueError(f"seed must be at most 2**63 - islands = {SEED_LIMIT - self.islands} (island i uses "
                             f"seed + i, stored as a 64-bit integer), got {self.seed}")
        integer("flush_rows", self.flush_rows, 1)
        integer("max_restarts", self.max_restarts, 0)
        _positive("time_limit", self.time_limit, allow_none=True)
        _positive("chunk_seconds", self.chunk_seconds)
        _positive("flush_seconds", self.flush_seconds)
        if isinstance(self.store_retry_seconds, bool) or not isinstance(self.store_retry_seconds, (int, float)) \
                or not math.isfinite(self.store_retry_seconds) or self.store_retry_seconds < 0:
            raise ValueError(f"store_retry_seconds must be a finite number >= 0, got {self.store_retry_seconds!r}")
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(f"data must be a data set name or path, got {self.data!r}")
        if not isinstance(self.island, IslandConfig):
            raise ValueError(f"island must be an IslandConfig, got {type(self.island).__name__}")

    def island_seed(self, i: int) -> int:
        """Seed of island ``i`` (the base seed must be set)."""
        if self.seed is None:
            raise ValueError("the scan's seed is not set")
        return self.seed + i


#: presets of the whole scan: the island presets with every other setting at its default
SCAN_PRESETS: dict[str, ScanSettings] = {name: ScanSettings(island=cfg) for name, cfg in ISLAND_PRESETS.items()}


def preset(name: str) -> ScanSettings:
    """The scan preset ``name`` (``fast`` or ``paper``); ValueError naming the choices."""
    try:
        return SCAN_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (use {' or '.join(SCAN_PRESETS)})") from None


#: settings that may change when a scan is resumed (they steer the run, not the search)
RUN_CONTROL = ("time_limit", "chunk_seconds", "flush_rows", "flush_seconds", "max_restarts",
               "store_retry_seconds")
#: settings that earlier releases stored and that no longer exist; ignored when a stored scan is read
#: (``backlog``: the driver now submits every island at once)
RETIRED = ("backlog",)


def with_run_control(stored: ScanSettings, **changes) -> ScanSettings:
    """``stored`` with run-control fields changed (``--resume --time-limit 2h``); any other field
    -> ValueError naming it."""
    bad = sorted(set(changes) - set(RUN_CONTROL))
    if bad:
        raise ValueError(f"--resume continues the stored settings; {', '.join(bad)} cannot change")
    return replace(stored, **changes)


def differences(stored: ScanSettings, requested: ScanSettings) -> list[str]:
    """The settings (``island.x`` for the islands') in which ``requested`` asks for another scan
    than ``stored``: run-control settings may differ, and a requested seed of ``None`` (draw one)
    accepts the stored seed.  Empty: ``requested`` is the stored scan, to be continued.

    >>> differences(ScanSettings(seed=3), replace(ScanSettings(), time_limit=60.0))
    []
    >>> differences(ScanSettings(seed=3), ScanSettings(islands=8, seed=4))
    ['islands', 'seed']
    """
    out = []
    for f in fields(ScanSettings):
        a, b = getattr(stored, f.name), getattr(requested, f.name)
        if f.name in RUN_CONTROL or (f.name == "seed" and b is None) or a == b:
            continue
        if f.name == "island":
            out += [f"island.{g.name}" for g in fields(a) if getattr(a, g.name) != getattr(b, g.name)]
        else:
            out.append(f.name)
    return out
