"""Evaluate a generator: draw samples, embed them, score them, and say what the scores depend on.

Generated images stream through: each batch is drawn, embedded, handed to the metrics' running
state (`ganzoo.metrics.streams`) and dropped, so memory does not grow with the image size.

A metric value is only comparable with another computed by the same feature network (name,
weights hash, resize method) against the same reference set with as many samples; every result
carries those facts. Statistics of the real images are cached as .npz under a hash of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ganzoo.data.image_batches import ImageBatches
from ganzoo.errors import UserError
from ganzoo.metrics import cache
from ganzoo.metrics.features import FeatureNet, embed, has_logits
from ganzoo.metrics.fid import feature_stats, frechet_distance, inception_score, kid
from ganzoo.metrics.memorization import NearestTrainingDistances
from ganzoo.metrics.precision_recall import precision_recall
from ganzoo.metrics.streams import KeptRows, RunningMoments, SampleBatch, SampleFn, sample_batches

METRICS = ("fid", "kid", "is", "precision_recall", "memorization", "digit_quality")
# Metrics that compare generated features with the real images' features.
NEEDS_REAL = {"fid", "kid", "precision_recall", "memorization"}


@dataclass(frozen=True)
class MetricOptions:
    batch_size: int = 250  # images sampled at a time: decides which samples a seed draws
    # Images through the feature network at a time. Only float rounding depends on it, and it
    # bounds the network's activations: a CPU eval with the Inception network peaked at 4.7 GB
    # with 250 and 2.1 GB with 50 (docs/benchmarks.md).
    feature_batch_size: int = 50
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    nearest_k: int = 3


@dataclass(frozen=True)
class ReferenceStats:
    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    path: Path


class Observer(Protocol):
    """Anything else that wants to see each batch of generated samples (e.g. picture makers)."""

    def update(self, batch: SampleBatch) -> None: ...


def evaluate(
    sample_fn: SampleFn,
    real_images: torch.Tensor | ImageBatches,
    metrics: list[str],
    feature_net: FeatureNet,
    num_samples: int = 10_000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    reference: str = "real images",
    options: MetricOptions = MetricOptions(),
    observers: Sequence[Observer] = (),
) -> dict:
    """Score `num_samples` images from `sample_fn(n, generator) -> [-1, 1] NCHW` against `real_images`.

    `real_images` is a [-1, 1] NCHW tensor or an `ImageBatches` (read batch by batch). `metrics`
    picks from METRICS. "memorization" looks for generated samples close to `real_images` in
    feature space, so pass the training set there for it. "digit_quality" asks the built-in
    digit classifier (`feature_net` itself when that is a DigitFeatures). `observers` see every
    batch too. Returns {"metrics": {...}, "provenance": {...}}; the same seed gives the same numbers.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise UserError(f"unknown or no metrics {unknown}: choose from {', '.join(METRICS)}")
    if num_samples < 2:
        raise UserError(f"evaluation needs at least 2 samples; got num_samples={num_samples}")
    if min(options.batch_size, options.feature_batch_size) < 1:
        sizes = f"batch_size={options.batch_size}, feature_batch_size={options.feature_batch_size}"
        raise UserError(f"batch sizes must be at least 1; got {sizes}")
    if "is" in metrics and not has_logits(feature_net):
        raise UserError(
            f"the Inception Score needs a feature network with logits; {feature_net.name} has none"
        )
    real = as_batches(real_images)
    stats = None
    if NEEDS_REAL & set(metrics):
        stats = reference_stats(real, feature_net, reference, cache_dir, options.feature_batch_size)
    state = RunningState(metrics, num_samples, stats, feature_net)
    for images in sample_batches(sample_fn, num_samples, seed, options.batch_size):
        batch = SampleBatch(images, feature_net, options.feature_batch_size)
        state.update(batch)
        for observer in observers:
            observer.update(batch)
    return {
        "metrics": state.compute(options, seed),
        "provenance": {
            "feature_net": feature_net.name,
            "weights_hash": feature_net.weights_hash,
            "resize": feature_net.resize,
            "reference": reference,
            "num_real": len(real),
            "num_generated": num_samples,
            "seed": seed,
            "reference_stats_file": str(stats.path) if stats else None,
            "options": asdict(options),
        },
    }


def as_batches(images: torch.Tensor | ImageBatches) -> ImageBatches:
    return images if isinstance(images, ImageBatches) else ImageBatches(images)


class RunningState:
    """What the chosen metrics keep of the generated samples: running moments for FID, features
    for KID and precision/recall, logits for IS, one distance per sample for memorization, one
    verdict per sample for the digit classifier."""

    def __init__(self, metrics: list[str], num_samples: int, stats: ReferenceStats | None, feature_net: FeatureNet):
        self.metrics, self.stats, self.feature_net = metrics, stats, feature_net
        self.moments = RunningMoments() if "fid" in metrics else None
        self.features = KeptRows(num_samples) if {"kid", "precision_recall"} & set(metrics) else None
        self.logits = KeptRows(num_samples) if "is" in metrics else None
        self.nearest = NearestTrainingDistances(stats.features) if "memorization" in metrics else None
        self.verdicts = None
        if "digit_quality" in metrics:
            from ganzoo.metrics.classifier import DigitFeatures, DigitVerdicts

            self.verdicts = DigitVerdicts(feature_net if isinstance(feature_net, DigitFeatures) else None)

    def update(self, batch: SampleBatch) -> None:
        if self.moments is not None:
            self.moments.update(batch.features)
        if self.features is not None:
            self.features.update(batch.features)
        if self.logits is not None:
            self.logits.update(batch.logits)
        if self.nearest is not None:
            self.nearest.update(batch.features)
        if self.verdicts is not None:
            self.verdicts.update(batch.images)

    def compute(self, options: MetricOptions, seed: int) -> dict[str, object]:
        results: dict[str, object] = {}
        stats = self.stats
        if self.moments is not None:
            results["fid"] = frechet_distance(*self.moments.compute(), stats.mu, stats.sigma)
        if "kid" in self.metrics:
            fake = self.features.compute()
            mean, std = kid(fake, stats.features, options.kid_subsets, options.kid_subset_size, seed)
            size = min(options.kid_subset_size, len(fake), len(stats.features))
            results["kid"] = {"mean": mean, "std": std, "subsets": options.kid_subsets, "subset_size": size}
        if self.logits is not None:
            mean, std = inception_score(self.logits.compute(), options.is_splits)
            results["is"] = {"mean": mean, "std": std, "splits": options.is_splits}
        if "precision_recall" in self.metrics:
            scores = precision_recall(stats.features, self.features.compute(), options.nearest_k)
            results["precision_recall"] = {**scores, "k": options.nearest_k}
        if self.nearest is not None:
            results["memorization"] = self.nearest.compute(self.feature_net.name, seed)
        if self.verdicts is not None:
            results["digit_quality"] = self.verdicts.compute()
        return results


def reference_key(real: ImageBatches, feature_net: FeatureNet, reference: str, batch_size: int = 250) -> str:
    """A hash of everything the real statistics depend on, the image content included (hashed
    batch by batch: the same digest as the whole float tensor's bytes)."""
    content = hashlib.sha256()
    for images in real.batches(batch_size):
        content.update(images.detach().float().cpu().contiguous().numpy().tobytes())
    facts = {
        "feature_net": feature_net.name,
        "weights_hash": feature_net.weights_hash,
        "resize": feature_net.resize,
        "reference": reference,
        "num_real": len(real),
        "shape": list(real.image_shape),
        "content_sha256": content.hexdigest(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def reference_stats(
    real_images: torch.Tensor | ImageBatches,
    feature_net: FeatureNet,
    reference: str,
    cache_dir: str | Path | None = None,
    batch_size: int = 250,
) -> ReferenceStats:
    """Features, mean and covariance of the real images, from the cache when computed before."""
    real = as_batches(real_images)
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir() / "reference_stats"
    path = folder / f"{reference_key(real, feature_net, reference, batch_size)[:32]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return ReferenceStats(stored["features"], stored["mu"], stored["sigma"], path)
    features = KeptRows(len(real))
    for images in real.batches(batch_size):
        # embed() computes in float32, so storing float32 loses nothing.
        features.update(embed(feature_net, images, batch_size))
    mu, sigma = feature_stats(features.compute())
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, features=features.compute(), mu=mu, sigma=sigma)
    partial.replace(path)  # atomic: a concurrent run never reads half a file
    return ReferenceStats(features.compute(), mu, sigma, path)
