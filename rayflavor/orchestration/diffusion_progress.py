"""Progress of the diffusion commands: rich bars with rate and ETA on a terminal, plain lines otherwise.

Every long step (sample shards, training steps, fine-tuning rounds) opens a :func:`bar`; on a
terminal (``log`` is ``print`` and stdout is a TTY) it is a rich progress bar, nested steps share
one live display, and the lines the steps ``log`` print above the bars. Elsewhere (a file, a
pipe, a test) a bar does nothing and the steps' one-line summaries are the output.
:func:`polling` runs a function every second in a thread while Ray blocks the driver (used to
follow files the workers write).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_live = None  # the one rich Progress shown while any bar is open


def interactive(log) -> bool:
    """True when progress bars are shown: output goes to ``print`` on a terminal."""
    return log is print and sys.stdout.isatty()


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {task.fields.get('unit', '')}/s" if speed else "")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TextColumn("ETA"), TimeRemainingColumn())


@contextmanager
def bar(description: str, total: int, unit: str, log=print) -> Iterator[Callable[[int], None]]:
    """A progress bar of ``total`` ``unit``; yields ``update(completed)``."""
    global _live
    if not interactive(log):
        yield lambda completed: None
        return
    own = _live is None
    if own:
        _live = _progress()
        _live.start()
    live = _live
    task = live.add_task(description, total=total, unit=unit)
    try:
        yield lambda completed: live.update(task, completed=completed)
    finally:
        live.remove_task(task)
        if own:
            live.stop()
            _live = None


@contextmanager
def polling(fn: Callable[[], None], interval: float = 1.0) -> Iterator[None]:
    """Call ``fn`` every ``interval`` seconds in a daemon thread while the block runs, and once after."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            fn()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        fn()


def wait_tasks(pending: dict, description: str, total: int, unit: str, *, done: int = 0, log=print) -> None:
    """Wait for the Ray tasks ``pending`` ({object ref: units of work}) with a :func:`bar` that starts
    at ``done`` of ``total``; a task's error is raised here (after Ray's retries)."""
    import ray

    pending = dict(pending)
    with bar(description, total, unit, log) as update:
        update(done)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                ray.get(ref)
                done += pending.pop(ref)
            update(done)
