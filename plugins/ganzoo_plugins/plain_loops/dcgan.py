"""DCGAN trained the way pytorch/examples' dcgan/main.py trains it, with the plugin's networks.

Per iteration: D on a real batch (``BCEWithLogitsLoss`` against ones, backward), then on G(z)
detached (against zeros, backward), one Adam step; then G on the same fakes against the updated D
(against ones), one Adam step. The one change from pytorch/examples: D's parameters are frozen
during G's backward. That changes no number (pytorch/examples zeroes D's gradients before D's next
step anyway) but skips the gradients of D's weights that G's step never uses, which is what the
engine does, so the two loops do the same work. With ``r1_gamma`` set (the quickstart preset sets
it), every ``r1_interval``-th D step adds the R1 penalty as StyleGAN2 writes it: a separate pass of
D over the real batch, gamma/2 times the squared input gradient, scaled by the interval. Data: the
raw digits as one float tensor, shuffled per epoch (``data.Shuffled``); no EMA, no logging, no
progress display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ganzoo_plugins.plain_loops.data import Shuffled, fit, raw_digits, to_float

IMPLEMENTS = ("r1_gamma",)  # engine switches this loop does too (``ganzoo bench`` notes the others)


def raw_data(s: SimpleNamespace) -> dict:
    return raw_digits()


def networks(s: SimpleNamespace) -> dict[str, nn.Module]:
    from ganzoo_plugins.dcgan import Discriminator, Generator, dcgan_init

    nets = {"G": Generator(s.latent_dim, s.channels, s.size, s.ngf), "D": Discriminator(s.channels, s.size, s.ndf)}
    for net in nets.values():
        dcgan_init(net)
    return nets


def updater(nets: Mapping[str, nn.Module], s: SimpleNamespace) -> Callable[[Tensor], None]:
    """One iteration on a given real batch."""
    net_g, net_d = nets["G"], nets["D"]
    criterion = nn.BCEWithLogitsLoss()
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=s.d_lr or s.lr, betas=(s.beta1, s.beta2))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=s.g_lr or s.lr, betas=(s.beta1, s.beta2))
    device = next(net_g.parameters()).device
    r1_gamma, r1_interval = getattr(s, "r1_gamma", 0.0), getattr(s, "r1_interval", 1)
    d_steps = 0

    def update(real: Tensor) -> None:
        nonlocal d_steps
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        net_d.requires_grad_(True)
        net_d.zero_grad()
        output = net_d(real)
        real_label, fake_label = torch.ones_like(output), torch.zeros_like(output)
        criterion(output, real_label).backward()
        fake = net_g(torch.randn(len(real), s.latent_dim, device=device))
        criterion(net_d(fake.detach()), fake_label).backward()
        if r1_gamma and d_steps % r1_interval == 0:
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(net_d(real).sum(), real, create_graph=True)
            (0.5 * r1_gamma * r1_interval * grad.pow(2).flatten(1).sum(1).mean()).backward()
        d_steps += 1
        optimizer_d.step()
        # (2) Update G: maximize log(D(G(z)))
        net_d.requires_grad_(False)
        net_g.zero_grad()
        criterion(net_d(fake), real_label).backward()
        optimizer_g.step()

    return update


def make(nets: Mapping[str, nn.Module], s: SimpleNamespace, data: Mapping) -> Callable[[], None]:
    """One iteration per call, on its own shuffled batches of ``data`` (raw arrays)."""
    device = next(nets["G"].parameters()).device
    images = fit(to_float(data["images"]), s.size).to(device)
    batches = Shuffled(images, batch_size=s.batch_size, seed=s.seed)
    update = updater(nets, s)
    return lambda: update(batches.next()[0])
