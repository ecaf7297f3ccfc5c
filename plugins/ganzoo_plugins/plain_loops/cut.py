"""One CUT iteration as a plain PyTorch loop, written the way the reference trains
(models/cut_model.py, ``optimize_parameters``): one forward of G, a D update, then a G and F update
through that forward, with separate Adam optimizers for G, F and D; no engine in between.

Like the plugin, it computes PatchNCE's keys without a graph (the reference builds one and then
detaches the keys, which gives the same gradients at more cost), so the two do the same work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.plugin import Batch
from ganzoo_plugins.cut.patchnce import patch_nce_loss


def lsgan(prediction: Tensor, is_real: bool) -> Tensor:
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if is_real else 0.0))


def make(nets: Mapping[str, nn.Module], config) -> Callable[[Batch], None]:
    c = config
    g, d, f = nets["G"], nets["D"], nets.get("F")
    betas = (c.beta1, c.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=betas)
    opt_f = torch.optim.Adam(f.parameters(), lr=c.lr, betas=betas) if f is not None else None

    def nce(source: Tensor, translated: Tensor, flipped: bool) -> Tensor:
        feat_q = g(translated, nce_layers=c.nce_layers)
        if flipped:
            feat_q = [feat.flip(3) for feat in feat_q]
        with torch.no_grad():
            feat_k, ids = f(g(source, nce_layers=c.nce_layers), c.num_patches)
        feat_q, _ = f(feat_q, c.num_patches, ids)
        return torch.stack([patch_nce_loss(q, k, c.nce_t).mean() for q, k in zip(feat_q, feat_k)]).mean()

    def step(batch: Batch) -> None:
        real_a, real_b = batch.images, batch.images_b
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

    return step
