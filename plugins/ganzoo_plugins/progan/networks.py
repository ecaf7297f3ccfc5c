"""Progressive GAN generator and discriminator (Karras et al. 2018, table 2).

Every block for every resolution is built at construction, so the state_dict never changes shape
while training grows: growing only changes which blocks `forward` runs. Resolutions are indexed by
level: level 0 is 4x4, level i is 4 * 2**i. Channel counts follow the official code,
`nf(stage) = min(fmap_base // 2**stage, fmap_max)` with stage = log2(resolution) - 1, so
fmap_base=8192, fmap_max=512 gives the paper's 512 channels up to 32x32 halving to 16 at 1024x1024.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import UserError
from ganzoo_plugins.progan.layers import (
    HE_GAIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
)

LRELU_SLOPE = 0.2
PAPER_FMAP_BASE = 8192
PAPER_FMAP_MAX = 512


def feature_maps(stage: int, fmap_base: int, fmap_max: int) -> int:
    """Channels at a stage: halves as the stage grows, capped at fmap_max."""
    return min(fmap_base // 2**stage, fmap_max)


def level_count(max_resolution: int) -> int:
    """How many resolutions from 4x4 to max_resolution; UserError unless it is 2**k >= 4."""
    if max_resolution < 4 or max_resolution & (max_resolution - 1):
        raise UserError(
            f"max_resolution {max_resolution} is not supported: use a power of two >= 4 (e.g. 32)"
        )
    return int(math.log2(max_resolution)) - 1


def resolution_level(resolution: int, max_resolution: int) -> int:
    """Index of `resolution` among 4, 8, ..., max_resolution; raises UserError if it is not one."""
    if resolution < 4 or resolution > max_resolution or resolution & (resolution - 1):
        raise UserError(
            f"resolution {resolution} is not available: "
            f"use a power of two from 4 to {max_resolution}"
        )
    return int(math.log2(resolution)) - 2


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"fade-in alpha {alpha} is out of range: use a value from 0 to 1")
    return alpha


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=2)


def blend_real(images: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images faded like G's output: lerp(upsample(downsample(x)), x, alpha).

    During a fade-in D must see reals with the same blur as G's blended output, otherwise it can
    tell them apart by sharpness alone.
    """
    alpha = check_alpha(alpha)
    if alpha == 1.0:
        return images
    return torch.lerp(upsample2x(downsample2x(images)), images, alpha)


def _conv_lrelu(
    in_channels: int, out_channels: int, kernel_size: int, padding: int
) -> list[nn.Module]:
    return [
        EqualizedConv2d(in_channels, out_channels, kernel_size, padding=padding),
        nn.LeakyReLU(LRELU_SLOPE),
    ]


def _conv_lrelu_pixelnorm(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [*_conv_lrelu(in_channels, out_channels, 3, padding=1), PixelNorm()]


def _check_feature_maps(fmap_base: int, fmap_max: int, max_resolution: int) -> None:
    smallest = fmap_base // (max_resolution // 2)
    if fmap_max < 1 or smallest < 1:
        raise UserError(
            f"fmap_base {fmap_base} / fmap_max {fmap_max} leave no channels at {max_resolution}x"
            f"{max_resolution}: use fmap_max >= 1 and fmap_base >= {max_resolution // 2}"
        )


class _GeneratorStem(nn.Module):
    """4x4 block: pixelnorm(z) -> dense to 4x4 -> conv3x3, each followed by LReLU and PixelNorm."""

    def __init__(self, latent_dim: int, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        self.normalize_latent = PixelNorm()
        # The official code lowers this gain by 4 to match its original 4x4 transposed convolution.
        self.dense = EqualizedLinear(latent_dim, out_channels * 16, gain=HE_GAIN / 4)
        self.dense_post = nn.Sequential(nn.LeakyReLU(LRELU_SLOPE), PixelNorm())
        self.conv = nn.Sequential(*_conv_lrelu_pixelnorm(out_channels, out_channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(self.normalize_latent(z)).view(-1, self.out_channels, 4, 4)
        return self.conv(self.dense_post(x))


class ProgressiveGenerator(nn.Module):
    """G(z, resolution, alpha) -> NCHW image at resolution x resolution.

    As in the paper, toRGB is linear (no tanh), so the output targets [-1, 1] but is not bounded;
    clamp it when turning it into pictures.
    """

    def __init__(
        self,
        latent_dim: int,
        max_resolution: int,
        channels: int,
        fmap_base: int = PAPER_FMAP_BASE,
        fmap_max: int = PAPER_FMAP_MAX,
    ):
        super().__init__()
        levels = level_count(max_resolution)
        _check_feature_maps(fmap_base, fmap_max, max_resolution)
        if latent_dim < 1 or channels < 1:
            raise UserError(
                f"latent_dim {latent_dim} and channels {channels} must both be at least 1"
            )
        self.latent_dim = latent_dim
        self.max_resolution = max_resolution
        self.channels = channels
        self.resolutions = tuple(4 * 2**level for level in range(levels))

        widths = [feature_maps(level + 1, fmap_base, fmap_max) for level in range(levels)]
        self.blocks = nn.ModuleList([_GeneratorStem(latent_dim, widths[0])])
        for level in range(1, levels):
            self.blocks.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    *_conv_lrelu_pixelnorm(widths[level - 1], widths[level]),
                    *_conv_lrelu_pixelnorm(widths[level], widths[level]),
                )
            )
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(width, channels, 1, gain=1.0) for width in widths
        )

    def forward(self, z: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
        level = resolution_level(resolution, self.max_resolution)
        alpha = check_alpha(alpha)
        features = self.blocks[0](z)
        for block in self.blocks[1:level]:
            features = block(features)
        if level == 0:
            return self.to_rgb[0](features)
        image = self.to_rgb[level](self.blocks[level](features))
        if alpha == 1.0:
            return image
        faded_from = upsample2x(self.to_rgb[level - 1](features))
        return torch.lerp(faded_from, image, alpha)


class _DiscriminatorHead(nn.Module):
    """4x4 block: minibatch stddev -> conv3x3 -> conv4x4 (valid) -> linear to one logit."""

    def __init__(self, in_channels: int, hidden_channels: int, group_size: int):
        super().__init__()
        self.features = nn.Sequential(
            MinibatchStdDev(group_size),
            *_conv_lrelu(in_channels + 1, in_channels, 3, padding=1),
            *_conv_lrelu(in_channels, hidden_channels, 4, padding=0),
            nn.Flatten(),
        )
        self.logit = EqualizedLinear(hidden_channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x))


class ProgressiveDiscriminator(nn.Module):
    """D(x, alpha) -> [N, 1] logits; the resolution is read from x."""

    def __init__(
        self,
        max_resolution: int,
        channels: int,
        fmap_base: int = PAPER_FMAP_BASE,
        fmap_max: int = PAPER_FMAP_MAX,
        minibatch_group_size: int = 4,
    ):
        super().__init__()
        levels = level_count(max_resolution)
        _check_feature_maps(fmap_base, fmap_max, max_resolution)
        if channels < 1:
            raise UserError(f"channels {channels} must be at least 1")
        self.max_resolution = max_resolution
        self.channels = channels
        self.resolutions = tuple(4 * 2**level for level in range(levels))

        widths = [feature_maps(level + 1, fmap_base, fmap_max) for level in range(levels)]
        self.from_rgb = nn.ModuleList(
            nn.Sequential(*_conv_lrelu(channels, width, 1, padding=0)) for width in widths
        )
        head_hidden = feature_maps(0, fmap_base, fmap_max)
        head = _DiscriminatorHead(widths[0], head_hidden, minibatch_group_size)
        self.blocks = nn.ModuleList([head])
        for level in range(1, levels):
            self.blocks.append(
                nn.Sequential(
                    *_conv_lrelu(widths[level], widths[level], 3, padding=1),
                    *_conv_lrelu(widths[level], widths[level - 1], 3, padding=1),
                    nn.AvgPool2d(kernel_size=2),
                )
            )

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] != x.shape[3]:
            raise UserError(
                f"discriminator input has shape {tuple(x.shape)}: expected square NCHW images "
                f"with {self.channels} channel(s)"
            )
        level = resolution_level(x.shape[-1], self.max_resolution)
        alpha = check_alpha(alpha)
        features = self.from_rgb[level](x)
        if level > 0:
            features = self.blocks[level](features)
            if alpha < 1.0:
                faded_from = self.from_rgb[level - 1](downsample2x(x))
                features = torch.lerp(faded_from, features, alpha)
        for block in reversed(self.blocks[1:level]):
            features = block(features)
        return self.blocks[0](features)
