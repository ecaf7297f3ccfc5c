"""What evaluation accumulates while generated images stream past, one batch at a time.

Metrics follow torchmetrics' shape: `update` with each batch, `compute` at the end. Only features,
logits and a few numbers per image are kept, never the images, so memory does not grow with the
image size and grows with the sample count only by the feature width.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property

import numpy as np
import torch

from ganzoo.errors import UserError
from ganzoo.metrics.features import FeatureNet, embed

SampleFn = Callable[[int, torch.Generator], torch.Tensor]


@torch.no_grad()
def sample_batches(sample_fn: SampleFn, num_samples: int, seed: int, batch_size: int) -> Iterator[torch.Tensor]:
    """`num_samples` images as CPU float batches, all noise drawn from one CPU generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, num_samples, batch_size):
        count = min(batch_size, num_samples - start)
        images = sample_fn(count, generator)
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) != count:
            raise UserError(
                f"sample_fn({count}, generator) must return {count} images shaped (N, C, H, W); "
                f"got {tuple(getattr(images, 'shape', ()))}"
            )
        images = images.detach().float().cpu()
        if not torch.isfinite(images).all():
            raise UserError("the generator produced NaN or infinite pixels: check the checkpoint")
        yield images


class SampleBatch:
    """One batch of generated images; its features and logits are computed on first use, once,
    however many metrics read them."""

    def __init__(self, images: torch.Tensor, feature_net: FeatureNet, feature_batch_size: int = 50):
        self.images, self.feature_net, self.feature_batch_size = images, feature_net, feature_batch_size

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def features(self) -> np.ndarray:
        return embed(self.feature_net, self.images, self.feature_batch_size).astype(np.float32)

    @cached_property
    def logits(self) -> np.ndarray:
        return embed(self.feature_net.logits, self.images, self.feature_batch_size).astype(np.float32)


class KeptRows:
    """Every batch's rows (features or logits) in one float32 array allocated once, N x D."""

    def __init__(self, total: int):
        self.total, self.filled = total, 0
        self.rows: np.ndarray | None = None

    def update(self, rows: np.ndarray) -> None:
        if self.rows is None:
            self.rows = np.empty((self.total, rows.shape[1]), np.float32)
        self.rows[self.filled : self.filled + len(rows)] = rows
        self.filled += len(rows)

    def compute(self) -> np.ndarray:
        if self.rows is None:
            raise UserError("no samples were seen: evaluate at least 2")
        return self.rows[: self.filled]


class RunningMoments:
    """Mean and covariance (unbiased, N-1, as np.cov) of rows seen batch by batch, in float64.

    Each batch is centred on its own mean and merged with Chan, Golub and LeVeque's pairwise
    update, so no sum of squares of large numbers is ever formed (no cancellation at 50,000 rows).
    """

    def __init__(self):
        self.count = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None  # sum of outer products of deviations from the mean

    def update(self, rows: np.ndarray) -> None:
        x = np.asarray(rows, np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise UserError(f"moments need feature rows shaped (N, D) with N > 0; got {x.shape}")
        mean = x.mean(axis=0)
        centred = x - mean
        scatter = centred.T @ centred
        if self.count == 0:
            self.count, self.mean, self.scatter = len(x), mean, scatter
            return
        total = self.count + len(x)
        delta = mean - self.mean
        self.scatter += scatter + np.outer(delta, delta) * (self.count * len(x) / total)
        self.mean = self.mean + delta * (len(x) / total)
        self.count = total

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count < 2:
            raise UserError(f"feature statistics need at least 2 feature vectors; got {self.count}")
        return self.mean, self.scatter / (self.count - 1)
