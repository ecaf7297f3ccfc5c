"""Vanilla GAN — Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio,
"Generative Adversarial Nets", NeurIPS 2014. An example of a third-party ganzoo plugin.

The method, as in the paper:
1. G and D are multilayer perceptrons; noise z is the input of G's bottom layer only (section 3);
2. D outputs the probability that its input is real (here a logit; the sigmoid is in the loss);
3. the value function is the minimax game min_G max_D E[log D(x)] + E[log(1 - D(G(z)))] and G
   descends log(1 - D(G(z))), as in Algorithm 1 (so the engine default here is loss=minimax).
   Section 3 suggests G maximize log D(G(z)) instead, which the authors' released code does:
   ``--set loss=nonsaturating``;
4. G uses rectifier units, D maxout units with dropout (section 5). Their MNIST networks
   (github.com/goodfeli/adversarial, mnist.yaml) are the ``paper`` preset: G 100 -> 1200 -> 1200
   ReLU, D two maxout layers of 240 units x 5 pieces, dropout keeping 80% of D's inputs and 50% of
   its hidden units, Gaussian z. The default here is a smaller MLP with LeakyReLU(0.2) in D.

Differences from the paper, stated: G's output is tanh for images in [-1, 1] (the paper's sigmoid
for [0, 1], rescaled) and linear for points; the engine trains with Adam where the paper used SGD
with momentum. The same networks model flattened images (``DataInfo.kind`` "images") and points
(kind "vectors", e.g. the ring8 and grid25 toy sets used by the mode-collapse benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, Batch, DataInfo, LatentGAN, device_of

__version__ = "1.0.0"


@dataclass
class VanillaGANConfig:
    latent_dim: int = setting(64, ge=1)
    g_hidden: int = setting(256, ge=1)  # width of each hidden layer of G
    g_layers: int = setting(2, ge=0)
    d_hidden: int = setting(256, ge=1)  # units per hidden layer of D (maxout: units, each the max of `maxout_pieces`)
    d_layers: int = setting(2, ge=0)
    d_activation: Literal["leakyrelu", "maxout"] = "leakyrelu"  # maxout is the paper's
    maxout_pieces: int = setting(5, ge=1)
    d_dropout: float = setting(0.0, ge=0, lt=1)  # dropout on D's hidden units (paper: 0.5)
    d_input_dropout: float = setting(0.0, ge=0, lt=1)  # dropout on D's input (paper: 0.2)
    lr: float = setting(2e-4, gt=0)
    beta1: float = setting(0.5, ge=0, lt=1)
    beta2: float = setting(0.999, ge=0, lt=1)


class Maxout(nn.Module):
    """Goodfellow et al. 2013: each unit outputs the max over ``pieces`` affine pieces."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(-1)


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [-1, 1], or points (N, D)."""

    def __init__(self, latent_dim: int, hidden: int, layers: int, out_shape: tuple[int, ...], squash: bool):
        super().__init__()
        widths = [latent_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            body += [nn.Linear(w_in, w_out), nn.ReLU()]
        body.append(nn.Linear(widths[-1], math.prod(out_shape)))
        if squash:
            body.append(nn.Tanh())
        self.net = nn.Sequential(*body)
        self.out_shape = out_shape

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class Discriminator(nn.Module):
    """Flattened input -> one logit per item."""

    def __init__(self, in_features: int, c: VanillaGANConfig):
        super().__init__()
        body: list[nn.Module] = [nn.Flatten(), nn.Dropout(c.d_input_dropout)]
        width = in_features
        for _ in range(c.d_layers):
            if c.d_activation == "maxout":
                body.append(Maxout(width, c.d_hidden, c.maxout_pieces))
            else:
                body += [nn.Linear(width, c.d_hidden), nn.LeakyReLU(0.2)]
            body.append(nn.Dropout(c.d_dropout))
            width = c.d_hidden
        body.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


def scatter_image(points: Tensor, extent: float, size: int = 160) -> Tensor:
    """2-D points -> a (1, size, size) image in [-1, 1]: black background, white where a point fell."""
    xy = points[:, :2].detach().float().cpu()
    pixel = ((xy / extent + 1) * 0.5 * (size - 1)).round().long()
    inside = ((pixel >= 0) & (pixel < size)).all(1)
    col, row = pixel[inside, 0], (size - 1) - pixel[inside, 1]  # y axis points up
    image = torch.full((1, size, size), -1.0)
    image[0, row, col] = 1.0
    return image


class VanillaGAN(LatentGAN):
    name = "vanilla"
    description = "The original MLP GAN (Goodfellow et al. 2014) for flattened images and 2-D points"
    version = __version__
    Config = VanillaGANConfig
    accepts = Accepts("images", "vectors")
    presets: Mapping[str, Mapping[str, Any]] = {
        "paper": {
            "latent_dim": 100, "g_hidden": 1200, "g_layers": 2, "d_hidden": 240, "d_layers": 2,
            "d_activation": "maxout", "maxout_pieces": 5, "d_dropout": 0.5, "d_input_dropout": 0.2,
            "size": 28, "batch_size": 100,
        },
        # The mode-collapse benchmark's setup (benchmarks/mode_collapse.py): 2-D points; the
        # non-saturating loss, since the saturating one barely moves G in a short CPU budget; EMA
        # off so samples show G itself.
        "toy": {
            "latent_dim": 16, "g_hidden": 128, "d_hidden": 128, "lr": 1e-3, "loss": "nonsaturating",
            "dataset": "ring8", "batch_size": 256, "ema_half_life": 0,
        },
        "tiny": {"latent_dim": 8, "g_hidden": 32, "d_hidden": 32, "size": 16},
    }
    train_defaults = {"loss": "minimax"}

    def __init__(self, config: VanillaGANConfig, data: DataInfo):
        super().__init__(config, data)
        self.points = data.kind == "vectors"
        self.item_shape = (data.channels,) if self.points else (data.channels, data.size, data.size)

    # -- Algorithm 1 (k = 1 D step on real vs. generated data, then one G step), sampling and export
    # -- come from LatentGAN; the paper's part is the networks.
    def build(self) -> dict[str, nn.Module]:
        c = self.config
        return {
            "G": Generator(c.latent_dim, c.g_hidden, c.g_layers, self.item_shape, squash=not self.points),
            "D": Discriminator(math.prod(self.item_shape), c),
        }

    def preview(self, nets, *, examples: Batch, stage, generator: torch.Generator) -> Tensor:
        if not self.points:
            return super().preview(nets, examples=examples, stage=stage, generator=generator)
        # 2,048 points in a fixed view a quarter wider than the data, so points drifting off the modes stay visible
        extent = 1.25 * float(examples.images.abs().max())
        return scatter_image(self.generate(nets, self.latents(2048, device_of(nets["G"]), generator)), extent)

    def exports(self, nets, options: Mapping[str, Any]) -> list:
        if self.points:
            raise UserError(
                "this run models 2-D points; ONNX export is for image generators: use run.sample() instead"
            )
        return super().exports(nets, options)
