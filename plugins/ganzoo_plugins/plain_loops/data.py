"""The plain loops' own data handling: raw uint8 arrays in, shuffled float batches out.

Nothing here comes from ganzoo's data layer: the arrays are converted to [-1, 1] floats once and
kept in memory, and each epoch is a fresh ``torch.randperm`` cut into full batches (the last,
partial batch is dropped, as ``DataLoader(drop_last=True)`` does). Only the raw arrays are read
through ganzoo (the same files the engine reads), by ``raw_digits``, ``raw_digit_styles`` and
``raw_digit_pairs``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def to_float(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float (N, C, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.array(images)).float()  # a copy: the shipped arrays are read-only
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.div_(127.5).sub_(1.0).contiguous()


def fit(x: Tensor, size: int) -> Tensor:
    """28x28 digits to ``size``: a 2-pixel black border for 32 (the LeNet framing), else resampled."""
    if x.shape[-1] == size:
        return x
    if size == 32 and x.shape[-1] == 28:
        return F.pad(x, (2, 2, 2, 2), value=-1.0)
    mode = "area" if size < x.shape[-1] else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode)


class Shuffled:
    """Batches of ``batch_size`` rows of ``tensors`` (indexed together) in a new random order each epoch."""

    def __init__(self, *tensors: Tensor | None, batch_size: int, seed: int):
        self.tensors = tensors
        self.count = len(tensors[0])
        if batch_size > self.count:
            raise ValueError(f"batch size {batch_size} is larger than the {self.count} images")
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.position = torch.randperm(self.count, generator=self.generator), 0

    def next(self) -> tuple[Tensor | None, ...]:
        if self.position + self.batch_size > self.count:
            self.order, self.position = torch.randperm(self.count, generator=self.generator), 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return tuple(t[index] if t is not None else None for t in self.tensors)


class RandomFlips:
    """Mirrors a random half of a batch left to right, when ``enabled``: tensors passed together get
    the same choice (a pair stays a pair), each call draws anew."""

    def __init__(self, enabled: bool, seed: int):
        self.enabled = enabled
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, *batches: Tensor) -> tuple[Tensor, ...]:
        if not self.enabled:
            return batches
        chosen = (torch.rand(len(batches[0]), generator=self.generator) < 0.5).to(batches[0].device).view(-1, 1, 1, 1)
        return tuple(torch.where(chosen, x.flip(-1), x) for x in batches)


def unpaired_batches(data: dict, s, device) -> tuple[Callable[[], tuple[Tensor, Tensor]], float]:
    """(a function giving the next A and B batches, each shuffled per epoch on its own and flipped on
    its own when ``s.hflip``; the steps in an epoch of max(|A|, |B|) images)."""
    a, b = to_float(data["images"]).to(device), to_float(data["images_b"]).to(device)
    batches_a = Shuffled(a, batch_size=s.batch_size, seed=s.seed)
    batches_b = Shuffled(b, batch_size=s.batch_size, seed=s.seed + 1)
    flips = RandomFlips(s.hflip, s.seed + 2)

    def next_batches() -> tuple[Tensor, Tensor]:
        (real_a,) = flips(batches_a.next()[0])
        (real_b,) = flips(batches_b.next()[0])
        return real_a, real_b

    return next_batches, max(len(a), len(b)) / s.batch_size


def raw_digits() -> dict[str, np.ndarray]:
    """The built-in digits as stored: uint8 (5000, 28, 28) and int64 labels."""
    from ganzoo.data.digits import load_digits

    images, labels = load_digits()
    return {"images": images, "labels": labels}


def raw_digit_styles(size: int, seed: int) -> dict[str, np.ndarray]:
    """The two training styles of digit-styles, uint8 NHWC, as a run with ``seed`` splits them."""
    from ganzoo.data.digit_styles import make_digit_styles

    styles = make_digit_styles(size=size, seed=seed)
    return {"images": styles.train_a, "images_b": styles.train_b}


def raw_digit_pairs(size: int) -> dict[str, np.ndarray]:
    """The training pairs of digit-pairs, uint8 NHWC: edges (A) and the digits drawn in style B."""
    from ganzoo.data.digit_pairs import make_digit_pairs

    pairs = make_digit_pairs(size=size)
    return {"images": pairs.train_a, "images_b": pairs.train_b}
