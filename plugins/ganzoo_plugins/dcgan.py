"""DCGAN — Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016.

The paper's architecture guidelines, each visible below:
1. no pooling: strided convolutions in D, fractionally strided (transposed) convolutions in G;
2. batch normalization in both networks (not on G's output nor D's input layer);
3. no fully connected hidden layers: z is reshaped to a 1x1 map and projected to 4x4 by a
   transposed convolution, and D ends with a 4x4 convolution to one logit;
4. ReLU in G, with tanh at the output; LeakyReLU(0.2) in D;
5. weights from N(0, 0.02); Adam with lr 2e-4 and beta1 0.5.
Each iteration trains D on a real batch and G(z), then G on the same fakes against the updated D,
as the reference implementations (dcgan.torch, pytorch/examples) do.
Image size is any power of two from 16 up; every doubling adds one block to each network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import LatentGAN


@dataclass
class DCGANConfig:
    latent_dim: int = setting(100, ge=1)
    ngf: int = setting(64, ge=1)  # G's channel width at the last hidden layer; doubles per block towards z
    ndf: int = setting(64, ge=1)  # D's width at the first layer; doubles per block
    lr: float = setting(2e-4, gt=0)
    beta1: float = setting(0.5, ge=0, lt=1)
    beta2: float = setting(0.999, ge=0, lt=1)


def blocks_for(size: int) -> int:
    """Number of stride-2 stages between 4x4 and ``size``."""
    depth = math.log2(size)
    if size < 16 or depth != int(depth):
        raise UserError(f"DCGAN needs an image size that is a power of two >= 16, got {size}: set e.g. --set size=32")
    return int(depth) - 2


def dcgan_init(module: nn.Module) -> None:
    """Rule 5: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, channels, size, size) in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, size: int, ngf: int, in_features: int | None = None):
        super().__init__()
        n = blocks_for(size)
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # e.g. size 32: [256, 128, 64]
        in_features = in_features or latent_dim
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_features, widths[0], 4, 1, 0, bias=False),  # 1x1 -> 4x4
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """image -> one logit per image; ``features`` exposes the last hidden map for subclasses."""

    def __init__(self, channels: int, size: int, ndf: int):
        super().__init__()
        n = blocks_for(size)
        widths = [ndf * 2**i for i in range(n)]  # e.g. size 32: [64, 128, 256]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)  # -> (N, widths[-1], 4, 4)
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)
        self.feature_channels = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).flatten()


class DCGAN(LatentGAN):
    name = "dcgan"
    description = "Deep convolutional GAN (Radford et al. 2016): unconditional image generation"
    version = "1.0.0"
    Config = DCGANConfig
    reuse_fakes = True
    presets: Mapping[str, Mapping[str, Any]] = {
        # Tuned on the built-in digits for the CPU quickstart (see docs/benchmarks.md): batch 32 gives G
        # twice the updates of batch 64 for the same images and time; six times the paper's learning
        # rate (both networks), Adam without momentum (beta1 0) and an R1 penalty on D (gamma 1, every
        # 4th D step) gave the lowest Frechet distance and the most confidently classified samples at
        # the quickstart's length. Channels-last convolutions run these layers 1.1-1.3x faster on the CPU.
        "digits": {
            "ngf": 32, "ndf": 32, "size": 32, "batch_size": 32, "steps": 2500, "ema_half_life": 5000,
            "g_lr": 1.2e-3, "d_lr": 1.2e-3, "beta1": 0.0, "r1_gamma": 1.0, "r1_interval": 4,
            "sample_every": 500, "checkpoint_every": 500, "channels_last": True,
        },
        "paper": {"ngf": 64, "ndf": 64, "batch_size": 128, "size": 64},
        "tiny": {"ngf": 8, "ndf": 8, "latent_dim": 16, "size": 16, "batch_size": 8},
    }

    # Training (D on reals vs. G(z), then G), sampling and export come from LatentGAN.
    def build(self) -> dict[str, nn.Module]:
        c, d = self.config, self.data
        nets = {
            "G": Generator(c.latent_dim, d.channels, d.size, c.ngf),
            "D": Discriminator(d.channels, d.size, c.ndf),
        }
        for net in nets.values():
            dcgan_init(net)
        return nets
