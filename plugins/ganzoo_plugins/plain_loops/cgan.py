"""One conditional-GAN iteration as a plain PyTorch loop: the non-saturating loss, Adam, fakes for the
real labels, the auxiliary class loss and the diversity term as the plugin configures them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.plugin import Batch
from ganzoo_plugins.cgan import diversity_ratio, paired_labels


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    g, d, c = nets["G"], nets["D"], config
    opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    aux_weight = (0.0 if c.conditioning == "concat" else 1.0) if c.aux_weight is None else c.aux_weight
    device = next(g.parameters()).device

    def step(batch: Batch) -> None:
        real, y = batch.images, batch.labels
        fake = g(torch.randn(len(real), c.latent_dim, device=device), y).detach()
        d_loss = F.softplus(-d(real, y)).mean() + F.softplus(d(fake, y)).mean()
        if aux_weight:
            shown = torch.cat([real, fake]) if c.aux_fakes else real
            logits = d(shown, None, class_logits=True)
            d_loss = d_loss + aux_weight * F.cross_entropy(logits, y.repeat(len(shown) // len(y)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        y = paired_labels(y) if c.diversity_weight else y
        z = torch.randn(len(real), c.latent_dim, device=device)
        fake = g(z, y)
        g_loss = F.softplus(-d(fake, y)).mean()
        if c.diversity_weight:
            g_loss = g_loss + c.diversity_weight / (diversity_ratio(fake, z) + 1e-5)
        if aux_weight:
            g_loss = g_loss + aux_weight * F.cross_entropy(d(fake, None, class_logits=True), y)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step
