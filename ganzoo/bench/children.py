"""The processes ``ganzoo bench`` profiles: ``ganzoo train`` and a plain loop, each with a timer on
every part (``ganzoo.bench.parts``), started as ``python -c 'from ganzoo.bench.children import ...'``.

A module of its own because the ganzoo side runs the command line, which itself imports the bench:
nothing imports this module, so that dependency makes no cycle.
"""

from __future__ import annotations

import json
import sys
import time

from ganzoo.bench.parts import OTHER_THREAD, Parts, page_faults, write_report


def ganzoo_child() -> None:
    """``python -c 'from ganzoo.bench.children import ganzoo_child; ganzoo_child()' REPORT ARGS...``:
    ``ganzoo ARGS`` with a timer on every part, the figures written to REPORT as JSON."""
    report, argv = sys.argv[1], sys.argv[2:]
    parts = Parts()
    parts.wrap_torch()
    import rich.live

    from ganzoo.cli.app import main
    from ganzoo.data import digits, sources
    from ganzoo.engine import bookkeeping, ema, optimization, progress, rundir, trainer

    T = trainer.Trainer
    for owner, name, part in [
        (digits, "load_digits", "start-up: data loading"),
        (trainer, "open_data", "start-up: data loading"),
        (T, "__init__", "start-up: building"),
        (sources.BatchStream, "next", "data"),
        (T, "run_phase", "forward"),
        (optimization.Optimization, "nets_for", "requires_grad switching"),
        (ema.EMA, "update", "EMA"),
        (bookkeeping.FiniteGuard, "add", "checks"),
        (bookkeeping.FiniteGuard, "check", "checks"),
        (bookkeeping.FiniteGuard, "check_weights", "checks"),
        (bookkeeping.LossLog, "add", "logging"),
        (bookkeeping.LossLog, "record", "logging"),
        (rundir.RunDir, "append_stats", "I/O: stats"),
        (progress.ProgressDisplay, "advance", "progress display"),
        (progress.ProgressDisplay, "update", "progress display"),
        (rich.live.Live, "refresh", "progress display"),
        (T, "write_samples", "I/O: sample grids"),
        (T, "save_checkpoint", "I/O: checkpoints"),
        (T, "_fit", "loop"),
    ]:
        parts.wrap(owner, name, part)
    span: dict[str, float] = {}
    fit = T._fit

    def spanned(self):
        span["first_step"], start_step, faults = time.time(), self.step, page_faults()
        try:
            return fit(self)
        finally:
            span["end"], span["steps"] = time.time(), self.step - start_step
            span["page_faults"] = page_faults() - faults

    T._fit = spanned
    try:
        main(argv)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    finally:
        write_report(report, parts, span)


def plain_child() -> None:
    """``python -c 'from ganzoo.bench.children import plain_child; plain_child()' REPORT PLUGIN ARGS...``:
    the plain loop's process with a timer on every part."""
    import importlib

    report, plugin, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    parts = Parts()
    parts.wrap_torch()
    from ganzoo.data import digits
    from ganzoo_plugins.plain_loops import __main__ as runner
    from ganzoo_plugins.plain_loops import data

    loop = importlib.import_module(f"ganzoo_plugins.plain_loops.{plugin}")
    parts.wrap(digits, "load_digits", "start-up: data loading")
    parts.wrap(loop, "raw_data", "start-up: data loading")
    parts.wrap(loop, "make", "start-up: data loading")
    parts.wrap(loop, "networks", "start-up: building")
    parts.wrap(data.Shuffled, "next", "data")
    timings = report + ".timings.json"
    sys.argv = ["plain_loops", plugin, *argv, "--report", timings]
    try:
        runner.main()
    finally:
        with open(timings) as f:
            run = json.load(f)
        span = {key: run[key] for key in ("first_step", "end", "steps", "page_faults") if key in run}
        # The plain loop's forward passes and its own code are what the timers leave of its span.
        parts.seconds["forward"] = (run["end"] - run["first_step"]) - sum(
            v for k, v in parts.seconds.items() if not k.startswith("start-up") and OTHER_THREAD not in k)
        write_report(report, parts, span)
