"""Scores against the digit-styles answer key: every test digit exists in both styles."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ganzoo.data.digit_styles import make_digit_styles
from ganzoo.data.imageset import uint8_to_float
from ganzoo.metrics.translation import translation_scores

TRAINING_TEST_COUNT = 200  # the split open_data trains on holds out this many test digits
BATCH = 50


def as_batch(images: np.ndarray) -> Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return uint8_to_float(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))


@torch.no_grad()
def translate_all(net: nn.Module, images: Tensor) -> Tensor:
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    parts = [net(images[i : i + BATCH].to(device)).float().cpu() for i in range(0, len(images), BATCH)]
    return torch.cat(parts)


def answer_key_scores(g_ab: nn.Module, g_ba: nn.Module | None, size: int, seed: int) -> dict[str, float]:
    """PSNR/SSIM of A->B and B->A (without ``g_ba``: A->B only) on the held-out digits, and of the
    untranslated input.

    ``seed`` must be the run's seed: it decides which digits were held out of training.
    """
    styles = make_digit_styles(size=size, seed=seed, test_count=TRAINING_TEST_COUNT)
    test_a, test_b = as_batch(styles.test_a), as_batch(styles.test_b)
    scores: dict[str, float] = {}
    directions = [("AtoB", g_ab, test_a, test_b)] + ([("BtoA", g_ba, test_b, test_a)] if g_ba is not None else [])
    for direction, net, source, target in directions:
        translated = translation_scores(translate_all(net, source), target)
        untouched = translation_scores(source, target)
        for metric in ("psnr", "ssim"):
            scores[f"{metric}_{direction}"] = translated[metric]
            scores[f"identity_{metric}_{direction}"] = untouched[metric]
    return scores
