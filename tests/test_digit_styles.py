import numpy as np
import pytest
import torch

from ganzoo.data.digit_styles import centered_strokes, make_digit_styles, render_a, render_b
from ganzoo.data.digits import load_digits
from ganzoo.errors import UserError
from ganzoo.metrics.translation import translation_scores


@pytest.fixture(scope="module")
def styles():
    return make_digit_styles(size=32, seed=0, test_count=200)


@pytest.fixture(scope="module")
def source_index():
    """Maps each rendered image (in either style) back to the index of its source digit."""
    images, _ = load_digits()
    strokes = centered_strokes(images, 32)
    lookup = {}
    for style, rendered in (("a", render_a(strokes)), ("b", render_b(strokes))):
        for index, image in enumerate(rendered):
            lookup.setdefault((style, image.tobytes()), []).append(index)
    return lambda style, image: lookup[(style, image.tobytes())]


def to_model_range(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_shapes_and_dtypes(styles):
    assert styles.train_a.shape == (2400, 32, 32, 3)
    assert styles.train_b.shape == (2400, 32, 32, 3)
    assert styles.test_a.shape == styles.test_b.shape == (200, 32, 32, 3)
    for array in (styles.train_a, styles.train_b, styles.test_a, styles.test_b):
        assert array.dtype == np.uint8


def test_other_size_and_test_count():
    small = make_digit_styles(size=20, seed=3, test_count=10)
    assert small.test_a.shape == small.test_b.shape == (10, 20, 20, 3)
    assert small.train_a.shape == small.train_b.shape == (2495, 20, 20, 3)


def test_deterministic_for_a_seed(styles):
    again = make_digit_styles(size=32, seed=0, test_count=200)
    other = make_digit_styles(size=32, seed=1, test_count=200)
    for field in ("train_a", "train_b", "test_a", "test_b"):
        assert np.array_equal(getattr(styles, field), getattr(again, field))
    assert not np.array_equal(styles.test_a, other.test_a)


def test_splits_use_disjoint_digits_and_test_pairs_match(styles, source_index):
    def sources(style, images):
        return {index for image in images for index in source_index(style, image)}

    train_a, train_b = sources("a", styles.train_a), sources("b", styles.train_b)
    test = sources("a", styles.test_a)
    assert not train_a & train_b
    assert not test & (train_a | train_b)
    for image_a, image_b in zip(styles.test_a, styles.test_b):
        assert set(source_index("a", image_a)) & set(source_index("b", image_b))


def test_styles_differ_clearly(styles):
    mean_a = styles.train_a.reshape(-1, 3).mean(axis=0)
    mean_b = styles.train_b.reshape(-1, 3).mean(axis=0)
    assert np.linalg.norm(mean_a - mean_b) > 150
    # B's strokes are dilated: more of each image is covered by ink than in A.
    ink_a = (styles.test_a.mean(axis=-1) > 128).mean()
    ink_b = (styles.test_b[..., 2] < 150).mean()
    assert ink_b > 1.5 * ink_a


def test_b_is_not_a_per_pixel_affine_map_of_a(styles):
    a = styles.test_a.reshape(-1, 3).astype(np.float64)
    b = styles.test_b.reshape(-1, 3).astype(np.float64)
    design = np.hstack([a, np.ones((len(a), 1))])
    fit, *_ = np.linalg.lstsq(design, b, rcond=None)
    best = np.clip(design @ fit, 0, 255).astype(np.uint8).reshape(styles.test_b.shape)
    scores = translation_scores(to_model_range(best), to_model_range(styles.test_b))
    assert scores["psnr"] < 20


def test_translation_scores_separate_styles_from_identity(styles):
    a, b = to_model_range(styles.test_a), to_model_range(styles.test_b)
    across = translation_scores(a, b)
    same = translation_scores(b, b)
    assert across["psnr"] < 10 and across["ssim"] < 0.3
    assert same["psnr"] >= 99 and same["ssim"] == pytest.approx(1.0, abs=1e-4)


def test_translation_scores_average_per_image():
    target = torch.zeros(2, 3, 16, 16)
    pred = target.clone()
    pred[1] += 0.2  # [0, 1] error 0.1: PSNR 20 dB for this image
    pred[0] += 0.02  # 40 dB
    assert translation_scores(pred, target)["psnr"] == pytest.approx(30.0, abs=1e-3)
    with pytest.raises(ValueError, match="one shape"):
        translation_scores(pred, target[:1])


def test_rejects_bad_arguments():
    with pytest.raises(UserError, match="at least 16"):
        make_digit_styles(size=8)
    with pytest.raises(UserError, match="test_count"):
        make_digit_styles(test_count=0)
