import numpy as np
import pytest
import torch

from ganzoo.errors import UserError
from ganzoo.metrics.memorization import (
    memorization_grid,
    memorization_summary,
    nearest_training_samples,
    to_uint8_rgb,
)


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


def test_grid_shows_each_sample_beside_its_nearest_training_images():
    train = images(60, channels=3)
    generated = train[[5, 9]]
    grid = memorization_grid(generated, train, k=3, pad=2)
    assert grid.dtype == np.uint8 and grid.shape == (2 + 2 * 10, 2 + 8 + 4 * 10, 3)
    tiles = to_uint8_rgb(generated)
    first_neighbour = grid[2:10, 2 + 8 + 2 + 8 : 2 + 8 + 2 + 8 + 8]
    assert np.array_equal(grid[2:10, 2:10], tiles[0])
    assert np.array_equal(first_neighbour, tiles[0])  # the copy itself, at distance 0
    assert np.array_equal(grid[12:20, 2:10], tiles[1])
    assert (grid[:2] == 255).all()


def test_grid_of_grayscale_samples_is_rgb():
    train = images(20)
    grid = memorization_grid(train[:1], train, k=1)
    assert grid.shape[-1] == 3 and np.array_equal(grid[..., 0], grid[..., 2])
