import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from ganzoo.errors import UserError
from ganzoo.metrics.fid import feature_stats, frechet_distance, inception_score, kid, polynomial_kernel


def gaussian(n, dim=8, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def test_fid_of_a_set_against_itself_is_zero():
    mu, sigma = feature_stats(gaussian(400, dim=32))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_the_closed_form_and_scipy_sqrtm():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, 1.0])
    # Diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    assert frechet_distance(mu1, np.diag([1.0, 4.0]), mu2, np.diag([4.0, 9.0])) == pytest.approx(4.0 + 1.0 + 1.0)
    mu_a, s_a = feature_stats(gaussian(300, seed=1))
    mu_b, s_b = feature_stats(gaussian(300, shift=0.5, seed=2) * 1.5)
    reference = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance(mu_a, s_a, mu_b, s_b) == pytest.approx(reference, rel=1e-8)


def test_fid_survives_singular_covariances():
    few = gaussian(5, dim=64)  # 5 samples in 64 dimensions: rank-4 covariance
    mu, sigma = feature_stats(few)
    value = frechet_distance(mu, sigma, *feature_stats(gaussian(5, dim=64, seed=3)))
    assert np.isfinite(value) and value > 0


def test_fid_ranks_two_halves_of_the_digits_below_digits_against_noise():
    from ganzoo.data.digits import load_digits

    images, _ = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    x = torch.from_numpy(images[order].astype(np.float32) / 127.5 - 1).unsqueeze(1)
    noise = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def pooled(batch):  # 7x7 average-pooled pixels: a cheap 49-D feature space
        return F.avg_pool2d(batch, 4).flatten(1).double().numpy()

    half_a, half_b = feature_stats(pooled(x[:2500])), feature_stats(pooled(x[2500:]))
    real_vs_real = frechet_distance(*half_a, *half_b)
    real_vs_noise = frechet_distance(*half_a, *feature_stats(pooled(noise)))
    assert real_vs_real < 0.02 * real_vs_noise


def test_fid_rejects_statistics_of_different_sizes():
    with pytest.raises(UserError, match="one feature network"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_kid_is_unbiased_on_small_subsets():
    a, b = gaussian(2000, seed=10), gaussian(2000, seed=11)
    mean, std = kid(a, b, subsets=400, subset_size=10, seed=0)
    assert abs(mean) < 3 * std / np.sqrt(400) + 0.01
    # The biased (V-statistic) estimate keeps the diagonal k(x, x) terms and sits well above 0.
    rng = np.random.default_rng(0)
    biased = []
    for _ in range(400):
        x, y = a[rng.choice(2000, 10, replace=False)], b[rng.choice(2000, 10, replace=False)]
        biased.append(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean() - 2 * polynomial_kernel(x, y).mean())
    assert np.mean(biased) > 0.5 > 5 * abs(mean)


def test_kid_separates_distributions_and_is_reproducible():
    a, b = gaussian(300, seed=1), gaussian(300, shift=1.0, seed=2)
    same = kid(a, gaussian(300, seed=3), subsets=20, subset_size=100, seed=0)[0]
    shifted = kid(a, b, subsets=20, subset_size=100, seed=0)
    assert shifted[0] > 10 * abs(same) and shifted[0] > 0.1
    assert kid(a, b, subsets=20, subset_size=100, seed=0) == shifted
    assert kid(a, b, subsets=20, subset_size=100, seed=1) != shifted


def test_kid_shrinks_subsets_to_fit_and_rejects_mismatched_dimensions():
    mean, _ = kid(gaussian(50), gaussian(60, seed=1), subsets=5, subset_size=1000)
    assert np.isfinite(mean)
    with pytest.raises(UserError, match="one D"):
        kid(gaussian(50, dim=3), gaussian(50, dim=4))


def test_inception_score_bounds():
    assert inception_score(np.zeros((100, 10)), splits=5) == pytest.approx((1.0, 0.0))
    confident_spread = np.tile(np.eye(10) * 50.0, (20, 1))
    mean, std = inception_score(confident_spread, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    collapsed = np.tile(np.eye(10)[0] * 50.0, (200, 1))
    assert inception_score(collapsed, splits=10)[0] == pytest.approx(1.0, abs=1e-6)


def test_inception_score_needs_enough_samples_per_split():
    with pytest.raises(UserError, match="splits"):
        inception_score(np.zeros((5, 10)), splits=10)
