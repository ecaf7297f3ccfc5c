import numpy as np
import pytest
import torch

from ganzoo.errors import UserError
from ganzoo.metrics.memorization import (
    NearestTrainingDistances,
    memorization_summary,
    nearest_training_samples,
    train_nearest_distances,
)
from ganzoo.metrics.neighbours import nearest


def images(n, seed=0, size=8, channels=1):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class MeanFeatures:
    """A two-number feature space (mean and std of the pixels) standing in for a network."""

    name, weights_hash, resize = "mean-std", "none", "none"

    def __call__(self, x):
        return torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1)


def test_exact_copies_are_found_at_distance_zero():
    train = images(200)
    copies = [17, 3, 150]
    generated = torch.cat([train[copies], images(2, seed=1)])
    distances, indices = nearest_training_samples(generated, train, k=2)
    assert indices[:3, 0].tolist() == copies
    assert (distances[:3, 0] == 0).all()
    assert (distances[3:, 0] > 0).all() and (distances[:, 1] >= distances[:, 0]).all()


def test_summary_tells_copies_from_fresh_samples():
    train = images(300)
    copied = memorization_summary(train[:50], train)
    fresh = memorization_summary(images(50, seed=7), train)
    assert copied["min_distance"] == 0 and copied["median_ratio"] == 0
    assert 0.8 < fresh["median_ratio"] < 1.2  # as close as two training images are to each other
    assert fresh["space"] == "pixels" and fresh["num_train"] == 300 and fresh["num_generated"] == 50


def test_feature_space_search_and_shape_mismatch():
    train = images(100)
    mirrored = train[:5].flip(-1)  # far in pixels, same mean and std as their sources
    _, indices = nearest_training_samples(mirrored, train, feature_net=MeanFeatures())
    assert indices[:, 0].tolist() == [0, 1, 2, 3, 4]
    summary = memorization_summary(images(10, size=16), train, feature_net=MeanFeatures())
    assert summary["space"] == "mean-std"
    with pytest.raises(UserError, match="feature_net"):
        nearest_training_samples(images(4, size=16), train)


def test_streamed_distances_equal_one_pass_over_all_samples():
    train = images(120).flatten(1).numpy()
    generated = images(50, seed=3).flatten(1).numpy()
    streamed = NearestTrainingDistances(train)
    for part in np.split(generated, [7, 30]):
        streamed.update(part)
    summary = streamed.compute("pixels", seed=1)
    whole, _ = nearest(generated, train, k=1)
    assert summary["median_distance"] == pytest.approx(float(np.median(whole)))
    assert summary["min_distance"] == pytest.approx(float(whole.min())) and summary["num_generated"] == 50
    assert summary["train_median_distance"] == pytest.approx(float(np.median(train_nearest_distances(train, seed=1))))
    with pytest.raises(UserError, match="one space"):
        streamed.update(generated[:, :10])
    with pytest.raises(UserError, match="at least 2 training samples"):
        NearestTrainingDistances(train[:1])


def test_train_baseline_never_matches_a_sample_with_itself():
    train = images(40).flatten(1).numpy()
    doubled = np.concatenate([train, train[:1]])  # one exact duplicate pair
    distances = train_nearest_distances(doubled, seed=0)
    assert len(distances) == 41 and (distances > 0).sum() == 39  # only the duplicate pair is at 0
