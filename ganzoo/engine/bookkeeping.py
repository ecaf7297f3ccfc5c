"""What happens between training steps: averaging losses into log records, and refusing non-finite ones.

Losses stay on the training device until a log record is due, so a step never waits for the GPU
just to be logged; on CUDA, even the finiteness check waits for the next log, sample or checkpoint
(see ``FiniteGuard``), which are the only points where anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ganzoo.engine.distributed import DistInfo
from ganzoo.errors import UserError


class NonFiniteLossError(UserError):
    pass


class LossLog:
    """Sums each logged term over a log interval and turns the sums into one stats record."""

    def __init__(self, device: torch.device, dist: DistInfo):
        self.device, self.dist = device, dist
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.images = 0
        self.started = time.perf_counter()

    def add(self, terms: Mapping[str, torch.Tensor], images: int) -> None:
        for key, value in terms.items():
            total = self.sums.get(key)
            self.sums[key] = value.float() if total is None else total + value.float()
        self.steps += 1
        self.images += images

    def record(self, **extra: Any) -> dict[str, Any]:
        """The interval's mean terms (averaged over processes), images/s and ``extra``; then resets."""
        elapsed = time.perf_counter() - self.started
        means = {k: round(float(v) / self.steps, 6) for k, v in self.dist.average(self.sums).items()}
        means.update(extra)
        means["images_per_sec"] = round(self.images / max(elapsed, 1e-9), 2)
        means["time"] = time.time()
        self.sums, self.steps, self.images, self.started = {}, 0, 0, time.perf_counter()
        return means


class FiniteGuard:
    """Stops training at the first step whose total loss is NaN or infinite.

    On the CPU reading a loss is free, so every step is checked. On CUDA reading it waits for the GPU,
    so steps are checked together (one sync) before the next log, sample or checkpoint: nothing is
    ever written from a non-finite state, and the error still names the first bad step.
    """

    def __init__(self, device: torch.device, dist: DistInfo, last_checkpoint: Callable[[], Any]):
        self.device, self.dist = device, dist
        self.every_step = device.type != "cuda"
        self.last_checkpoint = last_checkpoint
        self.pending: list[tuple[int, Mapping[str, torch.Tensor]]] = []

    def add(self, step: int, terms: Mapping[str, torch.Tensor]) -> None:
        self.pending.append((step, terms))

    def check(self) -> None:
        if not self.pending:
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

    def fail(self, terms: Mapping[str, torch.Tensor], step: int, in_another_process: bool = False) -> None:
        bad = [k for k, v in terms.items() if not bool(torch.isfinite(v).all())]
        what = "a loss of another process" if in_another_process else ", ".join(bad)
        when = f"by step {step}" if in_another_process else f"at step {step}"
        last = self.last_checkpoint()
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise NonFiniteLossError(
            f"training stopped: {what} became NaN or infinite {when}; {where}. "
            "Lower the learning rate or change the loss, then resume"
        )
