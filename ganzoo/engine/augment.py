"""Differentiable augmentation of everything the discriminator sees: DiffAugment, optionally adaptive (ADA).

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applies
the same kind of random transform to real and to generated images every time D looks at them, in the
D step and in the G step, and keeps every transform differentiable so G is trained through it. Its
three policies, as in the authors' code (images in [-1, 1]):

- ``color``: brightness ``x + U(-0.5, 0.5)``; saturation ``(x - mean_c) * U(0, 2) + mean_c``;
  contrast ``(x - mean) * U(0.5, 1.5) + mean`` (means over channels, and over the whole image);
- ``translation``: an integer shift of up to 1/8 of the side in each direction, zero padding;
- ``cutout``: a square of half the side, zeroed, centred anywhere (clipped by the border).

Brightness is kornia's ``RandomBrightness`` (an additive factor without clipping: exactly the paper's
op). The other ops are the paper's plain tensor ops, because kornia's versions differ: its saturation
works in HSV, its contrast scales around 0 or the grey mean and clips to [0, 1], its translations are
continuous and its erasing keeps the box inside the image.

With an image-conditioned discriminator (``condition``), the geometric transforms (translation,
cutout) move the condition and the judged image as one tensor, so the pair stays aligned; the colour
transforms change the judged image only, since the condition is an input, not a sample to judge.

ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data") applies each
transform to each sample with probability p and steers p with the overfitting heuristic
r_t = E[sign(D(real))]: every ``interval`` D steps p moves by sign(r_t - target) * batch * interval /
(ada_kimg * 1000), so p can go from 0 to 1 in ``ada_kimg`` thousand images. The heuristic assumes
logits centred at 0 (minimax, nonsaturating, hinge losses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.errors import UserError

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
ADA_INTERVAL = 4  # D steps between adjustments of p, as in StyleGAN2-ADA

Transform = Callable[[Tensor], Tensor]


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); "" -> ()."""
    if not policy.strip():
        return ()
    names = tuple(part.strip().lower() for part in policy.split(","))
    for name in names:
        if name not in POLICIES:
            raise UserError(
                f"unknown DiffAugment policy '{name}' in diffaugment='{policy}': "
                f"use a comma-separated subset of {', '.join(POLICIES)}"
            )
    if len(set(names)) != len(names):
        raise UserError(
            f"diffaugment='{policy}' names a policy twice: list each of {', '.join(POLICIES)} once"
        )
    return names


def _per_sample(x: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low


def saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_sample(x, 0.0, 2.0) + mean


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_sample(x, 0.5, 1.5) + mean


def translation(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    shift_h, shift_w = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, (b, 1, 1), device=x.device)
    index = lambda n: torch.arange(n, device=x.device)  # noqa: E731
    gb, gy, gx = torch.meshgrid(index(b), index(h), index(w), indexing="ij")
    # gather from a one-pixel zero border: shifted-in pixels read the border
    gy = (gy + dy + 1).clamp(0, h + 1)
    gx = (gx + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gy, gx].permute(0, 3, 1, 2)


def cutout(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = torch.randint(0, h + (1 - size_h % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - size_w % 2), (b, 1, 1), device=x.device)
    index = lambda n: torch.arange(n, device=x.device)  # noqa: E731
    gb, gy, gx = torch.meshgrid(index(b), index(size_h), index(size_w), indexing="ij")
    gy = (gy + cy - size_h // 2).clamp(0, h - 1)
    gx = (gx + cx - size_w // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


def _brightness() -> Transform:
    import kornia.augmentation as K

    # factor - 1 ~ U(-0.5, 0.5) is added; no clipping, since images are in [-1, 1]
    return K.RandomBrightness(brightness=(0.5, 1.5), clip_output=False, same_on_batch=False, p=1.0)


def transforms_for(names: tuple[str, ...]) -> list[tuple[Transform, bool]]:
    """The transforms of a policy, each with whether it is geometric (moves pixels)."""
    chosen: list[tuple[Transform, bool]] = []
    for name in names:
        if name == "color":
            chosen += [(_brightness(), False), (saturation, False), (contrast, False)]
        elif name == "translation":
            chosen.append((translation, True))
        else:
            chosen.append((cutout, True))
    return chosen


class Augmenter:
    """DiffAugment transforms applied with probability ``p`` per sample and transform.

    Without ADA (``ada_target`` 0) p is 1: every image D sees is augmented. With ADA, p starts at 0
    and follows ``observe``; an empty policy then means all three DiffAugment policies.
    """

    def __init__(self, policy: str, ada_target: float = 0.0, ada_kimg: float = 100.0, batch_size: int = 64):
        if not 0.0 <= ada_target < 1.0:
            raise UserError(f"ada_target must be in [0, 1) (the paper uses 0.6), got {ada_target}")
        if ada_target and ada_kimg <= 0:
            raise UserError(f"ada_kimg must be positive, got {ada_kimg}")
        names = parse_policy(policy) or (POLICIES if ada_target else ())
        if not names:
            raise UserError(
                "augmentation is on but has nothing to do: set diffaugment to a policy or ada_target > 0"
            )
        self.policies = names
        self.transforms = transforms_for(names)
        self.ada_target = ada_target
        self.adjust_step = batch_size * ADA_INTERVAL / (ada_kimg * 1000) if ada_target else 0.0
        self._p = 0.0 if ada_target else 1.0
        self._sign_sum: Tensor | float = 0.0  # a device tensor between adjustments: no sync per step
        self._sign_count = 0
        self._observations = 0

    @property
    def p(self) -> float:
        return self._p

    def __call__(self, x: Tensor) -> Tensor:
        return self.augment(x)[0]

    def augment(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``x`` (and its ``condition``) augmented; geometric transforms move both alike."""
        if x.dim() != 4:
            raise UserError(
                "diffaugment and ada_target transform images, but this run's data are points: turn them off"
            )
        if self._p <= 0.0:
            return x, condition
        split = condition.shape[1] if condition is not None else 0
        for transform, geometric in self.transforms:
            if geometric and condition is not None:
                both = self._apply(transform, torch.cat([condition, x], dim=1))
                condition, x = both[:, :split], both[:, split:]
            else:
                x = self._apply(transform, x)
        return x, condition

    def _apply(self, transform: Transform, x: Tensor) -> Tensor:
        if self._p >= 1.0:
            return transform(x)
        chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self._p
        return torch.where(chosen, transform(x), x)

    def observe(self, real_logits: Tensor) -> None:
        """Feed D's outputs on real images (every D step); adjusts p every ADA_INTERVAL calls."""
        if not self.ada_target:
            return
        signs = real_logits.detach().float().sign()
        self._sign_sum = self._sign_sum + signs.sum()
        self._sign_count += signs.numel()
        self._observations += 1
        if self._observations % ADA_INTERVAL == 0:
            r_t = float(self._sign_sum) / max(1, self._sign_count)
            direction = (r_t > self.ada_target) - (r_t < self.ada_target)
            self._p = min(1.0, max(0.0, self._p + direction * self.adjust_step))
            self._sign_sum, self._sign_count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self._p,
            "sign_sum": float(self._sign_sum),
            "sign_count": self._sign_count,
            "observations": self._observations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._p = float(state["p"])
        self._sign_sum = float(state["sign_sum"])
        self._sign_count = int(state["sign_count"])
        self._observations = int(state["observations"])
