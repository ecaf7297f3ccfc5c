"""Multi-process training on PyTorch's own DDP, set up from torchrun's environment variables.

Only the roles an optimizer updates are wrapped, and a phase sees the wrapped module only for the
roles it trains (see ``Trainer.nets_for``), so a generator evaluated inside the discriminator's
phase never takes part in a gradient reduction. ``batch_size`` is per rank; progress counts the
images of all ranks. Rank 0 alone writes the run folder; every rank reads the checkpoint rank 0
chose, so the run folder must be on a filesystem all nodes share.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, nets: dict[str, nn.Module], device: torch.device, find_unused: bool = False) -> dict[str, nn.Module]:
        if self.world_size == 1:
            return dict(nets)
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        # Buffers (BatchNorm statistics) are not broadcast at every forward: they stay per rank, as
        # each rank normalises its own batch; rank 0's are checkpointed. sync_batchnorm makes them agree.
        new_api = "forward_sync_buffers" in inspect.signature(DDP).parameters  # renamed in recent torch
        no_buffer_sync = {"forward_sync_buffers": False} if new_api else {"broadcast_buffers": False}
        wrapped = {}
        for role in sorted(nets):  # every rank must build its DDP wrappers in the same order
            module = nets[role]
            # DDP registers only parameters that require grad when it is built; after a stage change
            # the last phase may have frozen this role, which DDP would reject as parameter-less.
            module.requires_grad_(True)
            wrapped[role] = DDP(module, device_ids=ids, find_unused_parameters=find_unused, **no_buffer_sync)
        return wrapped

    def from_main(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (a picklable object), so all ranks act on one decision."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def decided_by_main(self, decide: Callable[[], T]) -> T:
        """``decide()`` run on rank 0 alone, its result (or its ``UserError``) given to every rank, so
        an error on rank 0 stops every rank instead of leaving the others waiting."""
        from ganzoo.errors import UserError

        outcome: tuple[Any, str | None] = (None, None)
        if self.is_main:
            try:
                outcome = (decide(), None)
            except UserError as exc:
                outcome = (None, str(exc))
        value, problem = self.from_main(outcome)
        if problem is not None:
            raise UserError(problem)
        return value

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as dist

        found: list[Any] = [None] * self.world_size
        dist.all_gather_object(found, value)
        return found

    def average(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mean over ranks of each scalar (logged losses describe the whole global batch)."""
        if self.world_size == 1 or not values:
            return dict(values)
        import torch.distributed as dist

        keys = sorted(values)
        stacked = torch.stack([values[k].float() for k in keys])
        dist.all_reduce(stacked)
        return dict(zip(keys, (stacked / self.world_size).unbind()))

    def any_rank(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
        if self.world_size == 1:
            return flag
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def current() -> DistInfo:
    """The process's place in a torchrun job, initialising the process group on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    """Leave the process group, if this process joined one (end of a torchrun worker)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
