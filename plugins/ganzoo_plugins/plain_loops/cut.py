"""CUT trained the way the reference (taesungp/contrastive-unpaired-translation, ``cut_model.py``,
``optimize_parameters``) trains it, as one plain loop with the plugin's networks: one forward of G,
a D update, then a G and F update through that forward, with separate Adam optimizers for G, F and
D, and the learning rate constant for ``n_epochs`` then falling linearly to zero over
``n_epochs_decay`` (an epoch is max(|A|, |B|) images), stepped every iteration.

Like the plugin, it computes PatchNCE's keys without a graph (the reference builds one and then
detaches the keys, which gives the same gradients at more cost), so the two do the same work.
Data: the two raw styles of digit-styles as tensors, each shuffled per epoch on its own
(unpaired), with random horizontal flips when ``hflip`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo_plugins.cut.patchnce import patch_nce_loss
from ganzoo_plugins.plain_loops.cyclegan import lr_factor
from ganzoo_plugins.plain_loops.data import raw_digit_styles, unpaired_batches


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digit_styles(s.size, s.seed)


def networks(s: SimpleNamespace) -> dict[str, nn.Module]:
    from ganzoo_plugins.cut.networks import FeatureResnetGenerator, PatchSampler, feature_widths
    from ganzoo_plugins.cyclegan.networks import NLayerDiscriminator, init_weights, size_multiple

    g = FeatureResnetGenerator(s.channels, s.channels, s.ngf, s.n_blocks, s.antialias, s.antialias_up)
    nets = {"G": g, "D": NLayerDiscriminator(s.channels, s.ndf, s.n_layers_d, antialias=s.antialias)}
    if s.lambda_nce > 0:
        nets["F"] = PatchSampler(feature_widths(g, s.nce_layers, 4 * size_multiple(g)), s.netf_nc)
    for net in nets.values():
        init_weights(net, s.init_gain, kind="xavier")
    return nets


def lsgan(prediction: Tensor, is_real: bool) -> Tensor:
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if is_real else 0.0))


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace, steps_per_epoch: float = 1.0) -> Callable[[Tensor, Tensor], None]:
    """One iteration on a given pair of unpaired real batches."""
    c = s
    g, d, f = nets["G"], nets["D"], nets.get("F")
    betas = (c.beta1, c.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=c.g_lr or c.lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=c.d_lr or c.lr, betas=betas)
    opt_f = torch.optim.Adam(f.parameters(), lr=c.g_lr or c.lr, betas=betas) if f is not None else None
    factor = lr_factor(c, steps_per_epoch)
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_g, opt_d, opt_f) if o is not None]

    def nce(source: Tensor, translated: Tensor, flipped: bool) -> Tensor:
        feat_q = g(translated, nce_layers=c.nce_layers)
        if flipped:
            feat_q = [feat.flip(3) for feat in feat_q]
        with torch.no_grad():
            feat_k, ids = f(g(source, nce_layers=c.nce_layers), c.num_patches)
        feat_q, _ = f(feat_q, c.num_patches, ids)
        return torch.stack([patch_nce_loss(q, k, c.nce_t).mean() for q, k in zip(feat_q, feat_k)]).mean()

    def update(real_a: Tensor, real_b: Tensor) -> None:
        # forward: one pass of G over A (and B for the identity term), mirrored on half the steps
        real = torch.cat([real_a, real_b]) if c.nce_idt else real_a
        flipped = c.flip_equivariance and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = g(real)
        fake_b, idt_b = fake[: len(real_a)], fake[len(real_a) :]
        # D, on the translation as it is
        d.requires_grad_(True)
        loss_d = 0.5 * (lsgan(d(fake_b.detach()), False) + lsgan(d(real_b), True))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G and F, against the updated D
        d.requires_grad_(False)
        loss_g = c.lambda_gan * lsgan(d(fake_b), True)
        if c.lambda_nce > 0:
            loss_nce = nce(real_a, fake_b, flipped)
            if c.nce_idt:
                loss_nce = 0.5 * (loss_nce + nce(real_b, idt_b, flipped))
            loss_g = loss_g + c.lambda_nce * loss_nce
        opt_g.zero_grad(set_to_none=True)
        if opt_f is not None:
            opt_f.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if opt_f is not None:
            opt_f.step()
        for schedule in schedules:
            schedule.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call, on its own shuffled, unpaired batches of ``data`` (raw arrays)."""
    next_batches, per_epoch = unpaired_batches(data, s, next(nets["G"].parameters()).device)
    update = updater(nets, s, per_epoch)
    return lambda: update(*next_batches())
