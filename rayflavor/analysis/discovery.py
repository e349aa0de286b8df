"""The discovery curve of a scan: distinct light textures against core-hours, with the Chao2 total.

Reads every committed part of the scan at OUT (the parts each island's ``checkpoint.json`` lists,
so models of attempts that died before their commit never count), the time each model was found
(``found_at``) and, from each island's checkpoint, when the island first started and how long it
was busy. A model's island-time is ``found_at - first start`` [s]; the curve counts each light
texture at its earliest island-time and converts island-time to core-hours as
:func:`rayflavor.richness.discovery_curve` does (islands side by side from a common start).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from rayflavor.richness import Richness, chao2, discovery_curve, estimate_phrase, estimate_words
from rayflavor.storage.island_store import IslandStore, list_islands
from rayflavor.storage.location import Location
from rayflavor.storage.scan_data import islands_exchanged


@dataclass(frozen=True)
class Discovery:
    hours: np.ndarray  # core-hours at each first discovery
    found: np.ndarray  # distinct light textures found by then
    richness: Richness  # Chao2 over the islands (light textures)
    core_hours: float  # the scan's total busy core-hours


def _light_keys() -> list[pl.Expr]:
    from rayflavor.storage.dedupe import _texture_exprs

    return _texture_exprs()[1]


def _start_seconds(info: dict) -> float | None:
    times = [datetime.fromisoformat(s["at"]).timestamp() for s in info.get("starts", []) if s.get("at")]
    return min(times) if times else None


@dataclass(frozen=True)
class IslandTimes:
    """Committed models of a scan with the island-time at which each was found."""

    models: pl.DataFrame  # "island", "island_seconds" (found_at - the island's first start) and the asked columns
    busy: dict[int, float]  # island -> busy wall seconds (its checkpoint's wall_seconds)


def island_times(out: Location, columns: list[str] | tuple[str, ...] = (), *, exprs: list[pl.Expr] = ()) -> IslandTimes | None:
    """Every committed model row of the scan at ``out`` (with duplicates across islands; the parts
    each island's ``checkpoint.json`` lists, damaged parts skipped) with ``island``,
    ``island_seconds`` [s since the island first started], the raw ``columns`` and ``exprs``
    evaluated on the rows; None when the scan has no committed part or no island start times
    (scans written before rayflavor recorded them)."""
    starts, busy, parts = {}, {}, []
    for i in list_islands(out):
        store = IslandStore(out, i)
        try:  # read-only: load() would garbage-collect, which only the island's writer may do
            ck = store.read_checkpoint()
        except Exception:  # noqa: BLE001 - a damaged island is the dedupe's to report
            continue
        if ck is None:
            continue
        info = ck.get("info") or {}
        t0 = _start_seconds(info)
        if t0 is not None:
            starts[i], busy[i] = t0, float(info.get("wall_seconds", 0.0))
            parts += [store.dir / p["name"] for p in ck["parts"]]  # the committed parts it lists
    if not starts:
        return None
    read = sorted({"island", "found_at", *columns, *(c for e in exprs for c in e.meta.root_names())})
    frames = []
    for p in parts:
        try:
            frames.append(pl.from_arrow(p.read_parquet(columns=read)).lazy().select(
                pl.col("island"), pl.col("found_at").dt.epoch("us").alias("t_us"), *columns, *exprs))
        except Exception:  # noqa: BLE001 - damaged parts are named by the dedupe; the record skips them
            continue
    if frames:
        df = pl.concat(frames).collect()
    else:
        df = pl.DataFrame(schema={"island": pl.Int64, "t_us": pl.Int64})
    t0 = pl.Series([starts.get(i, np.nan) for i in df["island"].to_list()], dtype=pl.Float64)
    df = df.with_columns(island_seconds=(pl.col("t_us") / 1e6 - t0).clip(lower_bound=0.0)).drop("t_us")
    return IslandTimes(df.select("island", "island_seconds", pl.exclude("island", "island_seconds")), busy)


def scan_discovery(out: Location) -> Discovery | None:
    """The discovery record of the scan at ``out``; None when it has no committed models or no
    island start times (scans written before rayflavor recorded them)."""
    rec = island_times(out, exprs=_light_keys())
    if rec is None or rec.models.height == 0:
        return None
    df, busy = rec.models, rec.busy
    island = df["island"].to_numpy()
    keys = df.drop("island", "island_seconds").to_numpy()
    hours, found = discovery_curve(island, df["island_seconds"].to_numpy(), keys, busy=busy)
    # every island that ran is a sampling unit, also one that found nothing (as in `rayflavor dedupe`)
    richness = dataclasses.replace(chao2(island, keys, m=len(busy)), dependent=islands_exchanged(out))
    return Discovery(hours, found, richness, sum(busy.values()) / 3600.0)


def discovery_title(d: Discovery) -> str:
    """The discovery figure's title: what the text output says about the estimate
    (:func:`rayflavor.richness.estimate_phrase`), wrapped to the figure's width."""
    import textwrap

    lines = textwrap.wrap(estimate_phrase(d.richness, "light textures"), 90, break_on_hyphens=False,
                          break_long_words=False)  # a line breaks between words only, never inside "110-167"
    return "\n".join(["discovery curve", *lines])


def discovery_table(d: Discovery) -> pl.DataFrame:
    """One row: the estimate of the total of light textures in the words of the text output
    (:func:`rayflavor.richness.estimate_words`), with the counts behind it and the busy core-hours."""
    r, w = d.richness, estimate_words(d.richness)
    return pl.DataFrame({
        "islands": [r.units], "light textures found": [r.observed], "found by one island": [r.singletons],
        "found by two": [r.doubletons], "estimated total (Chao2)": [w["total"]], "seen": [w["seen"] or "—"],
        "note": [w["caveat"] or "—"], "core-hours": [d.core_hours],
    })


def discovery_plot(d: Discovery):
    """The discovery figure (a matplotlib Figure, Agg backend): distinct light textures against
    core-hours, with the Chao2 estimate and its 95% band when there is one; its title says what
    the text output says (:func:`discovery_title`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.step(np.r_[0.0, d.hours], np.r_[0, d.found], where="post", label="distinct light textures found")
    r = d.richness
    if r.has_estimate and r.estimate > r.observed:
        ax.axhspan(r.low, r.high, color="C1", alpha=0.15, label="Chao2 95% interval")
        ax.axhline(r.estimate, color="C1", lw=1, label=f"Chao2 estimate ({r.units} islands)")
    if r.has_estimate and r.at_least > r.observed:
        ax.axhline(r.at_least, color="C2", lw=1, ls="--", label="at least (repeats between islands, 95%)")
    top = max([r.high if r.has_estimate else 0.0, r.at_least if r.has_estimate else 0.0, 1.0])
    if r.observed > 0 and top > 20 * r.observed:  # a total far beyond the curve: both visible on a log axis
        ax.set_yscale("log")
    ax.set_xlabel("core-hours")
    ax.set_ylabel("distinct light textures")
    ax.set_title(discovery_title(d), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def discovery_figure(d: Discovery, path: Path, fmt: str = "png") -> Path:
    """:func:`discovery_plot` written to ``path/fn_discovery.<fmt>``."""
    import matplotlib.pyplot as plt

    fig = discovery_plot(d)
    out = Path(path) / f"fn_discovery.{fmt}"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["Discovery", "IslandTimes", "discovery_figure", "discovery_plot", "discovery_table", "discovery_title",
           "island_times", "scan_discovery"]
