"""Loss curves from a run's stats.jsonl, drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganzoo.files import atomic_write

# Bookkeeping fields of every stats record; everything else named "<phase>/<term>" is a loss term.
BOOKKEEPING = {"step", "images_seen", "images_per_sec", "time"}


def series(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """key -> (steps, values) for every numeric key besides the bookkeeping ones."""
    found: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        step = record.get("step")
        if step is None:
            continue
        for key, value in record.items():
            if key in BOOKKEEPING or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            steps, values = found.setdefault(key, ([], []))
            steps.append(int(step))
            values.append(float(value))
    return found


def panels(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Each phase's total loss together, the other loss terms together, stage values apart."""
    losses = sorted(k for k in keys if k.endswith("/loss"))
    stage = sorted(k for k in keys if k.startswith("stage/"))
    terms = sorted(k for k in keys if k not in losses and k not in stage)
    return [(title, group) for title, group in (("losses", losses), ("loss terms", terms), ("stage", stage)) if group]


def plot_loss_curves(records: Sequence[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """Write the curves as a PNG; None when the records hold nothing to plot."""
    data = series(records)
    groups = panels(list(data))
    if not groups:
        return None
    # A bare Figure renders with Agg and leaves pyplot's global backend alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 2.6 * len(groups)), dpi=100, layout="constrained")
    axes = figure.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, keys) in zip(axes, groups):
        for key in keys:
            steps, values = data[key]
            ax.plot(steps, values, label=key, linewidth=1.2, marker="." if len(steps) < 30 else None)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("step")
    if title:
        figure.suptitle(title)
    with atomic_write(out) as file:
        figure.savefig(file, format="png")
    return out
