"""Progressive GAN at one resolution as a hand-written PyTorch loop, with the plugin's networks.

At the resolution of the stage being measured and alpha 1: the WGAN-GP critic (gradient penalty
weight 10 at random interpolates, drift 0.001 on real scores), then G against the updated critic,
each with its own Adam; G frozen in the critic's step and the critic in G's. Data: the raw digits
padded to 32 px and area-downsampled once to that resolution, shuffled per epoch. It does not grow,
so it stands for one stage of a run, not for a whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ganzoo_plugins.plain_loops.data import Shuffled, fit, raw_digits, to_float

GP_WEIGHT, DRIFT = 10.0, 0.001  # the paper's


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digits()


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace) -> Callable[[Tensor], None]:
    """One iteration on a given real batch; the resolution is the batch's."""
    net_g, net_d = nets["G"], nets["D"]
    betas = (s.beta1, s.beta2)
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=s.g_lr or s.lr, betas=betas, eps=s.eps)
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=s.d_lr or s.lr, betas=betas, eps=s.eps)
    device = next(net_g.parameters()).device

    def update(real: Tensor) -> None:
        n, resolution = len(real), real.shape[-1]
        net_g.requires_grad_(False)
        net_d.requires_grad_(True)
        fake = net_g(torch.randn(n, s.latent_dim, device=device), resolution)
        real_out, fake_out = net_d(real), net_d(fake)
        mixed = torch.lerp(real, fake, torch.rand(n, 1, 1, 1, device=device)).requires_grad_(True)
        (grad,) = torch.autograd.grad(net_d(mixed).sum(), mixed, create_graph=True)
        penalty = (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
        loss_d = fake_out.mean() - real_out.mean() + GP_WEIGHT * penalty + DRIFT * real_out.pow(2).mean()
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        net_g.requires_grad_(True)
        net_d.requires_grad_(False)
        loss_g = -net_d(net_g(torch.randn(n, s.latent_dim, device=device), resolution)).mean()
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call at ``s.resolution``, on its own shuffled batches of ``data``."""
    device = next(nets["G"].parameters()).device
    images = fit(fit(to_float(data["images"]), s.size), s.resolution).to(device)
    batches = Shuffled(images, batch_size=s.batch_size, seed=s.seed)
    update = updater(nets, s)
    return lambda: update(batches.next()[0])
