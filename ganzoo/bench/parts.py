"""Where a training process spends its time, part by part: host-side timers around every part.

``ganzoo bench`` starts one more process of each side with these timers (its timed rounds run
without them). Each timer wraps one function and counts its time *exclusive* of the other timed
functions it calls, per thread, so the parts add up to the span of the training loop:

- both sides: ``torch.autograd.backward``/``grad`` (backward), ``Adam.step``, ``zero_grad`` and
  learning-rate schedules (optimizer);
- ganzoo: batches (data), each phase's loss (forward), ``requires_grad`` switching, EMA, the loss
  and weight checks, loss averaging and stats lines, the progress display, sample grids and
  checkpoints; the loop's own code is what remains of ``Trainer._fit``;
- the plain loop: its batches (data); its forward passes and its own code are what remains of its
  loop, listed as forward.

On CUDA a timer measures when the host is done issuing work, not the device: the figures are for
the CPU. Start-up is split into loading the data, building (networks, optimizers, run folder), and
the rest (the interpreter, imports, the command line).
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections import defaultdict
from typing import Any

STARTED = time.time()

OTHER_THREAD = " (other threads)"


class Parts:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.main = threading.get_ident()
        self.local = threading.local()

    def wrap(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)
        parts = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            stack = parts.local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = stack.pop()
                key = part if threading.get_ident() == parts.main else part + OTHER_THREAD
                parts.seconds[key] += elapsed - inner
                parts.calls[key] += 1
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, timed)

    def wrap_torch(self) -> None:
        import torch

        self.wrap(torch.autograd, "backward", "backward")  # Tensor.backward looks it up per call
        self.wrap(torch.autograd, "grad", "backward")
        self.wrap(torch.optim.Adam, "step", "optimizer")
        self.wrap(torch.optim.Optimizer, "zero_grad", "optimizer")
        self.wrap(torch.nn.Module, "zero_grad", "optimizer")
        self.wrap(torch.optim.lr_scheduler.LRScheduler, "step", "optimizer")


def ganzoo_child() -> None:
    """``python -c 'from ganzoo.bench.parts import ganzoo_child; ganzoo_child()' REPORT ARGS...``:
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
        span["first_step"], start_step = time.time(), self.step
        try:
            return fit(self)
        finally:
            span["end"], span["steps"] = time.time(), self.step - start_step

    T._fit = spanned
    try:
        main(argv)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    finally:
        write_report(report, parts, span)


def plain_child() -> None:
    """``python -c 'from ganzoo.bench.parts import plain_child; plain_child()' REPORT PLUGIN ARGS...``:
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
        span = {"first_step": run["first_step"], "end": run["end"], "steps": run["steps"]}
        # The plain loop's forward passes and its own code are what the timers leave of its span.
        parts.seconds["forward"] = (run["end"] - run["first_step"]) - sum(
            v for k, v in parts.seconds.items() if not k.startswith("start-up") and OTHER_THREAD not in k)
        write_report(report, parts, span)


def write_report(path: str, parts: Parts, span: dict[str, float]) -> None:
    with open(path, "w") as f:
        json.dump({"python_started": STARTED, "span": span, "seconds": dict(parts.seconds), "calls": dict(parts.calls)}, f)


# Parts in the order the table lists them; "loop" is what the timers leave of the loop's span.
ORDER = ("data", "forward", "backward", "optimizer", "requires_grad switching", "EMA", "checks", "logging",
         "progress display", "I/O: stats", "I/O: sample grids", "I/O: checkpoints", "loop")


def per_step(report: dict[str, Any], started: float) -> dict[str, float]:
    """Milliseconds per step of each part, the span, and start-up seconds (from ``started``, when the
    process was started), from a child's report."""
    seconds, span = report["seconds"], report["span"]
    steps = max(1, span.get("steps", 1))
    rows = {part: 1e3 * seconds.get(part, 0.0) / steps for part in ORDER}
    for part, value in seconds.items():
        if part.endswith(OTHER_THREAD):
            rows[part] = 1e3 * value / steps
    rows["span"] = 1e3 * (span["end"] - span["first_step"]) / steps
    startup = span["first_step"] - started
    rows["start-up: data loading"] = seconds.get("start-up: data loading", 0.0)
    rows["start-up: building"] = seconds.get("start-up: building", 0.0)
    rows["start-up: imports and the rest"] = startup - rows["start-up: data loading"] - rows["start-up: building"]
    return rows
