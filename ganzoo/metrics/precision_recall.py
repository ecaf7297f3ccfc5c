"""Improved precision and recall (Kynkäänniemi et al. 2019) on feature vectors.

Each set's manifold is the union of balls around its samples, each ball reaching the sample's
k-th nearest neighbour in the same set (k = 3 in the paper). Precision: the share of generated
samples inside the real manifold; recall: the share of real samples inside the generated one.
"""

from __future__ import annotations

import numpy as np

from ganzoo.errors import UserError
from ganzoo.metrics.neighbours import nearest, within_any_radius


def knn_radii(features, k: int = 3) -> np.ndarray:
    """Distance from every sample to its k-th nearest other sample of the same set."""
    count = len(features)
    if count <= k:
        raise UserError(f"k-NN radii with k={k} need more than {k} samples; got {count}")
    distances, _ = nearest(features, features, k=k, exclude=np.arange(count))
    return distances[:, -1]


def precision_recall(real_features, fake_features, k: int = 3) -> dict[str, float]:
    real, fake = np.asarray(real_features), np.asarray(fake_features)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise UserError(
            "precision/recall need two feature sets shaped (N, D) with one D; "
            f"got {real.shape} and {fake.shape}"
        )
    precision = within_any_radius(fake, real, knn_radii(real, k)).mean()
    recall = within_any_radius(real, fake, knn_radii(fake, k)).mean()
    return {"precision": float(precision), "recall": float(recall)}
