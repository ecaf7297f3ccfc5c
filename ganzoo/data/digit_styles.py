"""The built-in unpaired translation dataset `digit-styles`, with a paired answer key for testing.

Domain A: thin white strokes on a dark blue background.
Domain B: thick (dilated) strokes shading from orange to yellow down the image, on a light
textured background. Dilation and the position-dependent colours mean B is not a per-pixel
colour map of A, so a translator has to learn shape as well as colour.
trainA and trainB are drawn from disjoint sets of source digits (unpaired); every test digit is
rendered in both styles, so test_a[i] -> test_b[i] is the ground truth for translation metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.data.digits import load_digits
from ganzoo.errors import UserError

MIN_SIZE = 16
SOURCE_SIZE = 28
DIGIT_FRACTION = 28 / 32  # MNIST's own framing at 32x32: the 28x28 digit plus a 2-pixel margin
MAX_TEST_COUNT = 1000
TEXTURE_SEED = 20170330  # fixed so B's background is part of the style, not of the split seed

A_BACKGROUND = (18, 28, 92)
A_STROKE = (245, 245, 250)
B_BACKGROUND = (236, 226, 204)
B_STROKE_TOP = (240, 110, 20)
B_STROKE_BOTTOM = (250, 215, 40)


@dataclass(frozen=True)
class DigitStyles:
    """uint8 NHWC RGB images; test_a[i] and test_b[i] show the same source digit."""

    train_a: np.ndarray
    train_b: np.ndarray
    test_a: np.ndarray
    test_b: np.ndarray


def make_digit_styles(size: int = 32, seed: int = 0, test_count: int = 200) -> DigitStyles:
    if size < MIN_SIZE:
        raise UserError(f"digit-styles size {size} is too small; use a size of at least {MIN_SIZE}")
    if not 1 <= test_count <= MAX_TEST_COUNT:
        limit = MAX_TEST_COUNT
        raise UserError(f"digit-styles test_count {test_count} is out of range; use 1..{limit}")
    images, _ = load_digits()
    order = np.random.default_rng(seed).permutation(len(images))
    test, train = order[:test_count], order[test_count:]
    half = len(train) // 2
    train_a, train_b = train[:half], train[half:]

    strokes = centered_strokes(images, size)
    return DigitStyles(
        train_a=render_a(strokes[train_a]),
        train_b=render_b(strokes[train_b]),
        test_a=render_a(strokes[test]),
        test_b=render_b(strokes[test]),
    )


def centered_strokes(images: np.ndarray, size: int) -> torch.Tensor:
    """Stroke coverage in [0, 1], shape [N, 1, size, size], digit resized and centred."""
    inner = round(size * DIGIT_FRACTION)
    strokes = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if inner != SOURCE_SIZE:
        shrinking = inner < SOURCE_SIZE
        strokes = F.interpolate(
            strokes, size=(inner, inner), mode="bilinear", antialias=shrinking, align_corners=False
        )
    before = (size - inner) // 2
    after = size - inner - before
    return F.pad(strokes, (before, after, before, after)).clamp(0.0, 1.0)


def render_a(strokes: torch.Tensor) -> np.ndarray:
    # Thinning: only the core of each stroke stays fully lit.
    coverage = ((strokes - 0.45) / 0.4).clamp(0.0, 1.0)
    return blend(colour(A_BACKGROUND), colour(A_STROKE), coverage)


def render_b(strokes: torch.Tensor) -> np.ndarray:
    size = strokes.shape[-1]
    # A 3x3 dilation at 32 pixels, grown with the size so that B looks the same at every resolution.
    radius = max(1, round(size / 32))
    thick = F.max_pool2d(strokes, kernel_size=2 * radius + 1, stride=1, padding=radius)
    coverage = (thick / 0.6).clamp(0.0, 1.0)
    top_to_bottom = torch.linspace(0.0, 1.0, size).view(1, 1, size, 1)
    stroke = colour(B_STROKE_TOP) * (1 - top_to_bottom) + colour(B_STROKE_BOTTOM) * top_to_bottom
    background = colour(B_BACKGROUND) + background_texture(size)
    return blend(background, stroke, coverage)


def background_texture(size: int) -> torch.Tensor:
    """Diagonal stripes plus fixed grain, in 0..255 colour units, shape [1, 3, size, size]."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    stripes = 14.0 * torch.sin((rows + cols).float() * (2 * torch.pi / 6))
    grain = np.random.default_rng(TEXTURE_SEED).normal(0.0, 6.0, (size, size))
    texture = stripes + torch.from_numpy(grain).float()
    return texture.expand(1, 3, size, size) * torch.tensor([1.0, 0.9, 0.7]).view(1, 3, 1, 1)


def colour(rgb: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1)


def blend(background: torch.Tensor, stroke: torch.Tensor, coverage: torch.Tensor) -> np.ndarray:
    # Channel by channel into a uint8 buffer: full-size float temporaries dominate the run time.
    n, _, height, width = coverage.shape
    image = torch.empty(n, height, width, 3, dtype=torch.uint8)
    for channel in range(3):
        mixed = torch.lerp(background[:, channel], stroke[:, channel], coverage[:, 0])
        image[..., channel] = mixed.round_().clamp_(0, 255)
    return image.numpy()
