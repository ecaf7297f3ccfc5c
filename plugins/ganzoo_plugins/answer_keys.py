"""Translation scores against the answer keys of the built-in translation tasks.

- digit-styles (unpaired): every held-out test digit is rendered in both styles, so A->B and B->A
  can be compared with the truth;
- digit-pairs (paired): 200 held-out pairs of a digit's edges and the digit drawn in style B.

Each score comes with the identity baseline: the untranslated input against the same target, what a
translator that does nothing gets. Any translation plugin can report these from its ``evaluate``:

    from ganzoo_plugins.answer_keys import digit_pairs_scores
    scores = digit_pairs_scores(nets["G"], size=self.data.size, direction=options.get("direction", "AtoB"))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ganzoo.data.digit_pairs import make_digit_pairs
from ganzoo.data.digit_styles import make_digit_styles
from ganzoo.data.imageset import uint8_to_float
from ganzoo.metrics.translation import translation_scores

TRAINING_TEST_COUNT = 200  # the digit-styles split open_data trains on holds out this many test digits
BATCH = 50


def as_batch(images: np.ndarray) -> Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return uint8_to_float(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))))


@torch.no_grad()
def translate_all(net: nn.Module, images: Tensor) -> Tensor:
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    parts = [net(images[i : i + BATCH].to(device)).float().cpu() for i in range(0, len(images), BATCH)]
    return torch.cat(parts)


def scores_against(net: nn.Module, source: Tensor, target: Tensor, direction: str) -> dict[str, float]:
    """psnr_/ssim_<direction> of the translations and identity_psnr_/identity_ssim_<direction>."""
    translated, untouched = translation_scores(translate_all(net, source), target), translation_scores(source, target)
    scores = {}
    for metric in ("psnr", "ssim"):
        scores[f"{metric}_{direction}"] = translated[metric]
        scores[f"identity_{metric}_{direction}"] = untouched[metric]
    return scores


def digit_styles_scores(g_ab: nn.Module, g_ba: nn.Module | None, size: int, seed: int) -> dict[str, float]:
    """PSNR/SSIM of A->B and B->A (without ``g_ba``, as for CUT's one translator: A->B only) on the
    held-out digit-styles digits, and of the untranslated input.

    ``seed`` must be the run's seed: it decides which digits were held out of training.
    """
    styles = make_digit_styles(size=size, seed=seed, test_count=TRAINING_TEST_COUNT)
    test_a, test_b = as_batch(styles.test_a), as_batch(styles.test_b)
    scores = scores_against(g_ab, test_a, test_b, "AtoB")
    return scores if g_ba is None else {**scores, **scores_against(g_ba, test_b, test_a, "BtoA")}


def digit_pairs_scores(translators: dict[str, nn.Module], size: int, direction: str = "AtoB") -> dict[str, float]:
    """PSNR/SSIM on the 200 held-out digit-pairs, per translator direction ("AtoB": input -> target
    as the run trained; "BtoA": back). ``direction`` is the data's: with "BtoA" the run's A is the
    styled digit and its B the edges."""
    pairs = make_digit_pairs(size)
    edges, styled = as_batch(pairs.test_a), as_batch(pairs.test_b)
    test_a, test_b = (styled, edges) if direction == "BtoA" else (edges, styled)
    scores: dict[str, float] = {}
    for name, net in translators.items():
        source, target = (test_a, test_b) if name == "AtoB" else (test_b, test_a)
        scores.update(scores_against(net, source, target, name))
    return scores
