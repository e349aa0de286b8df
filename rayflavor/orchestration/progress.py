"""Live view and final table of a scan (no Ray import needed here).

Per island: state (queued -> pending -> running -> done / stopped / killed / failed), the node it
runs on, generation, generations/s, best number of satisfied objectives, valid models so far
(in a scan with targets: and how many of them meet every target), restarts (fresh populations after a stall), actor starts (a lost node or killed process restarts
the actor from its checkpoint) and the stop reasons; a summary line with the number of islands in
each state, valid models, wall time and core-seconds (the islands' busy time).

On a terminal the view is a ``rich`` Live table redrawn twice a second; otherwise (job logs,
pipes) one plain summary line every ``interval`` seconds.  The final table is plain text either way.
"""

from __future__ import annotations

import sys
import time

STATES = ("queued", "pending", "running", "done", "stopped", "killed", "failed", "not started")
_ORDER = {"running": 0, "pending": 1, "stopped": 2, "killed": 2, "failed": 2, "done": 3, "queued": 4, "not started": 5}
COLUMNS = ("island", "seed", "state", "node", "gen", "gen/s", "sat", "valid", "restarts", "starts", "stops")


def _stops(s: dict) -> str:
    """The stop reasons of an island: its history (restarts after stalls) and the final one."""
    hist = s.get("stop_history") or []
    names = [h.get("reason", "?") if isinstance(h, dict) else str(h) for h in hist]
    last = s.get("stop_reason")
    if last and (not names or names[-1] != last):
        names.append(last)
    out: list[str] = []
    for n in names:  # "patience x3, target-valid"
        if out and out[-1].split(" x")[0] == n:
            k = int(out[-1].split(" x")[1]) + 1 if " x" in out[-1] else 2
            out[-1] = f"{n} x{k}"
        else:
            out.append(n)
    return ", ".join(out)


def row(i: int, s: dict) -> list[str]:
    """The cells of island ``i`` (strings, in :data:`COLUMNS` order)."""
    gen = s.get("generation", 0) or 0
    wall = s.get("wall_seconds", 0.0) or 0.0
    rate = gen / wall if wall > 0 else 0.0
    sat = f"{s.get('best_satisfied', 0)}/{s.get('n_objectives', '?')}" if "best_satisfied" in s else "-"
    node = s.get("node") or ""
    valid = str(s.get("n_valid", 0) or 0)
    if "n_targets_met" in s:  # a scan with targets: how many of them meet every target
        valid += f" ({s['n_targets_met']} met)"
    return [str(i), str(s.get("seed", "")), s.get("state", ""), node[:8], str(gen), f"{rate:.1f}", sat,
            valid, str(s.get("restarts", 0) or 0), str(s.get("starts", 0) or 0), _stops(s)]


def counts(statuses: dict[int, dict]) -> dict[str, int]:
    c = {k: 0 for k in STATES}
    for s in statuses.values():
        c[s.get("state", "queued")] = c.get(s.get("state", "queued"), 0) + 1
    return c


def summary(statuses: dict[int, dict], elapsed: float) -> str:
    """One line: islands per state, valid models, distinct nodes, wall and core time."""
    c = counts(statuses)
    valid = sum(s.get("n_valid", 0) or 0 for s in statuses.values())
    met = [s["n_targets_met"] for s in statuses.values() if "n_targets_met" in s]
    core = sum(s.get("wall_seconds", 0.0) or 0.0 for s in statuses.values())
    nodes = {s.get("node") for s in statuses.values() if s.get("state") == "running" and s.get("node")}
    states = "  ".join(f"{k} {v}" for k, v in c.items() if v or k in ("queued", "pending", "running", "done"))
    return (f"[{elapsed:7.1f} s] {states}  valid {valid}{f' ({sum(met)} meet the targets)' if met else ''}  "
            f"nodes {len(nodes)}  "
            f"{core:.1f} core-s ({core / 3600:.3f} core-h)")


def _selected(statuses: dict[int, dict], max_rows: int) -> list[int]:
    order = sorted(statuses, key=lambda i: (_ORDER.get(statuses[i].get("state", ""), 9), i))
    return sorted(order[:max_rows])


def table(statuses: dict[int, dict], elapsed: float, *, max_rows: int = 64) -> str:
    """Plain-text table of island statuses (running islands first when they do not all fit)
    plus the summary line."""
    rows = [list(COLUMNS)] + [row(i, statuses[i]) for i in _selected(statuses, max_rows)]
    widths = [max(len(r[k]) for r in rows) for k in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) if k not in (2, 3, 10) else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    if len(statuses) > max_rows:
        lines.append(f"... {len(statuses) - max_rows} more islands")
    lines.append(summary(statuses, elapsed))
    return "\n".join(lines)


def rich_table(statuses: dict[int, dict], elapsed: float, *, max_rows: int = 40):
    from rich.table import Table

    t = Table(title="rayflavor scan", caption=summary(statuses, elapsed), expand=False)
    for k, c in enumerate(COLUMNS):
        t.add_column(c, justify="left" if k in (2, 3, 10) else "right", no_wrap=True)
    for i in _selected(statuses, max_rows):
        t.add_row(*row(i, statuses[i]))
    if len(statuses) > max_rows:
        t.add_row("...", f"{len(statuses) - max_rows} more", *[""] * (len(COLUMNS) - 2))
    return t


class Progress:
    """Live view of a scan: a rich Live table on a terminal, plain lines every ``interval`` seconds
    otherwise; ``live=False`` prints only the final table.  Use as a context manager around the
    driver loop, then call :meth:`final`."""

    def __init__(self, n_islands: int, *, live: bool = True, echo=print, interval: float = 10.0,
                 tty: bool | None = None) -> None:
        self.live = live
        self.echo = echo
        self.tty = live and (sys.stdout.isatty() if tty is None else tty)
        self.interval = interval
        self.last = -float("inf")
        self._live = None

    def __enter__(self) -> "Progress":
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(), refresh_per_second=2, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, statuses: dict[int, dict], elapsed: float) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if self._live is not None:
            if now - self.last >= 0.5:
                self.last = now
                self._live.update(rich_table(statuses, elapsed))
            return
        if now - self.last >= self.interval:
            self.last = now
            self.echo(summary(statuses, elapsed))

    def final(self, statuses: dict[int, dict], elapsed: float) -> None:
        """The final table (plain text, also into logs)."""
        self.__exit__(None, None, None)
        self.echo(table(statuses, elapsed))
