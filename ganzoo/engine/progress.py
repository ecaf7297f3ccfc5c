"""A rich progress bar: step, losses, images/s, stage info and ETA.

The bar is drawn from the training thread, at most ``REFRESH_SECONDS`` apart, and rich's own
refresh thread is off: on a CPU whose cores all run the training's threads, a drawing thread that
wakes ten times a second (rich's default) preempts one of them, and the others wait for it at the
next synchronisation. Drawing once between two steps costs that step a millisecond or so instead.
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

REFRESH_SECONDS = 0.5


def summarize(record: dict[str, Any]) -> str:
    parts = [f"{k.replace('/loss', '')} {v:.3f}" for k, v in record.items() if k.endswith("/loss")]
    parts += [f"{k.split('/', 1)[1]} {v:g}" for k, v in record.items() if k.startswith("stage/")]
    if "images_per_sec" in record:
        parts.append(f"{record['images_per_sec']:.0f} img/s")
    return "  ".join(parts)


class ProgressDisplay:
    def __init__(self, total: int, start: int, enabled: bool, refresh_seconds: float = REFRESH_SECONDS):
        self.enabled = enabled
        self.refresh_seconds = refresh_seconds
        self.next_draw = 0.0
        if enabled:
            self.progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                auto_refresh=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)  # draws the final state

    def _draw_due(self) -> bool:
        now = time.monotonic()
        if now < self.next_draw:
            return False
        self.next_draw = now + self.refresh_seconds
        return True

    def advance(self, step: int) -> None:
        if self.enabled and self._draw_due():
            self.progress.update(self.task, completed=step, refresh=True)

    def update(self, step: int, record: dict[str, Any]) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step, info=summarize(record), refresh=self._draw_due())
