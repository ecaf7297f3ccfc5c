"""Saving image tensors ([-1, 1], NCHW) as PNG grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganzoo import files


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] NCHW (or CHW) -> uint8 NHWC (or HWC)."""
    x = images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()
    return x.permute(*range(x.dim() - 3), -2, -1, -3).numpy()


def grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """NCHW in [-1, 1] -> one CHW grid in [-1, 1], ``nrow`` images per row, padding drawn black; one
    channel becomes three (torchvision's ``make_grid`` layout, without importing torchvision, which
    costs every training run a second or more of start-up)."""
    x = images.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if len(x) == 1:
        return x[0].clone()
    count, channels, height, width = x.shape
    columns = min(nrow or max(1, int(math.ceil(math.sqrt(count)))), count)
    rows = -(-count // columns)
    out = x.new_full((channels, rows * (height + padding) + padding, columns * (width + padding) + padding), -1.0)
    for k in range(count):
        top, left = (k // columns) * (height + padding) + padding, (k % columns) * (width + padding) + padding
        out[:, top : top + height, left : left + width] = x[k]
    return out


def save_png(image: Tensor, path: Path) -> Path:
    """Save a CHW image in [-1, 1] atomically; one channel is written as grayscale."""
    return files.save_image(to_uint8(image), path)
