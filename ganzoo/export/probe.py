"""What image sizes a fully convolutional translator accepts, found by running it.

A model card states the size multiple and the smallest input; plugins may know them, foreign
networks (``ganzoo import``) and plugins that do not say get them measured here on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.export import ExportError

MAX_MULTIPLE = 64  # 6 stride-2 stages; deeper translators are rare and should say so themselves
PROBE_BASE = 64  # a side divisible by every candidate multiple


def _keeps_size(module: nn.Module, channels: int, height: int, width: int) -> bool:
    """Whether ``module`` runs on a (1, channels, height, width) input and returns that height and width."""
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, channels, height, width, generator=generator) * 2 - 1
    try:
        with torch.no_grad():
            output = module(example)
    except (RuntimeError, ValueError, IndexError):  # e.g. reflection padding wider than the input
        return False
    return isinstance(output, torch.Tensor) and tuple(output.shape[-2:]) == (height, width)


def size_multiple(module: nn.Module, channels: int) -> int:
    """The smallest power of two m such that sides that are multiples of m keep their size."""
    multiple = 1
    while multiple <= MAX_MULTIPLE:
        # Two different multiples of m, neither a multiple of 2m: a net that needs 2m fails one.
        if _keeps_size(module, channels, PROBE_BASE + multiple, PROBE_BASE + 3 * multiple):
            return multiple
        multiple *= 2
    raise ExportError(
        f"the network does not return its input's size for any multiple of up to {MAX_MULTIPLE} pixels; "
        "only fully convolutional translators that keep the image size can be exported"
    )


def smallest_size(module: nn.Module, channels: int, multiple: int, limit: int = 512) -> int:
    """The smallest side (a multiple of ``multiple``) the network runs at and keeps."""
    for side in range(multiple, limit + 1, multiple):
        if _keeps_size(module, channels, side, side):
            return side
    raise ExportError(f"the network fails on every square input up to {limit} pixels; check it runs at all")
