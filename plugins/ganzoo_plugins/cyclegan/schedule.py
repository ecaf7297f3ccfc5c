"""The reference learning-rate policy: constant, then linear decay to zero, lengths in epochs."""

from __future__ import annotations

from collections.abc import Callable

from ganzoo.plugin import DataInfo


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
