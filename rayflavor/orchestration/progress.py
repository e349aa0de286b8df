"""Live view and final table of a scan (plain text; no Ray import needed here).

Per island: generation, generations/s, best number of satisfied objectives, valid models so far,
state / stop reason; totals with wall time and core-seconds (the sum of the islands' busy time).
"""

from __future__ import annotations

import sys
import time


def table(statuses: dict[int, dict], elapsed: float, *, max_rows: int = 64) -> str:
    """Text table of island statuses plus a total line."""
    head = f"{'island':>6} {'seed':>10} {'gen':>8} {'gen/s':>7} {'sat':>6} {'valid':>6} {'restarts':>8}  state"
    lines = [head]
    tot_gen = tot_valid = 0
    core = 0.0
    shown = 0
    for i in sorted(statuses):
        s = statuses[i]
        gen = s.get("generation", 0) or 0
        wall = s.get("wall_seconds", 0.0) or 0.0
        core += wall
        tot_gen += gen
        tot_valid += s.get("n_valid", 0) or 0
        if shown >= max_rows:
            continue
        shown += 1
        rate = gen / wall if wall > 0 else 0.0
        sat = f"{s.get('best_satisfied', 0)}/{s.get('n_objectives', '?')}" if "best_satisfied" in s else "-"
        state = s.get("stop_reason") or s.get("state", "")
        if s.get("stop_reason") and s.get("state") == "stopped":
            state = f"stopped ({s['stop_reason']})"
        lines.append(
            f"{i:>6} {s.get('seed', ''):>10} {gen:>8} {rate:>7.1f} {sat:>6} {s.get('n_valid', 0) or 0:>6} "
            f"{max(0, (s.get('starts', 1) or 1) - 1):>8}  {state}"
        )
    if len(statuses) > shown:
        lines.append(f"... {len(statuses) - shown} more islands")
    lines.append(
        f"{'total':>6} {'':>10} {tot_gen:>8} {'':>7} {'':>6} {tot_valid:>6}           "
        f"wall {elapsed:.1f} s, {core:.1f} core-s ({core / 3600:.3f} core-h)"
    )
    return "\n".join(lines)


class Progress:
    """Redraws the table on a terminal (every ``every`` s); else one summary line every 10 s."""

    def __init__(self, n_islands: int, *, live: bool = True, echo=print, every: float = 1.0) -> None:
        self.live = live
        self.echo = echo
        self.tty = live and sys.stdout.isatty()
        self.every = every if self.tty else 10.0
        self.last = 0.0

    def update(self, statuses: dict[int, dict], elapsed: float, final: bool = False) -> None:
        now = time.monotonic()
        if final:
            self.echo(table(statuses, elapsed))
            return
        if not self.live or now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            self.echo("\x1b[H\x1b[J" + table(statuses, elapsed, max_rows=40))
        else:
            running = sum(1 for s in statuses.values() if s.get("state") == "running")
            valid = sum(s.get("n_valid", 0) or 0 for s in statuses.values())
            done = sum(1 for s in statuses.values() if s.get("state") == "done")
            self.echo(f"[{elapsed:7.1f} s] running {running}  done {done}/{len(statuses)}  valid {valid}")
