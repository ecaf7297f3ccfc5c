"""One DCGAN iteration as a plain PyTorch loop: D on real vs. G(z) with the non-saturating loss, then G
on fresh z against the updated D, each with its own Adam; the frozen network of each update gets no
gradients, as in the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn.functional import softplus

from ganzoo.plugin import Batch


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    g, d, c = nets["G"], nets["D"], config
    opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
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
