"""What happens between training steps: averaging losses into log records, and refusing non-finite ones.

Losses stay on the training device until a log record is due, so a step never waits for the GPU
just to be logged; on CUDA, even the finiteness check waits for the next log, sample or checkpoint
(see ``FiniteGuard``), which are the only points where anything is written. Both run after every
step, so each costs a step a few list appends (and, on the CPU, reading two numbers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.engine.distributed import DistInfo
from ganzoo.errors import UserError


class NonFiniteLossError(UserError):
    pass


class LossLog:
    """Sums each logged term over a log interval and turns the sums into one stats record."""

    def __init__(self, device: torch.device, dist: DistInfo):
        self.device, self.dist = device, dist
        self.values: dict[str, list[torch.Tensor]] = {}
        self.steps = 0
        self.images = 0
        self.started = time.perf_counter()

    def add(self, terms: Mapping[str, torch.Tensor], images: int) -> None:
        for key, value in terms.items():
            self.values.setdefault(key, []).append(value)
        self.steps += 1
        self.images += images

    def record(self, **extra: Any) -> dict[str, Any]:
        """The interval's mean terms (averaged over processes), images/s and ``extra``; then resets."""
        elapsed = time.perf_counter() - self.started
        sums = {k: torch.stack(v).float().sum() for k, v in self.values.items()}
        means = {k: round(float(v) / self.steps, 6) for k, v in self.dist.average(sums).items()}
        means.update(extra)
        means["images_per_sec"] = round(self.images / max(elapsed, 1e-9), 2)
        means["time"] = time.time()
        self.values, self.steps, self.images, self.started = {}, 0, 0, time.perf_counter()
        return means


class FiniteGuard:
    """Stops training at the first step whose total loss is NaN or infinite.

    On the CPU reading a loss is free, so every step is checked. On CUDA reading it waits for the GPU,
    so steps are checked together (one sync) before the next log, sample or checkpoint: nothing is
    ever written from a non-finite state, and the error still names the first bad step.
    """

    def __init__(self, device: torch.device, dist: DistInfo, last_checkpoint: Callable[[], Any], run: Path):
        self.device, self.dist, self.run = device, dist, run
        self.every_step = device.type != "cuda"
        self.last_checkpoint = last_checkpoint
        self.pending: list[tuple[int, Mapping[str, torch.Tensor]]] = []

    def add(self, step: int, terms: Mapping[str, torch.Tensor]) -> None:
        self.pending.append((step, terms))

    def check(self) -> None:
        if not self.pending:
            return
        if self.every_step and self.dist.world_size == 1:
            # On the CPU a loss is read in a microsecond, far less than any tensor arithmetic.
            for step, terms in self.pending:
                if not all(math.isfinite(v.item()) for k, v in terms.items() if k.endswith("/loss")):
                    self.fail(terms, step)
            self.pending.clear()
            return
        zero = torch.zeros((), device=self.device)
        totals = torch.stack([
            sum((v.float() for k, v in terms.items() if k.endswith("/loss")), zero) for _, terms in self.pending
        ])
        finite = torch.isfinite(totals)
        bad_here = not bool(finite.all())
        # Every rank stops together: a rank that stopped alone would leave the others waiting.
        if self.dist.any_rank(bad_here, self.device):
            if bad_here:
                step, terms = self.pending[int((~finite).nonzero()[0])]
                self.fail(terms, step)
            self.fail({}, self.pending[-1][0], in_another_process=True)
        self.pending.clear()

    @torch.no_grad()
    def check_weights(self, step: int, nets: Mapping[str, nn.Module], ema: Mapping[str, Any],
                      optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
        """Refuse to write samples or a checkpoint from non-finite weights or optimizer state (an
        infinite learning rate can leave the losses of one step finite and every weight infinite)."""
        tensors = [t for m in nets.values() for t in m.state_dict().values()]
        tensors += [t for e in ema.values() for t in e.module.state_dict().values()]
        tensors += [v for o in optimizers.values() for s in o.state.values() for v in s.values() if torch.is_tensor(v)]
        floats = [t for t in tensors if t.is_floating_point()]
        finite = bool(torch.stack([t.isfinite().all() for t in floats]).all()) if floats else True
        if self.dist.any_rank(not finite, self.device):
            self.fail({}, step, what="the weights or optimizer state")

    def fail(self, terms: Mapping[str, torch.Tensor], step: int, in_another_process: bool = False,
             what: str | None = None) -> None:
        bad = [k for k, v in terms.items() if not bool(torch.isfinite(v).all())]
        what = what or ("a loss of another process" if in_another_process else ", ".join(bad))
        when = f"by step {step}" if in_another_process or what.startswith("the weights") else f"at step {step}"
        last = self.last_checkpoint()
        if last:
            advice = (f"the last good checkpoint is {last}. Resume from it with lower learning rates, e.g. "
                      f"ganzoo train --resume {self.run} --checkpoint {last} --set g_lr=... --set d_lr=...")
        else:
            advice = (f"no checkpoint was written yet. Start again with lower learning rates, e.g. "
                      f"ganzoo train --resume {self.run} --set g_lr=... --set d_lr=...")
        raise NonFiniteLossError(f"training stopped: {what} became NaN or infinite {when}; {advice}")
