"""Saving image tensors ([-1, 1], NCHW) as PNG grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.utils import make_grid

from ganzoo import files


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] NCHW (or CHW) -> uint8 NHWC (or HWC)."""
    x = images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()
    return x.permute(*range(x.dim() - 3), -2, -1, -3).numpy()


def grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """NCHW in [-1, 1] -> one CHW grid in [-1, 1] (padding drawn black)."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=-1.0)


def save_png(image: Tensor, path: Path) -> Path:
    """Save a CHW image in [-1, 1] atomically; one channel is written as grayscale."""
    return files.save_image(to_uint8(image), path)
