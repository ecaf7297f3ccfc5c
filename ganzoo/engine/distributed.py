"""Multi-process training on PyTorch's own DDP, set up from torchrun's environment variables.

Only the roles an optimizer updates are wrapped, and a phase sees the wrapped module only for the
roles it trains (see ``Trainer.nets_for``), so a generator evaluated inside the discriminator's
phase never takes part in a gradient reduction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


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
        return {
            role: DDP(module, device_ids=ids, find_unused_parameters=find_unused, broadcast_buffers=False)
            for role, module in nets.items()
        }


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
