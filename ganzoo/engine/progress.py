"""A rich progress bar: step, losses, images/s, stage info and ETA."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def summarize(record: dict[str, Any]) -> str:
    parts = [f"{k.replace('/loss', '')} {v:.3f}" for k, v in record.items() if k.endswith("/loss")]
    parts += [f"{k.split('/', 1)[1]} {v:g}" for k, v in record.items() if k.startswith("stage/")]
    if "images_per_sec" in record:
        parts.append(f"{record['images_per_sec']:.0f} img/s")
    return "  ".join(parts)


class ProgressDisplay:
    def __init__(self, total: int, start: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            self.progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def advance(self, step: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step)

    def update(self, step: int, record: dict[str, Any]) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step, info=summarize(record))
