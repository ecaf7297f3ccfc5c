"""One CycleGAN iteration as a plain PyTorch loop, written the way the reference trains: same networks,
losses, history pools and Adam, no engine in between."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.plugin import Batch
from ganzoo_plugins.cyclegan.networks import ImagePool


def lsgan(prediction: Tensor, is_real: bool) -> Tensor:
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if is_real else 0.0))


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    lr, betas, pool_size = config.lr, (config.beta1, config.beta2), config.pool_size
    lambda_cycle, lambda_identity = config.lambda_cycle, config.lambda_identity
    g_ab, g_ba, d_a, d_b = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=lr, betas=betas)
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=lr, betas=betas)
    pool_a, pool_b = ImagePool(pool_size), ImagePool(pool_size)

    def step(batch: Batch) -> None:
        real_a, real_b = batch.images, batch.images_b
        # Generators, against discriminators that are held fixed.
        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        loss_g = (
            lsgan(d_b(fake_b), True)
            + lsgan(d_a(fake_a), True)
            + lambda_cycle * (F.l1_loss(g_ba(fake_b), real_a) + F.l1_loss(g_ab(fake_a), real_b))
        )
        if lambda_identity > 0:
            identity = F.l1_loss(g_ba(real_a), real_a) + F.l1_loss(g_ab(real_b), real_b)
            loss_g = loss_g + lambda_identity * lambda_cycle * identity
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # Discriminators, on real images and on generated ones drawn through the pools.
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        old_a, old_b = pool_a.query(fake_a.detach()), pool_b.query(fake_b.detach())
        loss_d_a = 0.5 * (lsgan(d_a(real_a), True) + lsgan(d_a(old_a), False))
        loss_d_b = 0.5 * (lsgan(d_b(real_b), True) + lsgan(d_b(old_b), False))
        opt_d.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        opt_d.step()

    return step
