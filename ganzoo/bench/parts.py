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
the rest (the interpreter, imports, the command line). Page faults per step are counted over the
loop's span: memory the process gave back to the kernel and took again, which shows as slower
forward and backward passes (see ``ganzoo.engine.host_memory``).
"""

from __future__ import annotations

import functools
import json
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


def page_faults() -> int:
    """Minor page faults of this process so far: memory the kernel had to map in (0 where unknown)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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
    if "page_faults" in span:
        rows["page faults"] = span["page_faults"] / steps
    startup = span["first_step"] - started
    rows["start-up: data loading"] = seconds.get("start-up: data loading", 0.0)
    rows["start-up: building"] = seconds.get("start-up: building", 0.0)
    rows["start-up: imports and the rest"] = startup - rows["start-up: data loading"] - rows["start-up: building"]
    return rows
