"""The conditional GAN trained as a hand-written PyTorch loop, with the plugin's networks.

Written like the DCGAN loop (``BCEWithLogitsLoss``, one Adam per network, no EMA, no logging), with
the plugin's method: fakes for the real batch's labels, the auxiliary class loss of the class head
(on real images, and on fakes with ``aux_fakes``), and in G's step fresh latents with the
mode-seeking term over paired labels. G is frozen during D's step and D during G's. Data: the raw
digits and labels as tensors, shuffled per epoch (``data.Shuffled``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo_plugins.plain_loops.data import Shuffled, fit, raw_digits, to_float

NUM_CLASSES = 10  # the digits


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digits()


def aux_weight(s: SimpleNamespace) -> float:
    if s.aux_weight is None:
        return 0.0 if s.conditioning == "concat" else 1.0
    return s.aux_weight


def networks(s: SimpleNamespace) -> dict[str, nn.Module]:
    """The digits preset's forms: a concatenating G and a projection D (with its class head)."""
    from ganzoo_plugins.cgan import ConcatGenerator, ProjectionDiscriminator

    if (s.generator_conditioning, s.conditioning) != ("concat", "projection"):
        raise ValueError("the plain CGAN loop builds the concat G and the projection D of the digits preset")
    g = ConcatGenerator(s.latent_dim, s.channels, s.size, s.ngf, NUM_CLASSES, s.embed_dim)
    d = ProjectionDiscriminator(s.channels, s.size, s.ndf, NUM_CLASSES, classifier=aux_weight(s) > 0)
    return {"G": g, "D": d}


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace) -> Callable[[Tensor, Tensor], None]:
    """One iteration on a given real batch and its labels."""
    net_g, net_d = nets["G"], nets["D"]
    criterion = nn.BCEWithLogitsLoss()
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=s.d_lr or s.lr, betas=(s.beta1, s.beta2))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=s.g_lr or s.lr, betas=(s.beta1, s.beta2))
    weight = aux_weight(s)
    device = next(net_g.parameters()).device

    def update(real: Tensor, y: Tensor) -> None:
        n = len(real)
        net_g.requires_grad_(False)
        net_d.requires_grad_(True)
        fake = net_g(torch.randn(n, s.latent_dim, device=device), y)
        out_real, out_fake = net_d(real, y), net_d(fake, y)
        loss_d = criterion(out_real, torch.ones_like(out_real)) + criterion(out_fake, torch.zeros_like(out_fake))
        if weight:
            shown = torch.cat([real, fake]) if s.aux_fakes else real
            logits = net_d(shown, None, class_logits=True)
            loss_d = loss_d + weight * F.cross_entropy(logits, y.repeat(len(shown) // n))
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()

        net_g.requires_grad_(True)
        net_d.requires_grad_(False)
        if s.diversity_weight:  # image i and i + n//2 share a class: the mode-seeking pairs
            half = n // 2
            y = torch.cat([y[:half], y[:half], y[2 * half :]])
        z = torch.randn(n, s.latent_dim, device=device)
        fake = net_g(z, y)
        out = net_d(fake, y)
        loss_g = criterion(out, torch.ones_like(out))
        if s.diversity_weight:
            half = n // 2
            spread = (fake[:half] - fake[half : 2 * half]).abs().mean() / (z[:half] - z[half : 2 * half]).abs().mean()
            loss_g = loss_g + s.diversity_weight / (spread + 1e-5)
        if weight:
            loss_g = loss_g + weight * F.cross_entropy(net_d(fake, None, class_logits=True), y)
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call, on its own shuffled batches of ``data`` (raw arrays)."""
    device = next(nets["G"].parameters()).device
    images = fit(to_float(data["images"]), s.size).to(device)
    labels = torch.from_numpy(data["labels"].copy()).to(device)
    batches = Shuffled(images, labels, batch_size=s.batch_size, seed=s.seed)
    update = updater(nets, s)
    return lambda: update(*batches.next())
