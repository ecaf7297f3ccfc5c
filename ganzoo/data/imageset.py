"""A whole dataset decoded into one uint8 tensor, small enough to live on the training device."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def uint8_to_float(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels [0, 255] to float32 in [-1, 1], the range every public boundary uses."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def as_model_input(data: torch.Tensor) -> torch.Tensor:
    """What networks see: uint8 pixels mapped to [-1, 1]; float points are already in model units."""
    return uint8_to_float(data) if data.dtype == torch.uint8 else data


@dataclass
class ImageSet:
    """Images as uint8 NCHW (C is 1 or 3), optional int64 labels and their class names.

    A point set (the 2-D toy datasets) is held the same way, as float32 (N, D) in model units.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str] | None
    source: str

    @property
    def is_points(self) -> bool:
        return self.images.dtype == torch.float32 and self.images.dim() == 2

    def __post_init__(self) -> None:
        if not self.is_points:
            if self.images.dtype != torch.uint8 or self.images.dim() != 4:
                shape = tuple(self.images.shape)
                raise ValueError(
                    f"ImageSet.images must be uint8 NCHW or float32 (N, D) points, got {self.images.dtype} {shape}"
                )
            if self.images.shape[1] not in (1, 3):
                channels = self.images.shape[1]
                raise ValueError(f"ImageSet.images must have 1 or 3 channels, got {channels}")
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
                raise ValueError(
                    f"ImageSet.labels must be int64 of shape ({len(self.images)},), "
                    f"got {self.labels.dtype} {tuple(self.labels.shape)}"
                )
        if self.class_names is not None:
            if self.labels is None:
                raise ValueError("ImageSet.class_names given without labels")
            if len(self.labels) and int(self.labels.max()) >= len(self.class_names):
                raise ValueError(
                    f"ImageSet.labels go up to {int(self.labels.max())} "
                    f"but only {len(self.class_names)} class names are given"
                )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 when the set has no labels."""
        if self.class_names is not None:
            return len(self.class_names)
        if self.labels is not None and len(self.labels):
            return int(self.labels.max()) + 1
        return 0

    def to_float(self) -> torch.Tensor:
        """All images as float32 NCHW in [-1, 1] (a new tensor, 4x the uint8 memory); points copied as they are."""
        return self.images.clone() if self.is_points else uint8_to_float(self.images)
