"""A set of images read batch by batch, so a reference set never has to exist as one float tensor.

Ten thousand RGB images at 256 px are 2 GB as uint8 and 8 GB as float; evaluation only ever needs
one batch of them at a time in model units, plus a few chosen images for pictures.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ganzoo.data.imageset import as_model_input
from ganzoo.data.sources import center_crop


class ImageBatches:
    """Images as float NCHW in [-1, 1], one batch at a time, in a fixed order.

    ``images`` is uint8 NCHW (an in-memory tensor, or a streamed folder's lazily decoded images)
    or float NCHW already in [-1, 1]. ``order`` picks and orders a subset (indices into
    ``images``); ``crop`` centre-crops every image to a square of that side.
    """

    def __init__(self, images, order: Tensor | None = None, crop: int | None = None):
        if images.dim() != 4:
            raise ValueError(f"ImageBatches needs NCHW images, got shape {tuple(images.shape)}")
        self.images, self.order, self.crop = images, order, crop

    def __len__(self) -> int:
        return len(self.order) if self.order is not None else len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images delivered."""
        channels, height, width = self.images.shape[1:]
        if self.crop is not None:
            height, width = min(height, self.crop), min(width, self.crop)
        return int(channels), int(height), int(width)

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        for start in range(0, len(self), batch_size):
            yield self.take(torch.arange(start, min(start + batch_size, len(self))))

    def take(self, positions: Tensor) -> Tensor:
        """The images at these positions of the set (not indices into ``images``)."""
        positions = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
        indices = self.order[positions] if self.order is not None else positions
        images = self.images[indices]
        if self.crop is not None:
            images = center_crop(images, self.crop)
        return as_model_input(images).contiguous()
