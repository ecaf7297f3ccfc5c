"""Does the generator copy its training set? Nearest training neighbours of generated samples.

Distances are Euclidean, in pixel space (images flattened) or in a feature network's space.
A generator that memorises shows generated-to-train distances well below the typical distance
between two different training images.
"""

from __future__ import annotations

import numpy as np
import torch

from ganzoo.errors import UserError
from ganzoo.metrics.features import FeatureNet, embed, match_channels
from ganzoo.metrics.neighbours import nearest

TRAIN_QUERIES = 1000


def vectors(
    samples: torch.Tensor | np.ndarray, feature_net: FeatureNet | None = None
) -> np.ndarray:
    """(N, D) vectors: given as such, or images (N, C, H, W) as features or flattened pixels."""
    if samples.ndim == 2:
        return np.asarray(samples, dtype=np.float32)
    if feature_net is not None:
        return embed(feature_net, samples).astype(np.float32)
    return torch.as_tensor(samples).detach().float().cpu().flatten(1).numpy()


def _space(generated, train, feature_net: FeatureNet | None) -> tuple[np.ndarray, np.ndarray]:
    gen, ref = vectors(generated, feature_net), vectors(train, feature_net)
    if gen.shape[1] != ref.shape[1]:
        raise UserError(
            f"generated samples ({tuple(generated.shape[1:])}) and training samples "
            f"({tuple(train.shape[1:])}) differ in shape: compare them in a feature network's "
            "space instead (feature_net=...)"
        )
    return gen, ref


def nearest_training_samples(
    generated, train, k: int = 1, feature_net: FeatureNet | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each (N, k): every generated sample's k nearest training samples."""
    gen, ref = _space(generated, train, feature_net)
    return nearest(gen, ref, k=k)


def train_nearest_distances(train: np.ndarray, seed: int = 0) -> np.ndarray:
    """The baseline: distances from up to 1,000 training vectors (drawn with `seed`) to their
    nearest *other* training vector."""
    queries = np.random.default_rng(seed).choice(len(train), min(TRAIN_QUERIES, len(train)), replace=False)
    distances, _ = nearest(train[queries], train, k=1, exclude=queries)
    return distances[:, 0]


class NearestTrainingDistances:
    """Streams generated vectors past the training vectors, keeping one distance per sample."""

    def __init__(self, train: np.ndarray):
        if len(train) < 2:
            raise UserError("memorization needs at least 2 training samples")
        self.train = train
        self.distances: list[np.ndarray] = []

    def update(self, generated: np.ndarray) -> None:
        if generated.shape[1] != self.train.shape[1]:
            raise UserError(
                f"generated vectors have {generated.shape[1]} numbers and training vectors "
                f"{self.train.shape[1]}: compare them in one space"
            )
        self.distances.append(nearest(generated, self.train, k=1)[0][:, 0])

    def compute(self, space: str, seed: int = 0) -> dict:
        """Generated-to-train nearest distances (min, median) against the train-to-train baseline
        (`train_nearest_distances`). `median_ratio` well below 1 means generated samples sit closer
        to training images than those do to each other."""
        generated = np.concatenate(self.distances)
        median = float(np.median(generated))
        train_median = float(np.median(train_nearest_distances(self.train, seed)))
        return {
            "space": space,
            "num_generated": len(generated),
            "num_train": len(self.train),
            "min_distance": float(generated.min()),
            "median_distance": median,
            "train_median_distance": train_median,
            "median_ratio": median / train_median if train_median > 0 else float("inf"),
        }


def memorization_summary(
    generated, train, feature_net: FeatureNet | None = None, seed: int = 0
) -> dict:
    """`NearestTrainingDistances`' summary for whole sets of images or vectors."""
    gen, ref = _space(generated, train, feature_net)
    distances = NearestTrainingDistances(ref)
    distances.update(gen)
    if feature_net is not None:
        space = feature_net.name
    else:
        space = "pixels" if generated.ndim == 4 else "vectors"
    return distances.compute(space, seed)


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW to uint8 NHWC with three channels."""
    x = match_channels(images.detach().float().cpu(), 3)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
