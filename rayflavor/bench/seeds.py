"""Several diffusion runs (one per seed) against one reference, as one table: held-out seeds
show what a user gets from any seed, not the tuning seeds' best.

Per run, only its **final** sample sets count: the network-only one (seed ``seed + 1``) and the
physics-guided or projected one (``seed + 2``) that ``rayflavor diffusion run`` draws last; the rounds' own
samples measure the rounds, not the result. For each final set: the solution fraction, its
distinct solutions, the core-seconds its shards spent (generation plus exact re-evaluation), and
the fidelity of its solutions against the reference (:mod:`rayflavor.analysis.fidelity`: KS, Kuiper for the
circular predictions, and the share within 1 % of a prior-box face). The table gives each seed,
the median and the range, not the best seed.

Throughput is distinct solutions per core-second; a set whose worst distance exceeds the goal is
not a reference-faithful sample, and the table says so next to its rate. The reference's own rate
is its smallest effective sample size over the predictions per core-second of its tasks.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from rayflavor.analysis.fidelity import (KIND_COLUMNS, PREDICTIONS, Fidelity, compare_frames, prediction_columns,
                                        prediction_distances, sample_kind)
from rayflavor.methods.diffusion.sampleset import flat_manifest, network_only, summarize
from rayflavor.methods.diffusion.settings import LEGACY_TEACHERS
from rayflavor.storage import runs

GOAL = 0.1
#: Short names of the predictions in tables.
SHORT = {"m_sum": "Σm", "delta_cp": "δCP", "alpha21": "α21", "alpha31": "α31", "m_bb": "m_ββ", "m_beta": "m_β",
         "m1_over_m3": "M1/M3", "m2_over_m3": "M2/M3", "log10_m3_gev": "log M3"}


@dataclass
class FinalSet:
    """One final sample set of a run."""

    tag: str
    physics: int
    project: int
    n: int
    solutions: int
    distinct: int
    core_seconds: float
    fidelity: Fidelity | None  # None without solutions
    orbits: int
    drawn: int = 0  # draws of the network: n, plus those redrawn outside the prior box (0: n)

    @property
    def fraction(self) -> float:
        return self.solutions / self.n if self.n else float("nan")

    @property
    def fraction_text(self) -> str:
        """The fraction, and with redrawn draws also the fraction of every draw: ``"0.95 (0.70 of draws)"``."""
        if self.drawn > self.n:
            return f"{_fmt_frac(self.fraction)} ({_fmt_frac(self.solutions / self.drawn)} of draws)"
        return _fmt_frac(self.fraction)

    @property
    def rate(self) -> float:
        """Distinct solutions per core-second."""
        return self.distinct / self.core_seconds if self.core_seconds else float("nan")


@dataclass
class SeedRow:
    run: str
    seed: int
    teacher: str
    sets: dict[str, FinalSet] = field(default_factory=dict)  # "network" and "guided"
    coordinates: str = field(kw_only=True)  # a run stored before there was a choice: "paper"
    labels: str = field(kw_only=True)  # ... and "central"
    #: the run's own teacher (RUN/teacher/reference.parquet) against the same reference: how far an
    #: independent network-free sample lies from it, the floor the network's distances are read against
    teacher_fidelity: Fidelity | None = field(default=None, kw_only=True)
    teacher_predictions: dict[str, np.ndarray] | None = field(default=None, kw_only=True, repr=False)

    @property
    def kind(self) -> str:
        """The kind of chain: its teacher, its network's coordinates, the final labels and how its second
        final set was drawn."""
        g = self.sets.get("guided")
        head = self.teacher + ("" if self.coordinates == "paper" else f", {self.coordinates}")
        head += "" if self.labels == "central" else f", labels {self.labels}"
        return head + (f", {sample_kind(g.physics, g.project, g.orbits)}" if g else "")


def final_sets(run: runs.Where) -> tuple[dict, list[tuple[str, dict, dict]]]:
    """(the run's stored settings, [(tag, flat manifest, summary incl. core-seconds)] of its final sets)."""
    manifest = runs.read_json(runs.run_manifest_path(run))
    st = manifest.get("settings", {})
    seed = int(st.get("seed", 0))
    out = []
    for d, stored in runs.sample_sets(run):
        m = flat_manifest(stored)
        if m.get("seed") in (seed + 1, seed + 2) and runs.finished_parts(d):
            stats = runs.part_stats(d)
            s = summarize(stats)
            s["core_seconds"] = float(sum(p["seconds_sample"] + p.get("seconds_evaluate", 0.0) for p in stats))
            out.append((d.name, m, s))
    return st, out


def seed_row(run: runs.Where, reference: pl.DataFrame, floor: dict[str, float] | None = None) -> SeedRow:
    """One run's final sets, measured against ``reference`` (a reference table)."""
    st, sets = final_sets(run)
    if not sets:
        raise ValueError(f"{runs.loc(run).uri}: no finished final sample set (is the run finished?)")
    sols = pl.from_arrow(runs.read_table(runs.solutions_path(run))) if runs.solutions_path(run).is_file() else None
    teacher = str(st.get("teacher", "none"))
    row = SeedRow(str(runs.loc(run).uri), int(st.get("seed", 0)), LEGACY_TEACHERS.get(teacher, teacher),
                  coordinates=str(st.get("coordinates", "paper")), labels=str(st.get("final_labels", "central")))
    for tag, m, s in sets:
        mine = sols.filter(pl.col("sample_set") == tag) if sols is not None and "sample_set" in sols.columns else None
        fid = None
        if mine is not None and mine.height:
            fid = next(iter(compare_frames(mine.drop(*KIND_COLUMNS, strict=False), reference,
                                           floor).values()))
        key = "network" if network_only(m) else "guided"
        row.sets[key] = FinalSet(tag, int(m.get("physics") or 0), int(m.get("project") or 0), s["n"], s["solutions"],
                                 s["distinct_solutions"], s["core_seconds"], fid, int(m.get("orbits") or 0),
                                 int(s.get("drawn", s["n"])))
    own = runs.loc(run) / "teacher" / "reference.parquet"
    if own.is_file():  # the rows the network learned: every row of an importance teacher, each chain's last state
        taught = pl.from_arrow(runs.read_table(own))
        if "draw" in taught.columns:
            taught = taught.filter(pl.col("draw") == pl.col("draw").max())
        taught = taught.drop(*KIND_COLUMNS, strict=False)
        row.teacher_fidelity = next(iter(compare_frames(taught, reference, floor).values()))
        row.teacher_predictions = prediction_columns({c: taught[c].to_numpy() for c in taught.columns})
    return row


def teacher_spread(rows: list[SeedRow]) -> dict[str, list[tuple[float, str]]]:
    """Per kind of teacher, the largest distance over the predictions (KS; Kuiper for circular ones)
    between every two runs' own teachers, with the prediction it is on: how far two teachers of
    different seeds lie apart."""
    out: dict[str, list[tuple[float, str]]] = {}
    for kind in dict.fromkeys(r.teacher for r in rows):
        mine = [r.teacher_predictions for r in rows if r.teacher == kind and r.teacher_predictions is not None]
        for a, b in itertools.combinations(mine, 2):
            d = prediction_distances(a, b)
            name = max(d, key=d.get)
            out.setdefault(kind, []).append((d[name], name))
    return out


def spread_lines(rows: list[SeedRow]) -> list[str]:
    """One line per kind of teacher: its teacher-to-teacher spread, median (range) over the pairs."""
    lines = []
    for kind, pairs in teacher_spread(rows).items():
        worst = max(pairs)
        lines.append(f"teacher-to-teacher spread ({kind}, {len(pairs)} pairs of seeds): largest distance over the "
                     f"predictions {_stats([v for v, _ in pairs])}, at most on {SHORT[worst[1]]}")
    return lines


def reference_rate(summary: dict) -> tuple[float, float]:
    """(smallest ESS over the predictions, per core-second of the tasks) of a ``reference.json``;
    for an importance reference (``"method": "importance"``) its Kish ESS per CPU-second."""
    if summary.get("method") == "importance":
        return summary["ess"], summary["ess_per_core_second"] or float("nan")
    ess = min(v["ess"] for v in summary["diagnostics"].values())
    secs = sum(t["nested"]["seconds"] + t["chains"]["seconds"] for t in summary["tasks"])
    return ess, ess / secs if secs else float("nan")


def _fmt_frac(v: float) -> str:
    return "—" if not math.isfinite(v) else ("0" if v == 0 else f"{v:.2e}" if v < 0.01 else f"{v:.3f}")


def _stats(vals: list[float]) -> str:
    v = [x for x in vals if math.isfinite(x)]
    if not v:
        return "—"
    return f"{np.median(v):.3g} ({min(v):.3g}–{max(v):.3g})"


def table(rows: list[SeedRow], goal: float = GOAL) -> str:
    """Markdown: per seed the final fractions, the guided set's distance per prediction, the face
    shares and the throughput; then the median (range) over the seeds, separately for each kind of
    chain (:attr:`SeedRow.kind`)."""
    preds = [p for p, _ in PREDICTIONS]
    short = SHORT
    head = ["seed", "teacher, second set", "network-only fraction", "guided fraction",
            "worst distance, network only (solutions)",
            *[f"{short[p]} (guided)" for p in preds], "face: network only / guided / reference",
            "network-only distinct solutions / core-s", "guided distinct solutions / core-s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in dict.fromkeys(r.kind for r in rows):  # one block (and median) per kind of chain
        group = [r for r in rows if r.kind == kind]
        lines += _block(group, head, preds, goal)
    return "\n".join(lines)


def _block(rows: list[SeedRow], head: list[str], preds: list[str], goal: float) -> list[str]:
    lines: list[str] = []
    cols: dict[str, list[float]] = {h: [] for h in head}

    def add(h: str, v: float, text: str | None = None) -> str:
        cols[h].append(v)
        return text if text is not None else (f"{v:.3f}" if math.isfinite(v) else "—")

    for r in rows:
        net, gui = r.sets.get("network"), r.sets.get("guided")
        cells = [str(r.seed), r.kind]
        cells.append(add(head[2], net.fraction if net else math.nan, net.fraction_text if net else "—"))
        cells.append(add(head[3], gui.fraction if gui else math.nan, gui.fraction_text if gui else "—"))
        w = net.fidelity.worst if net and net.fidelity else math.nan
        cells.append(add(head[4], w, f"{w:.2f} ({net.solutions})" if math.isfinite(w) else f"— ({net.solutions if net else 0})"))
        for p, h in zip(preds, head[5:5 + len(preds)]):
            cells.append(add(h, gui.fidelity.distances[p] if gui and gui.fidelity else math.nan))
        f = gui.fidelity if gui and gui.fidelity else None
        fn = net.fidelity if net and net.fidelity else None
        ref_face = (f or fn).face_reference if (f or fn) else math.nan
        cells.append(add(head[-3], 100 * f.face_run if f else math.nan,  # percent; the median is the guided set's
                         " / ".join("—" if x is None else f"{100 * x.face_run:.1f} %" for x in (fn, f))
                         + (f" / {100 * ref_face:.1f} %" if math.isfinite(ref_face) else " / —")))
        for h, fs, fi in ((head[-2], net, fn), (head[-1], gui, f)):
            rate = fs.rate if fs else math.nan
            faithful = fi is not None and fi.worst <= goal
            cells.append(add(h, rate, "—" if not math.isfinite(rate) else
                             f"{rate:.1f}" + ("" if faithful else f" (not faithful: worst {fi.worst:.2f})" if fi
                                              else "")))
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > 1:
        med = ["median (range)", rows[0].kind] + [_stats(cols[h]) for h in head[2:]]
        lines.append("| " + " | ".join(med) + " |")
    return lines


def _worst(f: Fidelity | None) -> tuple[float, str]:
    """(the largest distance, ``"0.031 (m_ββ)"``) of a fidelity; (nan, "—") without one."""
    if f is None:
        return math.nan, "—"
    name = max(f.distances, key=f.distances.get)
    return f.worst, f"{f.worst:.3f} ({SHORT[name]})"


def floor_table(rows: list[SeedRow], goal: float) -> str:
    """Markdown: per seed the network-only set's fraction and worst distance beside the floor it is
    read against (the run's own network-free teacher, an independent sample of the solution set,
    against the same reference), the guided set's fraction and worst distance (does the network
    still need that step?), and whether the network-only set meets ``goal``; then median (range)."""
    head = ["seed", "network-only fraction", "network-only worst (what)", "floor: the teacher's own worst (what)",
            "guided fraction", "guided worst (what)", f"network only ≤ {goal:g}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cols: dict[int, list[float]] = {i: [] for i in range(1, 6)}
    met = 0
    for r in rows:
        net, gui = r.sets.get("network"), r.sets.get("guided")
        vals = [(net.fraction, net.fraction_text) if net else (math.nan, "—"),
                _worst(net.fidelity if net else None), _worst(r.teacher_fidelity),
                (gui.fraction, gui.fraction_text) if gui else (math.nan, "—"), _worst(gui.fidelity if gui else None)]
        for i, (v, _) in enumerate(vals, 1):
            cols[i].append(v)
        ok = net is not None and net.fidelity is not None and net.fidelity.worst <= goal
        met += ok
        lines.append("| " + " | ".join([str(r.seed), *(t for _, t in vals), "yes" if ok else "no"]) + " |")
    if len(rows) > 1:
        lines.append("| median (range) | " + " | ".join(_stats(cols[i]) for i in range(1, 6))
                     + f" | {met} of {len(rows)} |")
    return "\n".join(lines)


__all__ = ["FinalSet", "GOAL", "SeedRow", "final_sets", "floor_table", "reference_rate", "seed_row", "spread_lines",
           "table", "teacher_spread"]
