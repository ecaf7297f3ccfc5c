"""One Progressive GAN iteration as a plain PyTorch loop, at the batch's resolution with alpha 1: the
WGAN-GP critic with drift, then G, each with its own Adam."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ganzoo.plugin import Batch
from ganzoo_plugins.progan import DRIFT, GP_WEIGHT


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    g, d, c = nets["G"], nets["D"], config
    opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
    opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
    device = next(g.parameters()).device

    def step(batch: Batch) -> None:
        real = batch.images
        n, resolution = len(real), real.shape[-1]
        g.requires_grad_(False)
        d.requires_grad_(True)
        fake = g(torch.randn(n, c.latent_dim, device=device), resolution)
        real_out, fake_out = d(real), d(fake)
        mix = torch.rand(n, 1, 1, 1, device=device)
        mixed = torch.lerp(real, fake, mix).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
        penalty = (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
        drift = real_out.pow(2).mean()
        d_loss = fake_out.mean() - real_out.mean() + GP_WEIGHT * penalty + DRIFT * drift
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g.requires_grad_(True)
        d.requires_grad_(False)
        g_loss = -d(g(torch.randn(n, c.latent_dim, device=device), resolution)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step
