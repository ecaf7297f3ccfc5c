"""Evaluate a generator: draw samples, embed them, score them, and say what the scores depend on.

A metric value is only comparable with another computed by the same feature network (name,
weights hash, resize method) against the same reference set with as many samples; every result
carries those facts. Statistics of the real images are cached as .npz under a hash of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ganzoo.errors import UserError
from ganzoo.metrics import cache
from ganzoo.metrics.features import FeatureNet, embed, has_logits
from ganzoo.metrics.fid import feature_stats, frechet_distance, inception_score, kid
from ganzoo.metrics.memorization import memorization_summary
from ganzoo.metrics.precision_recall import precision_recall

METRICS = ("fid", "kid", "is", "precision_recall", "memorization", "digit_quality")
# Metrics that compare generated features with the real images' features.
NEEDS_REAL = {"fid", "kid", "precision_recall", "memorization"}
SampleFn = Callable[[int, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class MetricOptions:
    batch_size: int = 250
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


def evaluate(
    sample_fn: SampleFn,
    real_images: torch.Tensor,
    metrics: list[str],
    feature_net: FeatureNet,
    num_samples: int = 10_000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    reference: str = "real images",
    options: MetricOptions = MetricOptions(),
) -> dict:
    """Score `num_samples` images from `sample_fn(n, generator) -> [-1, 1] NCHW` against `real_images`.

    `metrics` picks from METRICS. "memorization" looks for generated samples close to
    `real_images` in feature space, so pass the training set there for it. "digit_quality" asks
    the built-in digit classifier (`feature_net` itself when that is a DigitFeatures). Returns
    {"metrics": {...}, "provenance": {...}}; the same seed gives the same numbers.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise UserError(f"unknown or no metrics {unknown}: choose from {', '.join(METRICS)}")
    if num_samples < 2:
        raise UserError(f"evaluation needs at least 2 samples; got num_samples={num_samples}")
    if "is" in metrics and not has_logits(feature_net):
        raise UserError(
            f"the Inception Score needs a feature network with logits; {feature_net.name} has none"
        )
    generated = draw_samples(sample_fn, num_samples, seed, options.batch_size)
    results: dict[str, object] = {}
    stats = None
    if NEEDS_REAL & set(metrics):
        stats = reference_stats(real_images, feature_net, reference, cache_dir, options.batch_size)
        fake = embed(feature_net, generated, options.batch_size).astype(np.float32)
    if "fid" in metrics:
        results["fid"] = frechet_distance(*feature_stats(fake), stats.mu, stats.sigma)
    if "kid" in metrics:
        mean, std = kid(fake, stats.features, options.kid_subsets, options.kid_subset_size, seed)
        size = min(options.kid_subset_size, len(fake), len(stats.features))
        results["kid"] = {
            "mean": mean, "std": std, "subsets": options.kid_subsets, "subset_size": size
        }
    if "is" in metrics:
        logits = embed(feature_net.logits, generated, options.batch_size)
        mean, std = inception_score(logits, options.is_splits)
        results["is"] = {"mean": mean, "std": std, "splits": options.is_splits}
    if "precision_recall" in metrics:
        scores = precision_recall(stats.features, fake, options.nearest_k)
        results["precision_recall"] = {**scores, "k": options.nearest_k}
    if "memorization" in metrics:
        summary = memorization_summary(fake, stats.features, seed=seed)
        results["memorization"] = {**summary, "space": feature_net.name}
    if "digit_quality" in metrics:
        from ganzoo.metrics.classifier import DigitFeatures, digit_quality

        judge = feature_net if isinstance(feature_net, DigitFeatures) else None
        results["digit_quality"] = digit_quality(generated, features=judge)
    return {
        "metrics": results,
        "provenance": {
            "feature_net": feature_net.name,
            "weights_hash": feature_net.weights_hash,
            "resize": feature_net.resize,
            "reference": reference,
            "num_real": len(real_images),
            "num_generated": num_samples,
            "seed": seed,
            "reference_stats_file": str(stats.path) if stats else None,
            "options": asdict(options),
        },
    }


@torch.no_grad()
def draw_samples(sample_fn: SampleFn, num_samples: int, seed: int, batch_size: int) -> torch.Tensor:
    """`num_samples` images in batches, all noise drawn from one CPU generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for start in range(0, num_samples, batch_size):
        count = min(batch_size, num_samples - start)
        images = sample_fn(count, generator)
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) != count:
            raise UserError(
                f"sample_fn({count}, generator) must return {count} images shaped (N, C, H, W); "
                f"got {tuple(getattr(images, 'shape', ()))}"
            )
        batches.append(images.detach().float().cpu())
    samples = torch.cat(batches)
    if not torch.isfinite(samples).all():
        raise UserError("the generator produced NaN or infinite pixels: check the checkpoint")
    return samples


def reference_key(real_images: torch.Tensor, feature_net: FeatureNet, reference: str) -> str:
    """A hash of everything the real statistics depend on, the image content included."""
    pixels = real_images.detach().float().cpu().contiguous().numpy()
    content = hashlib.sha256(pixels.tobytes()).hexdigest()
    facts = {
        "feature_net": feature_net.name,
        "weights_hash": feature_net.weights_hash,
        "resize": feature_net.resize,
        "reference": reference,
        "num_real": len(real_images),
        "shape": list(real_images.shape[1:]),
        "content_sha256": content,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def reference_stats(
    real_images: torch.Tensor,
    feature_net: FeatureNet,
    reference: str,
    cache_dir: str | Path | None = None,
    batch_size: int = 250,
) -> ReferenceStats:
    """Features, mean and covariance of the real images, from the cache when computed before."""
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir() / "reference_stats"
    path = folder / f"{reference_key(real_images, feature_net, reference)[:32]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return ReferenceStats(stored["features"], stored["mu"], stored["sigma"], path)
    # embed() computes in float32, so storing float32 loses nothing.
    features = embed(feature_net, real_images, batch_size).astype(np.float32)
    mu, sigma = feature_stats(features)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, features=features, mu=mu, sigma=sigma)
    partial.replace(path)  # atomic: a concurrent run never reads half a file
    return ReferenceStats(features, mu, sigma, path)
