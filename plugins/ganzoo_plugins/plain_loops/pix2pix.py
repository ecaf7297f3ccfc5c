"""pix2pix trained the way the reference (junyanz/pytorch-CycleGAN-and-pix2pix, ``pix2pix_model.py``)
trains it, as one plain loop with the plugin's U-Net and PatchGAN.

Per iteration: G against a frozen D on (input, output) pairs (``BCEWithLogitsLoss`` against ones)
plus ``lambda_l1`` times the L1 distance to the truth, one Adam step; then D on real pairs against
the same G(x) detached, its loss halved, one Adam step. The learning rate is constant for
``n_epochs`` and then falls linearly to zero over ``n_epochs_decay`` (an epoch is one pass over the
pairs), stepped every iteration. Data: the raw digit-pairs arrays as tensors, shuffled per epoch
with one order for both sides (the pairs stay pairs), the same random horizontal flip for both
images of a pair when ``hflip`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ganzoo_plugins.plain_loops.cyclegan import lr_factor
from ganzoo_plugins.plain_loops.data import RandomFlips, Shuffled, raw_digit_pairs, to_float


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digit_pairs(s.size)


def networks(s: SimpleNamespace) -> dict[str, nn.Module]:
    from ganzoo_plugins.cyclegan.networks import NLayerDiscriminator, UnetGenerator, init_weights

    channels_b = getattr(s, "channels_b", None) or s.channels
    nets = {
        "G": UnetGenerator(s.channels, channels_b, s.num_downs, s.ngf, s.norm, s.dropout),
        "D": NLayerDiscriminator(s.channels + channels_b, s.ndf, s.n_layers_d, s.norm),
    }
    for net in nets.values():
        init_weights(net, s.init_gain)
    return nets


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace, steps_per_epoch: float = 1.0) -> Callable[[Tensor, Tensor], None]:
    """One iteration on a given batch of pairs (inputs ``real_a``, truths ``real_b``)."""
    g, d = nets["G"], nets["D"]
    gan, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
    betas = (s.beta1, s.beta2)
    optimizer_g = torch.optim.Adam(g.parameters(), lr=s.g_lr or s.lr, betas=betas)
    optimizer_d = torch.optim.Adam(d.parameters(), lr=s.d_lr or s.lr, betas=betas)
    factor = lr_factor(s, steps_per_epoch)
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (optimizer_g, optimizer_d)]

    def update(real_a: Tensor, real_b: Tensor) -> None:
        # G: fool D on (input, output) pairs and stay close to the truth
        d.requires_grad_(False)
        fake_b = g(real_a)
        out = d(torch.cat([real_a, fake_b], 1))
        loss_g = gan(out, torch.ones_like(out)) + s.lambda_l1 * l1(fake_b, real_b)
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        # D: real pairs against the generated ones, its loss halved
        d.requires_grad_(True)
        out_real, out_fake = d(torch.cat([real_a, real_b], 1)), d(torch.cat([real_a, fake_b.detach()], 1))
        loss_d = 0.5 * (gan(out_real, torch.ones_like(out_real)) + gan(out_fake, torch.zeros_like(out_fake)))
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        for schedule in schedules:
            schedule.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call, on its own shuffled batches of pairs of ``data`` (raw arrays)."""
    device = next(nets["G"].parameters()).device
    a, b = to_float(data["images"]).to(device), to_float(data["images_b"]).to(device)
    batches = Shuffled(a, b, batch_size=s.batch_size, seed=s.seed)
    flips = RandomFlips(s.hflip, s.seed + 2)  # one choice per pair
    update = updater(nets, s, len(a) / s.batch_size)
    return lambda: update(*flips(*batches.next()))
