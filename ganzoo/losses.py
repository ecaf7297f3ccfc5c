"""Adversarial losses and regularizers shared by every plugin.

Each loss takes raw discriminator outputs (logits or critic values) and returns a scalar mean.
``real_target`` < 1 gives one-sided label smoothing where the loss has a target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    name: str
    d: Callable[[Tensor, Tensor, float], Tensor]  # (real, fake, real_target) -> loss
    g: Callable[[Tensor], Tensor]  # fake -> loss
    smoothable: bool


def _bce_d(real: Tensor, fake: Tensor, real_target: float) -> Tensor:
    # BCE with logits, written with softplus so a target of exactly 1 costs no extra kernels.
    real_term = F.softplus(-real) if real_target == 1.0 else F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, real_target), reduction="none"
    )
    return real_term.mean() + F.softplus(fake).mean()


LOSSES: dict[str, AdversarialLoss] = {
    # Goodfellow et al. 2014: G minimizes log(1 - D(G(z))), which saturates early in training.
    "minimax": AdversarialLoss("minimax", _bce_d, lambda fake: -F.softplus(fake).mean(), True),
    # The same game with G maximizing log D(G(z)): strong gradients when D wins.
    "nonsaturating": AdversarialLoss(
        "nonsaturating", _bce_d, lambda fake: F.softplus(-fake).mean(), True
    ),
    # Mao et al. 2017: least squares against targets 1 (real) and 0 (fake).
    "lsgan": AdversarialLoss(
        "lsgan",
        lambda real, fake, t: (real - t).pow(2).mean() + fake.pow(2).mean(),
        lambda fake: (fake - 1).pow(2).mean(),
        True,
    ),
    "hinge": AdversarialLoss(
        "hinge",
        lambda real, fake, t: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
        lambda fake: -fake.mean(),
        False,
    ),
    "wgan": AdversarialLoss(
        "wgan", lambda real, fake, t: fake.mean() - real.mean(), lambda fake: -fake.mean(), False
    ),
}
LOSSES["wgan-gp"] = LOSSES["wgan"]


def gradient_penalty(d_fn: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on real/fake interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = torch.lerp(real.detach(), fake.detach(), alpha).requires_grad_(True)
    (grad,) = torch.autograd.grad(d_fn(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(d_fn: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real data."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d_fn(real).sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
