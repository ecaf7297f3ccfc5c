import time

import numpy as np
import pytest
import torch

from ganzoo.errors import UserError
from ganzoo.metrics.classifier import (
    DigitFeatures,
    classify,
    digit_quality,
    digits_tensor,
    prepare,
    split,
    train_digit_classifier,
    weights_file,
)
from ganzoo.metrics.evaluate import MetricOptions, evaluate
from ganzoo.metrics.fid import feature_stats, frechet_distance


def test_prepare_frames_digits_for_the_classifier():
    digits = torch.full((2, 1, 28, 28), 0.5)
    padded = prepare(digits, 32)
    assert padded.shape == (2, 1, 32, 32)
    assert (padded[..., :2, :] == -1).all() and (padded[..., 2:30, 2:30] == 0.5).all()
    assert prepare(torch.zeros(2, 3, 64, 64), 32).shape == (2, 1, 32, 32)
    assert prepare(torch.zeros(2, 1, 28, 28), 28).shape == (2, 1, 28, 28)


def test_split_is_shuffled_disjoint_and_seeded():
    train, held = split(0, 5000)
    assert len(train) == 4500 and len(held) == 500
    assert len(np.union1d(train, held)) == 5000
    _, labels = digits_tensor()
    assert len(torch.unique(labels[held])) == 10  # the file is class-sorted; the split must not be
    assert np.array_equal(split(0, 5000)[1], held) and not np.array_equal(split(1, 5000)[1], held)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained classifier for this module, in a private cache."""
    cache = tmp_path_factory.mktemp("ganzoo-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANZOO_CACHE", str(cache))
        started = time.perf_counter()
        model, accuracy = train_digit_classifier(seed=0)
        seconds = time.perf_counter() - started
    return cache, model, accuracy, seconds


@pytest.fixture
def cached(trained, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(trained[0]))
    return trained


@pytest.fixture(scope="module")
def held_out():
    images, labels = digits_tensor()
    _, held = split(0, len(images))
    return images[held], labels[held]


@pytest.mark.slow
def test_classifier_reaches_97_percent_on_held_out_digits(cached, held_out):
    _, model, accuracy, seconds = cached
    print(f"trained in {seconds:.1f} s, held-out accuracy {accuracy:.3f}")
    assert accuracy >= 0.97
    images, labels = held_out
    assert (classify(model, images) == labels).double().mean().item() == pytest.approx(accuracy)


@pytest.mark.slow
def test_trained_weights_come_back_from_the_cache(cached, held_out):
    _, model, accuracy, _ = cached
    path = weights_file(0, 32, 5)
    assert path.suffix == ".safetensors" and path.is_file() and "seed0-size32" in path.name
    started = time.perf_counter()
    again, same_accuracy = train_digit_classifier(seed=0)
    assert time.perf_counter() - started < 2.0
    assert same_accuracy == accuracy
    images = held_out[0][:50]
    assert torch.equal(again(prepare(images, 32)), model(prepare(images, 32)))


@pytest.mark.slow
def test_digit_features_rank_real_digits_above_noise(cached):
    net = DigitFeatures()
    images, _ = digits_tensor()
    order = torch.from_numpy(np.random.default_rng(1).permutation(len(images)))
    half_a, half_b = net(images[order[:1000]]).double().numpy(), net(images[order[1000:2000]]).double().numpy()
    noise = net(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1).double().numpy()
    assert half_a.shape == (1000, 128)
    real_vs_real = frechet_distance(*feature_stats(half_a), *feature_stats(half_b))
    assert real_vs_real < 0.05 * frechet_distance(*feature_stats(half_a), *feature_stats(noise))
    assert net.resize == "pad-2" and net.weights_hash and net.held_out_accuracy >= 0.97


@pytest.mark.slow
def test_digit_quality_of_real_digits(cached, held_out):
    images, labels = held_out
    quality = digit_quality(images, requested_labels=labels)
    assert quality["classes_covered"] == 10 and sum(quality["class_histogram"]) == 500
    assert quality["mean_confidence"] > 0.9 and quality["confident_share"] > 0.85
    assert quality["requested_class_share"] >= 0.97
    assert digit_quality(images, requested_labels=(labels + 1) % 10)["requested_class_share"] < 0.05
    only_ones = digit_quality(images[labels == 1])
    assert only_ones["classes_covered"] <= 2 and only_ones["class_histogram"][1] >= 0.95 * (labels == 1).sum()
    with pytest.raises(UserError, match="one label per image"):
        digit_quality(images, requested_labels=labels[:10])


@pytest.mark.slow
def test_evaluate_reports_digit_quality(cached, held_out, tmp_path):
    images, _ = held_out

    def sample(n, generator):
        return images[torch.randint(len(images), (n,), generator=generator)]

    result = evaluate(sample, images, ["digit_quality"], DigitFeatures(), num_samples=200, cache_dir=tmp_path,
                      options=MetricOptions(batch_size=100))
    assert result["metrics"]["digit_quality"]["classes_covered"] == 10
    assert result["metrics"]["digit_quality"]["num_samples"] == 200
