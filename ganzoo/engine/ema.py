"""Exponential moving average of generator weights, with a half-life counted in images.

As in StyleGAN2-ADA: beta = 0.5 ** (batch / half_life), with the half-life ramped up early so the
average does not drag in the random initial weights. Buffers (e.g. BatchNorm statistics) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, half_life_images: float, rampup: float | None):
        self.half_life = half_life_images
        self.rampup = rampup
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module, batch_images: int, images_seen: int) -> None:
        half_life = self.half_life
        if self.rampup is not None:
            half_life = min(half_life, images_seen * self.rampup)
        beta = 0.5 ** (batch_images / max(half_life, 1e-8))
        # One multi-tensor call each for parameters and buffers: this runs every step.
        torch._foreach_lerp_(list(self.module.parameters()), list(source.parameters()), 1.0 - beta)
        buffers = list(self.module.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(source.buffers()))

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
