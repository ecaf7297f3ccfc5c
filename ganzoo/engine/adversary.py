"""How a discriminator is applied and scored: the one place the stability switches live.

Plugins call ``ctx.discriminator_loss(d_fn, real, fake)`` and ``ctx.generator_loss(d_fn, fake)``
with ``d_fn`` a closure over their discriminator (and its labels, if any). Because every plugin goes
through here, switches such as instance noise, label smoothing, augmentation, R1 or the gradient
penalty work for all of them, third-party ones included, without code in the plugin.

A discriminator conditioned on an image (pix2pix judges an output *given* its input) passes that
image as ``condition``: D then sees ``cat([condition, x], dim=1)``, and augmentation moves the two
together (the same shift, the same cutout), so an augmented pair is still a pair. Penalties (R1, the
gradient penalty) differentiate with respect to the judged image only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ganzoo.engine.options import TrainConfig
from ganzoo.errors import UserError
from ganzoo.losses import LOSSES, gradient_penalty, r1_penalty
from ganzoo.plugin import Stage

DFn = Callable[[Tensor], Tensor]


class Adversary:
    def __init__(self, cfg: TrainConfig, augmenter: Any = None, total_steps: int | None = None):
        if cfg.loss not in LOSSES:
            raise UserError(f"unknown loss '{cfg.loss}': choose one of {', '.join(LOSSES)}")
        self.cfg = cfg
        self.loss = LOSSES[cfg.loss]
        if cfg.label_smoothing and not self.loss.smoothable:
            raise UserError(
                f"label_smoothing has no target to smooth with loss={cfg.loss}: "
                "use minimax, nonsaturating or lsgan, or set label_smoothing=0"
            )
        self.gp_weight = cfg.gp_weight if cfg.gp_weight is not None else (
            10.0 if cfg.loss == "wgan-gp" else 0.0
        )
        self.augmenter = augmenter  # DiffAugment/ADA; None when off
        self.total_steps = total_steps or cfg.steps
        self.d_updates = 0
        self._detach_fakes = True

    @contextlib.contextmanager
    def differentiable_fakes(self) -> Iterator[None]:
        """Keep G's graph in the D loss (unrolled GAN: G trains through simulated D updates)."""
        self._detach_fakes = False
        try:
            yield
        finally:
            self._detach_fakes = True

    def noise_std(self, step: int) -> float:
        if not self.cfg.instance_noise:
            return 0.0
        length = self.cfg.instance_noise_steps or self.total_steps
        return self.cfg.instance_noise * max(0.0, 1.0 - step / max(1, length))

    def present(self, x: Tensor, step: int, condition: Tensor | None = None) -> Tensor:
        """What D sees of an image (joined to its condition): augmented, then with instance noise."""
        if self.augmenter is not None:
            x, condition = self.augmenter.augment(x, condition)
        std = self.noise_std(step)
        if std > 0:
            x = x + std * torch.randn_like(x)
        return x if condition is None else torch.cat([condition, x], dim=1)

    def discriminator_loss(
        self, d_fn: DFn, real: Tensor, fake: Tensor, step: int, condition: Tensor | None = None
    ) -> dict[str, Tensor]:
        if self._detach_fakes:
            fake = fake.detach()
        seen = lambda x: d_fn(self.present(x, step, condition))  # noqa: E731 - penalties must see what D sees
        real_out, fake_out = seen(real), seen(fake)
        target = 1.0 - self.cfg.label_smoothing
        adv = self.loss.d(real_out, fake_out, target)
        terms = {"d_adv": adv, "d_real": real_out.detach().mean(), "d_fake": fake_out.detach().mean()}
        total = adv
        if self.gp_weight:
            terms["gp"] = gradient_penalty(seen, real, fake)
            total = total + self.gp_weight * terms["gp"]
        if self.cfg.r1_gamma and self.d_updates % self.cfg.r1_interval == 0:
            terms["r1"] = r1_penalty(seen, real)
            total = total + 0.5 * self.cfg.r1_gamma * self.cfg.r1_interval * terms["r1"]
        if self.cfg.drift:
            terms["drift"] = real_out.float().pow(2).mean()
            total = total + self.cfg.drift * terms["drift"]
        if self.augmenter is not None:
            self.augmenter.observe(real_out.detach())
            if self.cfg.ada_target:
                terms["ada_p"] = real_out.new_tensor(self.augmenter.p, dtype=torch.float32)
        self.d_updates += 1
        terms["loss"] = total
        return terms

    def generator_loss(self, d_fn: DFn, fake: Tensor, step: int, condition: Tensor | None = None) -> Tensor:
        return self.loss.g(d_fn(self.present(fake, step, condition)))

    def state_dict(self) -> dict[str, Any]:
        state = {"d_updates": self.d_updates}
        if self.augmenter is not None:
            state["augmenter"] = self.augmenter.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_updates = state.get("d_updates", 0)
        if self.augmenter is not None and "augmenter" in state:
            self.augmenter.load_state_dict(state["augmenter"])


@dataclass
class EngineStepContext:
    """The engine's implementation of ``ganzoo.plugin.StepContext`` (see there)."""

    step: int
    images_seen: int
    device: torch.device
    stage: Stage
    adversary: Adversary
    cache: dict[str, Any] = field(default_factory=dict)  # shared by the phases of one step

    def discriminator_loss(
        self, d_fn: DFn, real: Tensor, fake: Tensor, *, condition: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Adversarial D loss plus the configured penalties; ``fake`` is detached here."""
        return self.adversary.discriminator_loss(d_fn, real, fake, self.step, condition)

    def generator_loss(self, d_fn: DFn, fake: Tensor, *, condition: Tensor | None = None) -> Tensor:
        return self.adversary.generator_loss(d_fn, fake, self.step, condition)
