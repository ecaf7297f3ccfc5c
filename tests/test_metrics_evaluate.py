import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo.data.digits import load_digits
from ganzoo.errors import UserError
from ganzoo.metrics.evaluate import MetricOptions, evaluate

OPTIONS = MetricOptions(batch_size=128, kid_subsets=10, kid_subset_size=100, is_splits=5)


class PooledPixels:
    """A cheap feature network: 7x7 average-pooled pixels, and a fixed random linear classifier."""

    name, resize = "pooled-pixels", "avgpool-4"

    def __init__(self, weights_hash="seed0"):
        self.weights_hash = weights_hash
        self.classifier = torch.randn(49, 10, generator=torch.Generator().manual_seed(0))
        self.images_seen = 0

    def __call__(self, images):
        self.images_seen += len(images)
        return F.avg_pool2d(images, 4).flatten(1)

    def logits(self, images):
        return 5 * self(images) @ self.classifier


class Flat(PooledPixels):
    logits = None


@pytest.fixture(scope="module")
def digits():
    images, _ = load_digits()
    order = np.random.default_rng(0).permutation(len(images))[:1600]
    return torch.from_numpy(images[order].astype(np.float32) / 127.5 - 1).unsqueeze(1)


def real_sampler(pool):
    def sample(n, generator):
        return pool[torch.randint(len(pool), (n,), generator=generator)]

    return sample


def noise_sampler(n, generator):
    return torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1


def run(sample_fn, real, cache, net=None, metrics=("fid", "kid", "is", "precision_recall", "memorization"), seed=0):
    net = net or PooledPixels()
    return evaluate(sample_fn, real, list(metrics), net, num_samples=300, seed=seed, cache_dir=cache,
                    reference="digits: 1000 shuffled", options=OPTIONS)


def test_scores_rank_real_digits_above_noise_and_carry_provenance(digits, tmp_path):
    real, held_out = digits[:1000], digits[1000:]
    good = run(real_sampler(held_out), real, tmp_path)
    bad = run(noise_sampler, real, tmp_path)
    g, b = good["metrics"], bad["metrics"]
    assert g["fid"] < 0.1 * b["fid"]
    assert g["kid"]["mean"] < 0.1 * b["kid"]["mean"] and g["kid"]["subset_size"] == 100
    assert g["precision_recall"]["precision"] > 0.8 > 0.1 > b["precision_recall"]["precision"]
    assert g["memorization"]["space"] == "pooled-pixels" and g["memorization"]["num_train"] == 1000
    assert math.isfinite(g["is"]["mean"]) and g["is"]["splits"] == 5
    provenance = good["provenance"]
    assert provenance["feature_net"] == "pooled-pixels" and provenance["weights_hash"] == "seed0"
    assert provenance["resize"] == "avgpool-4" and provenance["reference"] == "digits: 1000 shuffled"
    assert provenance["num_real"] == 1000 and provenance["num_generated"] == 300 and provenance["seed"] == 0
    assert provenance["options"]["kid_subsets"] == 10
    stats_file = provenance["reference_stats_file"]
    assert stats_file.endswith(".npz") and stats_file == bad["provenance"]["reference_stats_file"]
    with np.load(stats_file, allow_pickle=False) as stored:
        assert stored["features"].shape == (1000, 49) and stored["sigma"].shape == (49, 49)


def test_results_are_reproducible_with_a_seed(digits, tmp_path):
    real, pool = digits[:500], digits[500:]
    first = run(real_sampler(pool), real, tmp_path)
    assert run(real_sampler(pool), real, tmp_path) == first
    assert run(real_sampler(pool), real, tmp_path, seed=1)["metrics"]["fid"] != first["metrics"]["fid"]


def test_real_statistics_are_computed_once_per_feature_network(digits, tmp_path):
    real = digits[:400]
    net = PooledPixels()
    run(noise_sampler, real, tmp_path, net=net, metrics=["fid"])
    assert net.images_seen == 400 + 300
    run(noise_sampler, real, tmp_path, net=net, metrics=["fid"])
    assert net.images_seen == 400 + 300 + 300  # real features came from the cache
    other = PooledPixels(weights_hash="other-weights")
    run(noise_sampler, real, tmp_path, net=other, metrics=["fid"])
    assert other.images_seen == 400 + 300
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_metrics_without_real_data_skip_the_reference(digits, tmp_path):
    result = run(noise_sampler, digits[:100], tmp_path, metrics=["is"])
    assert set(result["metrics"]) == {"is"} and result["provenance"]["reference_stats_file"] is None
    assert not list(tmp_path.iterdir())


def test_evaluate_errors(digits, tmp_path):
    real = digits[:100]
    with pytest.raises(UserError, match="choose from"):
        run(noise_sampler, real, tmp_path, metrics=["fid", "sharpness"])
    with pytest.raises(UserError, match="logits"):
        run(noise_sampler, real, tmp_path, net=Flat(), metrics=["is"])
    with pytest.raises(UserError, match="must return 128 images"):
        run(lambda n, g: noise_sampler(n + 1, g), real, tmp_path, metrics=["fid"])
    with pytest.raises(UserError, match="NaN"):
        run(lambda n, g: noise_sampler(n, g) * float("nan"), real, tmp_path, metrics=["fid"])
