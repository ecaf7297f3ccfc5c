"""Does the generator copy its training set? Nearest training neighbours of generated samples.

Distances are Euclidean, in pixel space (images flattened) or in a feature network's space.
A generator that memorises shows generated-to-train distances well below the typical distance
between two different training images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def memorization_summary(
    generated, train, feature_net: FeatureNet | None = None, seed: int = 0
) -> dict:
    """Generated-to-train nearest distances (min, median) against the train-to-train baseline.

    The baseline is the median distance from a training sample to its nearest *other* training
    sample, estimated on up to 1,000 training samples drawn with `seed`. `median_ratio` well
    below 1 means generated samples sit closer to training images than those do to each other.
    """
    gen, ref = _space(generated, train, feature_net)
    if len(ref) < 2:
        raise UserError("memorization needs at least 2 training samples")
    gen_distances, _ = nearest(gen, ref, k=1)
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(ref), min(TRAIN_QUERIES, len(ref)), replace=False)
    train_distances, _ = nearest(ref[queries], ref, k=1, exclude=queries)
    median = float(np.median(gen_distances))
    train_median = float(np.median(train_distances))
    if feature_net is not None:
        space = feature_net.name
    else:
        space = "pixels" if generated.ndim == 4 else "vectors"
    return {
        "space": space,
        "num_generated": len(gen),
        "num_train": len(ref),
        "min_distance": float(gen_distances.min()),
        "median_distance": median,
        "train_median_distance": train_median,
        "median_ratio": median / train_median if train_median > 0 else float("inf"),
    }


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW to uint8 NHWC with three channels."""
    x = match_channels(images.detach().float().cpu(), 3)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def memorization_grid(
    generated: torch.Tensor,
    train: torch.Tensor,
    k: int = 3,
    feature_net: FeatureNet | None = None,
    pad: int = 2,
) -> np.ndarray:
    """A uint8 RGB image (H, W, 3): one row per generated sample, the sample on the left, then a
    wider gap, then its k nearest training images, nearest first, on a white background."""
    _, indices = nearest_training_samples(generated, train, k=k, feature_net=feature_net)
    height, width = generated.shape[-2:]
    neighbours = train[torch.as_tensor(indices.reshape(-1))].float()
    if neighbours.shape[-2:] != (height, width):
        neighbours = F.interpolate(
            neighbours, size=(height, width), mode="bilinear", align_corners=False
        )
    tiles_gen = to_uint8_rgb(generated)
    tiles_nn = to_uint8_rgb(neighbours).reshape(len(generated), k, height, width, 3)
    gap = 4 * pad
    canvas_height = pad + len(generated) * (height + pad)
    canvas_width = pad + gap + (k + 1) * (width + pad)
    canvas = np.full((canvas_height, canvas_width, 3), 255, np.uint8)
    for row in range(len(generated)):
        top = pad + row * (height + pad)
        canvas[top : top + height, pad : pad + width] = tiles_gen[row]
        for col in range(k):
            left = 2 * pad + width + gap + col * (width + pad)
            canvas[top : top + height, left : left + width] = tiles_nn[row, col]
    return canvas
