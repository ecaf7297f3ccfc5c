"""The built-in paired translation task `digit-pairs`: a digit's edges -> the digit drawn in a style.

A: the edges of the digit's strokes (a Sobel edge map, white on black), as an edge detector draws
   a photo in edges2shoes-style datasets;
B: the same digit in digit-styles' style B (thick strokes shading from orange to yellow, on a light
   striped background).
Every A has one right answer, its B, so translations are scored against the truth (PSNR, SSIM).

The 5,000 built-in digits are split once, the same way for every run: 4,800 training pairs and 200
test pairs, so figures from different runs, seeds and plugins are comparable. Plugins that learn
from unpaired data (CycleGAN, CUT) can train on the same 4,800 A and B images with the pairing
ignored, which is how the CycleGAN paper compares with pix2pix.

    from ganzoo.data.digit_pairs import make_digit_pairs
    pairs = make_digit_pairs(size=32)     # uint8 NHWC RGB: train_a, train_b, test_a, test_b
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.data.digit_styles import MIN_SIZE, blend, centered_strokes, colour, render_b
from ganzoo.data.digits import load_digits
from ganzoo.errors import UserError

NAME = "digit-pairs"
TEST_COUNT = 200
SPLIT_SEED = 20161121  # the split is part of the task, not of a run
EDGE_GAIN = 2.0  # Sobel magnitude of a sharp stroke edge is about 0.5: full white there
EDGE_BACKGROUND = (0, 0, 0)
EDGE_STROKE = (255, 255, 255)


@dataclass(frozen=True)
class DigitPairs:
    """uint8 NHWC RGB images; train_a[i] -> train_b[i] and test_a[i] -> test_b[i] are pairs."""

    train_a: np.ndarray
    train_b: np.ndarray
    test_a: np.ndarray
    test_b: np.ndarray


@lru_cache(maxsize=4)
def make_digit_pairs(size: int = 32) -> DigitPairs:
    if size < MIN_SIZE:
        raise UserError(f"{NAME} size {size} is too small; use a size of at least {MIN_SIZE}")
    images, _ = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    test, train = order[:TEST_COUNT], order[TEST_COUNT:]
    strokes = centered_strokes(images, size)
    edges, styled = render_edges(strokes), render_b(strokes)
    parts = {"train_a": edges[train], "train_b": styled[train], "test_a": edges[test], "test_b": styled[test]}
    for array in parts.values():
        array.setflags(write=False)  # cached and shared: nobody may change the answer key
    return DigitPairs(**parts)


def render_edges(strokes: torch.Tensor) -> np.ndarray:
    """White Sobel edges of the stroke coverage on black, uint8 NHWC RGB."""
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 4
    across = F.conv2d(strokes, sobel, padding=1)
    down = F.conv2d(strokes, sobel.transpose(2, 3), padding=1)
    magnitude = torch.hypot(across, down)
    return blend(colour(EDGE_BACKGROUND), colour(EDGE_STROKE), (magnitude * EDGE_GAIN).clamp(0.0, 1.0))
