"""DCGAN — Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016.

The paper's architecture guidelines, each visible below:
1. no pooling: strided convolutions in D, fractionally strided (transposed) convolutions in G;
2. batch normalization in both networks (not on G's output nor D's input layer);
3. no fully connected hidden layers: z is reshaped to a 1x1 map and projected to 4x4 by a
   transposed convolution, and D ends with a 4x4 convolution to one logit;
4. ReLU in G, with tanh at the output; LeakyReLU(0.2) in D;
5. weights from N(0, 0.02); Adam with lr 2e-4 and beta1 0.5.
Image size is any power of two from 16 up; every doubling adds one block to each network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.plugin import Batch, ExportSpec, OptimizerSpec, Phase, Plugin, gaussian_latents


@dataclass
class DCGANConfig:
    latent_dim: int = 100
    ngf: int = 64  # G's channel width at the last hidden layer; doubles per block towards z
    ndf: int = 64  # D's width at the first layer; doubles per block
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


def blocks_for(size: int) -> int:
    """Number of stride-2 stages between 4x4 and ``size``."""
    depth = math.log2(size)
    if size < 16 or depth != int(depth):
        raise ValueError(f"DCGAN needs an image size that is a power of two >= 16, got {size}")
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


class DCGAN(Plugin):
    name = "dcgan"
    description = "Deep convolutional GAN (Radford et al. 2016): unconditional image generation"
    version = "1.0.0"
    Config = DCGANConfig
    presets: Mapping[str, Mapping[str, Any]] = {
        # Tuned on the built-in digits for the CPU quickstart (see docs/benchmarks.md): batch 32 gives G
        # twice the updates of batch 64 for the same images and time, which mattered more than anything else.
        "digits": {
            "ngf": 32, "ndf": 32, "size": 32, "batch_size": 32, "steps": 2500, "ema_half_life": 5000,
            "sample_every": 500, "checkpoint_every": 500,
        },
        "paper": {"ngf": 64, "ndf": 64, "batch_size": 128, "size": 64},
        "tiny": {"ngf": 8, "ndf": 8, "latent_dim": 16, "size": 16, "batch_size": 8},
    }

    # -- networks and optimizers ---------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, d = self.config, self.data
        nets = {
            "G": Generator(c.latent_dim, d.channels, d.size, c.ngf),
            "D": Discriminator(d.channels, d.size, c.ndf),
        }
        for net in nets.values():
            dcgan_init(net)
        return nets

    def optimizers(self) -> dict[str, OptimizerSpec]:
        betas = (self.config.beta1, self.config.beta2)
        return {"G": OptimizerSpec(("G",), self.config.lr, betas), "D": OptimizerSpec(("D",), self.config.lr, betas)}

    # -- training: D on real vs. fake, then G against the updated D ------------------------------
    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", self.discriminator_loss, "discriminator"),
            Phase("G", "G", self.generator_loss, "generator"),
        ]

    def latents(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        return gaussian_latents(n, self.config.latent_dim, device, generator)

    def discriminator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        fake = nets["G"](self.latents(len(batch), ctx.device))
        return ctx.discriminator_loss(nets["D"], batch.images, fake)

    def generator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        fake = nets["G"](self.latents(len(batch), ctx.device))
        return {"loss": ctx.generator_loss(nets["D"], fake)}

    # -- using the trained generator -----------------------------------------------------------
    def sample(self, nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]) -> Tensor:
        g = nets["G"]
        return g(self.latents(n, next(g.parameters()).device, generator))

    def preview_inputs(self, generator: torch.Generator, data_sample: Batch) -> Tensor:
        return torch.randn(64, self.config.latent_dim, generator=generator)

    def preview(self, nets, fixed: Tensor, images_seen: int) -> Tensor:
        from ganzoo.images import grid

        g = nets["G"]
        return grid(g(fixed.to(next(g.parameters()).device)), nrow=8)

    def exports(self, nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        z = torch.randn(2, self.config.latent_dim)
        return [
            ExportSpec(
                name="generator",
                module=nets["G"],
                example_inputs=(z,),
                input_names=("latent",),
                input_roles=("latent",),
                dynamic_axes={"latent": {0: "batch"}, "image": {0: "batch"}},
                task="generate",
                parity_inputs=[(torch.randn(1, self.config.latent_dim),), (torch.randn(7, self.config.latent_dim),)],
            )
        ]

    # -- the same step as a plain PyTorch loop (``ganzoo bench`` measures the engine against it) --
    def reference_step(self, nets):
        """D on real vs. G(z) with the non-saturating loss, then G on fresh z against the updated D,
        each with its own Adam; the frozen network of each update gets no gradients, as in the engine."""
        g, d, c = nets["G"], nets["D"], self.config
        opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        softplus = nn.functional.softplus
        device = next(g.parameters()).device

        def step(batch: Batch) -> None:
            n = len(batch)
            g.requires_grad_(False)
            d.requires_grad_(True)
            fake = g(torch.randn(n, c.latent_dim, device=device))
            d_loss = softplus(-d(batch.images)).mean() + softplus(d(fake)).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g.requires_grad_(True)
            d.requires_grad_(False)
            g_loss = softplus(-d(g(torch.randn(n, c.latent_dim, device=device)))).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

        return step
