"""The settings of one scan, defined once (no Ray import here).

:class:`ScanSettings` is what ``rayflavor scan`` builds (dataclass default < ``--preset`` <
``--config FILE`` < explicit option) and what :func:`rayflavor.orchestration.islands.run_scan`
runs; it is stored whole under ``"settings"`` in ``OUT/scan.json`` and read back from there by
``--resume``, ``dedupe`` and ``analyze`` (so ``--config OUT/scan.json`` repeats a scan).

Units: every duration in seconds.  Island ``i`` of a scan runs with seed ``seed + i``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from rayflavor.methods.ga.config import ISLAND_PRESETS, MAX_POP_SIZE, IslandConfig
from rayflavor.methods.ga.migration import TOPOLOGIES
from rayflavor.physics.fn import DEFAULT_DATA
from rayflavor.settings_model import check, parse_duration, seed_setting, setting

#: Most islands of one scan (a million 1-CPU actors is beyond any cluster rayflavor was run on).
MAX_ISLANDS = 10**6
#: 6 hours of 64 islands flushing every 10 minutes leave 64 x 36 = 2304 parts (the sizing is in
#: :mod:`rayflavor.storage.island_store`); a lost node costs at most this much island time, never
#: a committed model.
FLUSH_SECONDS = 600.0
#: an island that finds models faster than this per flush period commits early (rows)
FLUSH_ROWS = 20_000
#: island ``i`` runs with seed ``seed + i``, stored as int64 in every part: seeds stay below this
SEED_LIMIT = 2**63


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
    migration      topology of the migration between islands (:mod:`rayflavor.methods.ga.migration`):
                   ``none`` (independent islands, the FN paper's setting), ``ring`` (the
                   default), ``full``
    migration_every  generations of an island between its emigrant batches (they travel at the
                   end of its running chunk, so at most one batch per ``chunk_seconds``)
    migrants       points an island sends per batch, and takes in per exchange
    island         the islands' search settings (:class:`IslandConfig`; presets
                   :data:`ISLAND_PRESETS`)
    """

    islands: int = setting(64, lo=1, hi=MAX_ISLANDS, option=True,
                           help="Number of NSGA-III islands (one 1-CPU Ray actor each; Ray queues the rest).")
    seed: int | None = seed_setting(None, help="Base seed; island i uses seed + i (default: random, recorded in "
                                               "scan.json).")
    data: str = setting(DEFAULT_DATA, option="--data", metavar="NAME|PATH",
                        help="Experimental data set: a shipped name or the path of a data file.")
    time_limit: float | None = setting(None, lo=0.0, lo_open=True, option=True, parse=parse_duration,
                                       metavar="DURATION",
                                       help="Wall-clock limit of this run, e.g. 90s, 10m, 2h (islands are stopped "
                                            "and commit; one that does not answer within the limit plus a grace is "
                                            "killed, its last checkpoint stands).")
    chunk_seconds: float = setting(1.0, lo=0.0, lo_open=True, hi=3600.0,
                                   help="Length of one actor call between driver status updates (s).")
    flush_rows: int = setting(FLUSH_ROWS, lo=1, hi=10**9, help="An island commits a part when this many models wait.")
    flush_seconds: float = setting(FLUSH_SECONDS, lo=0.0, lo_open=True,
                                   help="... or when this long passed since its last commit (s).")
    max_restarts: int = setting(5, lo=0, hi=10**6, help="Restarts of a lost island actor from its checkpoint.")
    store_retry_seconds: float = setting(300.0, lo=0.0, hi=86400.0,
                                         help="How long one store operation keeps retrying transient errors (s).")
    # ring (with [island] restart_archive 0.1): on 32 held-out seeds every island found a first valid
    # model within 2 core-minutes (median 5.5 s) against 25 of 32 (38.9 s) for independent islands,
    # and 1.37x the distinct light textures per core-hour (docs/experiments.md#2026-12-06-migration).
    # Independent islands (the paper's setting, which Chao2's estimate assumes) are --preset independent.
    migration: str = setting("ring", choices=TOPOLOGIES,
                             help="Migration between islands: none (independent islands), ring (each with its two "
                                  "neighbours), full (each with every other).")
    migration_every: int = setting(20, lo=1, hi=10**6,
                                   help="Generations of an island between the emigrant batches it sends (they leave "
                                        "at the end of its running chunk).")
    migrants: int = setting(4, lo=1, hi=MAX_POP_SIZE,
                            help="Points an island sends per batch and takes in per exchange.")
    island: IslandConfig = setting(factory=lambda: ISLAND_PRESETS["fast"], option=True,
                                   help="The islands' search settings (the [island] table).")

    def __post_init__(self) -> None:
        check(self)
        if self.seed is not None and self.seed + self.islands > SEED_LIMIT:
            raise ValueError(f"seed must be at most 2**63 - islands = {SEED_LIMIT - self.islands} (island i uses "
                             f"seed + i, stored as a 64-bit integer), got {self.seed}")

    def island_seed(self, i: int) -> int:
        """Seed of island ``i`` (the base seed must be set)."""
        if self.seed is None:
            raise ValueError("the scan's seed is not set")
        return self.seed + i


#: presets of the whole scan: ``fast`` (the defaults: fast islands that exchange near-misses over a
#: ring and restart from the scan-wide archive), ``independent`` (the same islands, nothing passes
#: between them: the sampling units Chao2's richness estimate assumes) and ``paper`` (the FN paper's
#: islands, independent)
SCAN_PRESETS: dict[str, ScanSettings] = {
    "fast": ScanSettings(),
    "independent": ScanSettings(migration="none", island=replace(ISLAND_PRESETS["fast"], restart_archive=0.0)),
    "paper": ScanSettings(migration="none", island=ISLAND_PRESETS["paper"]),
}


def as_stored(settings: dict) -> dict:
    """The settings table of a stored ``scan.json`` as that scan ran: one written before migration
    existed has no ``migration`` and no ``[island] restart_archive``, and ran independent islands,
    which its resume keeps (the defaults changed to a ring with the archive since); one written
    before ``[island] foreign`` existed took immigrants always, which its resume keeps (the default
    is ``until-found`` since)."""
    out = dict(settings)
    out.setdefault("migration", "none")
    island = out.get("island", {})
    if isinstance(island, dict):
        out["island"] = {"restart_archive": 0.0, "foreign": "always", **island}
    return out


def preset(name: str) -> ScanSettings:
    """The scan preset ``name`` (``fast``, ``independent`` or ``paper``); ValueError naming the choices."""
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
