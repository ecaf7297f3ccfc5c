"""CycleGAN trained the way the reference (junyanz/pytorch-CycleGAN-and-pix2pix) trains it, as one
plain loop with the plugin's networks and image pools.

Per iteration: both generators against frozen discriminators (least squares through ``MSELoss``,
cycle and identity ``L1Loss``), one Adam step over both; then both discriminators on real images and
on fakes drawn through the history pools, each loss halved, one Adam step over both. The learning
rate is constant for ``n_epochs`` and then falls linearly to zero over ``n_epochs_decay`` (an epoch
is max(|A|, |B|) images), stepped every iteration; ``decay=False`` keeps it constant. Data: the two
raw styles as tensors, each shuffled per epoch on its own (unpaired), with random horizontal flips
of each image when ``hflip`` is set, as the reference's ``RandomHorizontalFlip`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ganzoo_plugins.plain_loops.data import raw_digit_styles, unpaired_batches


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digit_styles(s.size, s.seed)


def networks(s: SimpleNamespace) -> dict[str, nn.Module]:
    from ganzoo_plugins.cyclegan.networks import NLayerDiscriminator, ResnetGenerator, init_weights

    nets = {
        "G_AB": ResnetGenerator(s.channels, s.channels, s.ngf, s.n_blocks),
        "G_BA": ResnetGenerator(s.channels, s.channels, s.ngf, s.n_blocks),
        "D_A": NLayerDiscriminator(s.channels, s.ndf, s.n_layers_d),
        "D_B": NLayerDiscriminator(s.channels, s.ndf, s.n_layers_d),
    }
    for net in nets.values():
        init_weights(net, s.init_gain)
    return nets


def lr_factor(s: SimpleNamespace, steps_per_epoch: float) -> Callable[[int], float]:
    constant, decay = s.n_epochs * steps_per_epoch, s.n_epochs_decay * steps_per_epoch
    if not getattr(s, "decay", True):
        return lambda step: 1.0
    return lambda step: 1.0 if step < constant else max(0.0, 1.0 - (step - constant) / decay) if decay else 0.0


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace, steps_per_epoch: float = 1.0) -> Callable[[Tensor, Tensor], None]:
    """One iteration on a given pair of unpaired real batches."""
    from ganzoo_plugins.cyclegan.networks import ImagePool

    g_ab, g_ba, d_a, d_b = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
    gan, l1 = nn.MSELoss(), nn.L1Loss()
    betas = (s.beta1, s.beta2)
    optimizer_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=s.g_lr or s.lr, betas=betas)
    optimizer_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=s.d_lr or s.lr, betas=betas)
    factor = lr_factor(s, steps_per_epoch)
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (optimizer_g, optimizer_d)]
    pool_a, pool_b = ImagePool(s.pool_size), ImagePool(s.pool_size)
    lambda_idt = s.lambda_identity * s.lambda_cycle

    def update(real_a: Tensor, real_b: Tensor) -> None:
        for d in (d_a, d_b):
            d.requires_grad_(False)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        out_b, out_a = d_b(fake_b), d_a(fake_a)
        loss_g = (
            gan(out_b, torch.ones_like(out_b)) + gan(out_a, torch.ones_like(out_a))
            + s.lambda_cycle * (l1(g_ba(fake_b), real_a) + l1(g_ab(fake_a), real_b))
        )
        if lambda_idt > 0:
            loss_g = loss_g + lambda_idt * (l1(g_ba(real_a), real_a) + l1(g_ab(real_b), real_b))
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()

        for d in (d_a, d_b):
            d.requires_grad_(True)
        loss_d = 0.0
        for d, real, fake in ((d_a, real_a, pool_a.query(fake_a.detach())), (d_b, real_b, pool_b.query(fake_b.detach()))):
            out_real, out_fake = d(real), d(fake)
            loss_d = loss_d + 0.5 * (gan(out_real, torch.ones_like(out_real)) + gan(out_fake, torch.zeros_like(out_fake)))
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        for schedule in schedules:
            schedule.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call, on its own shuffled, unpaired batches of ``data`` (raw arrays)."""
    next_batches, per_epoch = unpaired_batches(data, s, next(nets["G_AB"].parameters()).device)
    update = updater(nets, s, per_epoch)
    return lambda: update(*next_batches())
