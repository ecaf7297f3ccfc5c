"""The reference implementation's optimization, shared by CycleGAN and pix2pix: Adam(2e-4, 0.5,
0.999), a learning rate constant for ``n_epochs`` then linearly down to zero over ``n_epochs_decay``,
and weights drawn from N(0, init_gain)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ganzoo.config import setting
from ganzoo.plugin import DataInfo, OptimizerSpec


@dataclass
class ReferenceSchedule:
    """The optimization settings of a plugin's Config (which subclasses this)."""

    lr: float = setting(2e-4, gt=0)
    beta1: float = setting(0.5, ge=0, lt=1)
    beta2: float = setting(0.999, ge=0, lt=1)
    n_epochs: float = setting(100.0, ge=0)  # epochs at the initial learning rate
    n_epochs_decay: float = setting(100.0, ge=0)  # epochs of linear decay to zero that follow
    init_gain: float = setting(0.02, gt=0)  # std of the N(0, gain) weight init


def reference_optimizers(
    config: ReferenceSchedule, data: DataInfo, groups: Mapping[str, tuple[str, ...]]
) -> dict[str, OptimizerSpec]:
    """One Adam per group of roles, all on the reference schedule."""
    schedule = epoch_decay(config.n_epochs, config.n_epochs_decay, data)
    betas = (config.beta1, config.beta2)
    return {name: OptimizerSpec(roles, config.lr, betas, lr_lambda=schedule) for name, roles in groups.items()}


def steps_per_epoch(num_images_a: int, num_images_b: int, batch_size: int) -> float:
    """Optimizer steps in one epoch; an epoch is max(|A|, |B|) images, as the reference counts it."""
    return max(num_images_a, num_images_b, 1) / max(batch_size, 1)


def linear_decay(constant_steps: float, decay_steps: float) -> Callable[[int], float]:
    """lr factor per optimizer step: 1 for ``constant_steps``, then a straight line to 0.

    The reference steps its scheduler once per epoch; stepping this line every optimizer step
    is the same policy without the staircase. With ``decay_steps`` 0 the rate drops to 0 at once.
    """
    if constant_steps < 0 or decay_steps < 0:
        raise ValueError(f"schedule lengths must be >= 0, got {constant_steps} and {decay_steps}")

    def factor(step: int) -> float:
        if step < constant_steps:
            return 1.0
        if decay_steps == 0:
            return 0.0
        return max(0.0, 1.0 - (step - constant_steps) / decay_steps)

    return factor


def epoch_decay(n_epochs: float, n_epochs_decay: float, data: DataInfo) -> Callable[[int], float]:
    """``linear_decay`` with its lengths in epochs of ``data`` at its configured batch size."""
    per_epoch = steps_per_epoch(data.num_images, data.num_images_b, data.batch_size)
    return linear_decay(n_epochs * per_epoch, n_epochs_decay * per_epoch)
