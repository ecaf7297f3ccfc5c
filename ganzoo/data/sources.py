"""Batches for the engine from images kept on the training device.

Datasets that fit in memory are decoded once into a uint8 tensor and moved to the device, so the
data path costs one gather and one conversion per step. Float tensors (point sets) are already in
model units and pass through unchanged. The order is a seeded permutation per
epoch, and optional flips are drawn per epoch too, so the state of a source is just
(epoch, cursor): a resumed run draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.data.imageset import as_model_input
from ganzoo.errors import UserError
from ganzoo.plugin import Batch


def resize(images: Tensor, resolution: int | None) -> Tensor:
    if resolution is None or images.shape[-1] == resolution:
        return images
    if images.shape[-1] > resolution:  # average pooling, as progressive growing expects
        return F.interpolate(images, size=(resolution, resolution), mode="area")
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)


def random_crop(images: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """A ``size`` x ``size`` window of each NCHW image, each at its own random position."""
    n, c, height, width = images.shape
    tops = torch.randint(0, height - size + 1, (n,), generator=generator).to(images.device)
    lefts = torch.randint(0, width - size + 1, (n,), generator=generator).to(images.device)
    span = torch.arange(size, device=images.device)
    rows = images.gather(2, (tops[:, None] + span).view(n, 1, size, 1).expand(n, c, size, width))
    return rows.gather(3, (lefts[:, None] + span).view(n, 1, 1, size).expand(n, c, size, size))


def center_crop(images: Tensor, size: int) -> Tensor:
    """The central ``size`` x ``size`` window of NCHW images (anything else passes through)."""
    if images.dim() != 4 or images.shape[-2:] == (size, size):
        return images
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top : top + size, left : left + size]


def finish_batch(
    gathered: Tensor, flips: Tensor | None, crop: int | None, crop_seed: int, resolution: int | None
) -> Tensor:
    """What every source does to the items it gathered: random crop, model units, flips, resize."""
    if crop is not None:
        gathered = random_crop(gathered, crop, torch.Generator().manual_seed(crop_seed))
    images = as_model_input(gathered)
    if flips is not None:
        images = torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)
    return resize(images, resolution)


def epoch_plan(
    count: int, seed: int, epoch: int, hflip: bool, rank: int = 0, world_size: int = 1
) -> tuple[Tensor, Tensor | None]:
    """This rank's item order (and flips) for one epoch over ``count`` items.

    Every rank draws the same seeded permutation and takes an interleaved share. The permutation is
    cut to a multiple of ``world_size`` so all shares are equally long: ranks then roll over to
    the next epoch at the same step and share one (epoch, cursor) state.
    """
    if count < world_size:
        raise UserError(f"{count} items cannot be shared by {world_size} processes: use fewer processes or more data")
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(count, generator=g)
    flips = torch.rand(count, generator=g) < 0.5 if hflip else None
    usable = count - count % world_size
    share = slice(rank, usable, world_size)
    return order[share], (flips[share] if flips is not None else None)


class EpochCursor:
    """Where a source is in its data: an epoch number and a position in that epoch's plan.

    Shared by the in-memory and the streamed sources, so both draw the same items, flips and crop
    positions from the same two integers, which are all a checkpoint needs to resume exactly.
    """

    def __init__(self, count: int, seed: int, hflip: bool, rank: int, world_size: int, device: torch.device):
        self.count, self.seed, self.hflip = count, seed, hflip
        self.rank, self.world_size, self.device = rank, world_size, device
        self.epoch, self.cursor = 0, 0
        self._plan: tuple[int, Tensor, Tensor | None] | None = None

    def plan(self) -> tuple[Tensor, Tensor | None]:
        """This epoch's order and flips, on ``device`` (made once per epoch)."""
        if self._plan is None or self._plan[0] != self.epoch:
            order, flips = epoch_plan(self.count, self.seed, self.epoch, self.hflip, self.rank, self.world_size)
            self._plan = (self.epoch, order.to(self.device), flips.to(self.device) if flips is not None else None)
        return self._plan[1], self._plan[2]

    def crop_seed(self) -> int:
        # Crop positions follow from the position, so a resumed run crops exactly as before.
        return hash((self.seed, self.epoch, self.cursor, self.rank)) % 2**63

    def take(self, count: int) -> tuple[Tensor, Tensor | None]:
        """The next ``count`` item indices and flips, rolling over epochs; advances the position."""
        picked, flipped = [], []
        while count > 0:
            order, flips = self.plan()
            part = order[self.cursor : self.cursor + count]
            picked.append(part)
            if flips is not None:
                flipped.append(flips[self.cursor : self.cursor + count])
            self.cursor += len(part)
            count -= len(part)
            if self.cursor >= len(order):
                self.epoch, self.cursor = self.epoch + 1, 0
        index = torch.cat(picked) if len(picked) > 1 else picked[0]
        flips = (torch.cat(flipped) if len(flipped) > 1 else flipped[0]) if flipped else None
        return index, flips

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = state["epoch"], state["cursor"]


class TensorSource:
    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None,
        device: torch.device,
        seed: int,
        hflip: bool = False,
        rank: int = 0,
        world_size: int = 1,
        crop: int | None = None,
    ):
        if hflip and images.dim() != 4:
            raise UserError("hflip flips images; this dataset holds points: set hflip=false")
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.crop = crop  # random crops of this side, when images are stored larger (load_size)
        self.position = EpochCursor(len(images), seed, hflip, rank, world_size, self.images.device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def next(self, batch_size: int, resolution: int | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """The next batch: images, labels (or None) and the items' dataset positions."""
        crop_seed = self.position.crop_seed()
        index, flips = self.position.take(batch_size)
        images = finish_batch(self.images.index_select(0, index), flips, self.crop, crop_seed, resolution)
        labels = self.labels.index_select(0, index) if self.labels is not None else None
        return images, labels, index

    def state_dict(self) -> dict[str, Any]:
        return self.position.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position.load_state_dict(state)


class BatchStream:
    """Draws ``Batch`` objects: one source, or two independent ones for unpaired A/B data.

    Paired data is one source whose items hold A's ``split`` channels followed by B's: one cursor,
    one crop, one flip and one resize for both, split into ``images`` and ``images_b`` here.
    """

    def __init__(self, a: TensorSource, b: TensorSource | None = None, split: int | None = None):
        if b is not None and split is not None:
            raise ValueError("a paired stream draws both sides from one source: pass b or split, not both")
        self.a, self.b, self.split = a, b, split

    def next(self, batch_size: int, resolution: int | None = None) -> Batch:
        images, labels, index = self.a.next(batch_size, resolution)
        if self.split is not None:
            a, b = images[:, : self.split].contiguous(), images[:, self.split :].contiguous()
            return Batch(images=a, labels=labels, images_b=b, index=index, index_b=index)
        images_b, _, index_b = self.b.next(batch_size, resolution) if self.b is not None else (None, None, None)
        return Batch(images=images, labels=labels, images_b=images_b, index=index, index_b=index_b)

    def epoch_length(self) -> int:
        """Images in an epoch: max(|A|, |B|), as the CycleGAN reference counts it."""
        return max(len(self.a), len(self.b) if self.b is not None else 0)

    def state_dict(self) -> dict[str, Any]:
        return {"a": self.a.state_dict(), "b": self.b.state_dict() if self.b is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.a.load_state_dict(state["a"])
        if self.b is not None and state.get("b") is not None:
            self.b.load_state_dict(state["b"])
