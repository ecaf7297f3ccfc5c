import math

import numpy as np
import pytest
import torch

from ganzoo.data.toys import grid_centers, grid_of_gaussians, ring_centers, ring_of_gaussians
from ganzoo.errors import UserError
from ganzoo.metrics.mode_coverage import mode_coverage


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_centres_lie_on_the_ring_and_the_grid():
    ring = ring_centers(8, radius=2.0)
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    grid = grid_centers(5, spacing=2.0)
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_ring_samples_cover_all_eight_modes():
    samples = ring_of_gaussians(2500, generator=seeded())
    result = mode_coverage(samples, ring_centers(), std=0.02)
    assert result["modes_covered"] == 8 and result["num_modes"] == 8
    # A 2-D Gaussian puts 1 - exp(-9/2) = 98.9% of its mass within 3 std.
    assert result["high_quality_share"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert sum(result["samples_per_mode"]) <= 2500


def test_collapsed_samples_cover_one_mode():
    collapsed = ring_centers()[3] + 0.02 * torch.randn(2500, 2, generator=seeded())
    result = mode_coverage(collapsed, ring_centers(), std=0.02)
    assert result["modes_covered"] == 1
    assert result["samples_per_mode"][3] == max(result["samples_per_mode"])


def test_grid_samples_cover_all_25_modes_and_noise_is_low_quality():
    grid = grid_of_gaussians(2500, generator=seeded())
    assert mode_coverage(grid, grid_centers(), std=0.05)["modes_covered"] == 25
    noise = torch.rand(2500, 2, generator=seeded()) * 10 - 5
    assert mode_coverage(noise, grid_centers(), std=0.05)["high_quality_share"] < 0.1


def test_stray_samples_do_not_cover_a_mode():
    samples = torch.cat([ring_centers()[0].expand(2490, 2), ring_centers()[1].expand(10, 2)])
    assert mode_coverage(samples, ring_centers(), std=0.02)["modes_covered"] == 1  # 10 < 20 of 2,500


def test_samples_are_reproducible_with_a_seed():
    assert torch.equal(ring_of_gaussians(100, generator=seeded(5)), ring_of_gaussians(100, generator=seeded(5)))
    assert not torch.equal(ring_of_gaussians(100, generator=seeded(5)), ring_of_gaussians(100, generator=seeded(6)))


def test_mode_coverage_accepts_numpy_and_rejects_wrong_shapes():
    samples = ring_of_gaussians(500, generator=seeded()).numpy()
    assert mode_coverage(samples, ring_centers().numpy(), std=0.02)["modes_covered"] == 8
    with pytest.raises(UserError, match=r"\(N, 2\)"):
        mode_coverage(np.zeros((10, 3)), ring_centers(), std=0.02)
