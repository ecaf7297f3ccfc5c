"""Progressive GAN layers: equalized learning rate, pixel norm, minibatch standard deviation.

Karras et al. 2018, section 4.1 (equalized learning rate, pixelwise feature vector normalization)
and section 3 (minibatch standard deviation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HE_GAIN = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    """Conv2d whose N(0, 1) weights are scaled at run time by gain / sqrt(fan_in).

    Scaling in forward instead of at init keeps every weight's effective step size equal under
    Adam, which is the point of the equalized learning rate.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        gain: float = HE_GAIN,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.padding = padding
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_channels, in_channels, k, _ = self.weight.shape
        return (
            f"{in_channels}, {out_channels}, kernel_size={k}, padding={self.padding}, "
            f"scale={self.scale:.4g}"
        )


class EqualizedLinear(nn.Module):
    """Linear layer whose N(0, 1) weights are scaled at run time by gain / sqrt(fan_in)."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        return f"{in_features}, {out_features}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Normalizes each pixel's feature vector (dim 1) to unit root mean square."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


def minibatch_group_size(batch_size: int, group_size: int) -> int:
    """min(group_size, N), or the whole batch when that does not divide N (as the official code)."""
    group = min(group_size, batch_size)
    return group if batch_size % group == 0 else batch_size


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the stddev over each group of samples, averaged over C, H and W.

    Grouping follows the official code: sample i belongs to group i % (N / G), and the variance is
    the population variance within a group.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = minibatch_group_size(n, self.group_size)
        y = x.reshape(group, n // group, c, h, w)
        y = y - y.mean(dim=0, keepdim=True)
        y = torch.sqrt(y.square().mean(dim=0) + self.eps)
        y = y.mean(dim=(1, 2, 3))
        y = y.reshape(1, n // group, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"
