import numpy as np
import pytest
import torch

from ganzoo.data.toys import ring_centers, ring_of_gaussians
from ganzoo.errors import UserError
from ganzoo.metrics.neighbours import nearest, within_any_radius
from ganzoo.metrics.precision_recall import knn_radii, precision_recall


def points(n, dim=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_nearest_matches_brute_force_across_chunks():
    queries, refs = points(70, seed=1), points(90, seed=2)
    distances, indices = nearest(queries, refs, k=3, chunk=16)
    brute = np.linalg.norm(queries[:, None] - refs[None], axis=2)
    assert np.array_equal(indices, np.argsort(brute, axis=1)[:, :3])
    assert np.allclose(distances, np.sort(brute, axis=1)[:, :3], atol=1e-5)


def test_nearest_can_exclude_each_query_itself():
    x = points(50)
    distances, indices = nearest(x, x, k=1, exclude=np.arange(50))
    assert (indices[:, 0] != np.arange(50)).all() and (distances > 0).all()


def test_knn_radii_are_distances_to_the_kth_other_sample():
    x = points(40, seed=3)
    brute = np.sort(np.linalg.norm(x[:, None] - x[None], axis=2), axis=1)  # column 0 is the sample itself
    assert np.allclose(knn_radii(x, k=3), brute[:, 3], atol=1e-5)


def test_within_any_radius():
    refs = np.array([[0.0, 0.0], [10.0, 0.0]])
    hits = within_any_radius(np.array([[0.5, 0.0], [9.0, 0.0], [5.0, 0.0]]), refs, radii=np.array([1.0, 2.0]))
    assert hits.tolist() == [True, True, False]


def test_identical_sets_have_full_precision_and_recall():
    x = points(300)
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}


def test_disjoint_sets_have_none():
    x = points(300)
    assert precision_recall(x, x + 100.0) == {"precision": 0.0, "recall": 0.0}


def test_mode_collapse_keeps_precision_and_loses_recall():
    generator = torch.Generator().manual_seed(0)
    real = ring_of_gaussians(800, generator=generator).numpy()
    collapsed = (ring_centers()[0] + 0.02 * torch.randn(400, 2, generator=generator)).numpy()
    scores = precision_recall(real, collapsed)
    assert scores["precision"] > 0.95
    assert 0.05 < scores["recall"] < 0.25  # about one mode in eight


def test_precision_recall_errors():
    with pytest.raises(UserError, match="one D"):
        precision_recall(points(10, dim=2), points(10, dim=3))
    with pytest.raises(UserError, match="more than 3 samples"):
        precision_recall(points(3), points(10))
