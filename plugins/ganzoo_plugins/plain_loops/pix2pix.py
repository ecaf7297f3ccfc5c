"""One pix2pix iteration as a plain PyTorch loop: the same U-Net and PatchGAN, vanilla GAN loss plus
L1, Adam, and the plugin's order (G against D and the truth, then D on the same G(x)), no engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.plugin import Batch


def vanilla(logits: Tensor, is_real: bool) -> Tensor:
    target = torch.ones_like(logits) if is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    g, d = nets["G"], nets["D"]
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr, betas=betas)

    def step(batch: Batch) -> None:
        real_a, real_b = batch.images, batch.images_b
        # Generator: fool D on (input, output) pairs and stay close to the truth.
        d.requires_grad_(False)
        fake_b = g(real_a)
        loss_g = vanilla(d(torch.cat([real_a, fake_b], 1)), True) + config.lambda_l1 * F.l1_loss(fake_b, real_b)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # Discriminator: real pairs against generated ones, its loss halved.
        d.requires_grad_(True)
        fake_b = fake_b.detach()
        loss_d = 0.5 * (vanilla(d(torch.cat([real_a, real_b], 1)), True) + vanilla(d(torch.cat([real_a, fake_b], 1)), False))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return step
