"""Evaluation streams: generated images are embedded batch by batch and dropped, and the scores
are the ones the whole-array computation gives."""

import gc
import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo.data.image_batches import ImageBatches
from ganzoo.errors import UserError
from ganzoo.metrics.evaluate import MetricOptions, evaluate, reference_key, reference_stats
from ganzoo.metrics.features import embed
from ganzoo.metrics.fid import feature_stats, frechet_distance, inception_score, kid
from ganzoo.metrics.memorization import memorization_summary
from ganzoo.metrics.precision_recall import precision_recall
from ganzoo.metrics.streams import KeptRows, RunningMoments, SampleBatch, sample_batches

OPTIONS = MetricOptions(batch_size=64, kid_subsets=10, kid_subset_size=100, is_splits=5)
ALL = ["fid", "kid", "is", "precision_recall", "memorization"]


class PooledPixels:
    """A cheap feature network: 4x4-pooled pixels, and a fixed random linear classifier."""

    name, weights_hash, resize = "pooled-pixels", "seed0", "avgpool-4"

    def __init__(self):
        self.classifier = torch.randn(48, 10, generator=torch.Generator().manual_seed(0))

    def __call__(self, images):
        return F.avg_pool2d(images, 4).flatten(1)

    def logits(self, images):
        return 3 * self(images) @ self.classifier


def blobs(n, generator):
    """Smooth random RGB 16x16 images: low-frequency noise, upsampled."""
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=generator) * 2 - 1, size=16, mode="bilinear")


def whole_array_scores(sample_fn, real, net, num_samples, seed, options):
    """The computation evaluate() did before it streamed: every image first, then every score."""
    generator = torch.Generator().manual_seed(seed)
    starts = range(0, num_samples, options.batch_size)
    images = torch.cat([sample_fn(min(options.batch_size, num_samples - s), generator) for s in starts])
    fake = embed(net, images, options.batch_size).astype(np.float32)
    ref = embed(net, real, options.batch_size).astype(np.float32)
    mu, sigma = feature_stats(ref)
    kid_mean, kid_std = kid(fake, ref, options.kid_subsets, options.kid_subset_size, seed)
    is_mean, is_std = inception_score(embed(net.logits, images, options.batch_size), options.is_splits)
    return {
        "fid": frechet_distance(*feature_stats(fake), mu, sigma),
        "kid": (kid_mean, kid_std),
        "is": (is_mean, is_std),
        "precision_recall": precision_recall(ref, fake, options.nearest_k),
        "memorization": memorization_summary(fake, ref, seed=seed),
    }


@pytest.mark.parametrize("num_samples", [300, 301])  # whole batches, and a short last batch
def test_streamed_scores_match_the_whole_array_computation(tmp_path, num_samples):
    real = blobs(400, torch.Generator().manual_seed(1))
    net = PooledPixels()
    streamed = evaluate(blobs, real, ALL, net, num_samples, seed=3, cache_dir=tmp_path, options=OPTIONS)["metrics"]
    whole = whole_array_scores(blobs, real, net, num_samples, 3, OPTIONS)
    assert streamed["fid"] == pytest.approx(whole["fid"], rel=1e-9, abs=1e-12)
    assert (streamed["kid"]["mean"], streamed["kid"]["std"]) == pytest.approx(whole["kid"], rel=1e-9)
    assert (streamed["is"]["mean"], streamed["is"]["std"]) == pytest.approx(whole["is"], rel=1e-9)
    pr = streamed["precision_recall"]
    assert (pr["precision"], pr["recall"]) == (whole["precision_recall"]["precision"], whole["precision_recall"]["recall"])
    memo, whole_memo = streamed["memorization"], whole["memorization"]
    for key in ("min_distance", "median_distance", "train_median_distance", "median_ratio"):
        assert memo[key] == pytest.approx(whole_memo[key], rel=1e-6), key
    assert memo["num_generated"] == num_samples and memo["space"] == "pooled-pixels"


def test_generated_images_are_dropped_after_their_batch(tmp_path):
    """When the sampler is asked for a batch, at most the previous batch is still alive (holding
    every batch, as evaluate() once did before embedding, would show 9 at the last call)."""
    made: set[int] = set()  # storage addresses of every batch the sampler returned
    alive_at_calls = []

    def live_batches() -> int:
        # By storage: detach() and views make new tensor objects. type(), not isinstance(): the
        # latter trips deprecation warnings of lazy torch objects. Tensors die by refcount, no gc.
        tensors = (t for t in gc.get_objects() if type(t) is torch.Tensor)
        return len({t.untyped_storage().data_ptr() for t in tensors} & made)

    def sample(n, generator):
        alive_at_calls.append(live_batches())
        images = blobs(n, generator)
        made.add(images.untyped_storage().data_ptr())
        return images

    real = blobs(200, torch.Generator().manual_seed(1))
    evaluate(sample, real, ALL, PooledPixels(), 10 * 32, cache_dir=tmp_path, options=MetricOptions(batch_size=32))
    assert len(alive_at_calls) == 10 and alive_at_calls[0] == 0 and max(alive_at_calls) == 1


def test_running_moments_match_numpy_for_uneven_batches_far_from_the_origin():
    rows = np.random.default_rng(0).normal(1e4, 1.0, (1001, 6))  # large mean: a naive sum of squares would cancel
    moments = RunningMoments()
    for part in np.split(rows, [1, 250, 251, 700]):
        moments.update(part)
    mean, cov = moments.compute()
    assert np.allclose(mean, rows.mean(axis=0), rtol=1e-14)
    assert np.allclose(cov, np.cov(rows, rowvar=False), rtol=1e-9, atol=1e-12)
    one = RunningMoments()
    one.update(rows[:1])
    with pytest.raises(UserError, match="at least 2"):
        one.compute()


def test_kept_rows_fill_one_array_in_order():
    kept = KeptRows(5)
    kept.update(np.arange(6, dtype=np.float64).reshape(3, 2))
    kept.update(np.arange(6, 10, dtype=np.float64).reshape(2, 2))
    assert kept.compute().dtype == np.float32 and kept.compute().ravel().tolist() == list(range(10))
    with pytest.raises(UserError, match="no samples"):
        KeptRows(3).compute()


def test_a_batch_embeds_once_however_many_metrics_read_it():
    calls = []

    class Counting(PooledPixels):
        def __call__(self, images):
            calls.append(len(images))
            return super().__call__(images)

    batch = SampleBatch(blobs(8, torch.Generator().manual_seed(0)), Counting())
    assert batch.features is batch.features and batch.features.shape == (8, 48)
    assert calls == [8]


def test_sample_batches_check_what_the_sampler_returns():
    def wrong_count(n, generator):
        return blobs(n + 1, generator)

    with pytest.raises(UserError, match="must return 32 images"):
        next(sample_batches(wrong_count, 100, 0, 32))
    with pytest.raises(UserError, match="NaN"):
        next(sample_batches(lambda n, g: blobs(n, g) * float("nan"), 10, 0, 32))
    sizes = [len(b) for b in sample_batches(blobs, 70, 0, 32)]
    assert sizes == [32, 32, 6]


def test_image_batches_deliver_a_cropped_subset_in_model_units():
    images = torch.arange(5 * 3 * 6 * 6, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(5, 3, 6, 6)
    order = torch.tensor([4, 0, 2])
    batches = ImageBatches(images, order, crop=4)
    assert len(batches) == 3 and batches.image_shape == (3, 4, 4)
    expected = images[order][..., 1:5, 1:5].float() / 127.5 - 1
    assert torch.equal(torch.cat(list(batches.batches(2))), expected)
    assert torch.equal(batches.take(torch.tensor([[2], [0]])), expected[[2, 0]])
    floats = torch.rand(4, 1, 3, 3)
    assert torch.equal(torch.cat(list(ImageBatches(floats).batches(3))), floats)  # already in model units


def test_reference_key_is_the_digest_of_the_whole_float_tensor(tmp_path):
    """Hashing batch by batch gives the key the whole-tensor hash gave, so cached statistics stay valid."""
    real = blobs(130, torch.Generator().manual_seed(2))
    net = PooledPixels()
    facts = {
        "feature_net": net.name, "weights_hash": net.weights_hash, "resize": net.resize, "reference": "blobs",
        "num_real": 130, "shape": [3, 16, 16], "content_sha256": hashlib.sha256(real.numpy().tobytes()).hexdigest(),
    }
    old_key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    assert reference_key(ImageBatches(real), net, "blobs", batch_size=50) == old_key
    stats = reference_stats(real, net, "blobs", tmp_path, batch_size=50)
    assert stats.path.name == f"{old_key[:32]}.npz"
    assert np.array_equal(stats.features, embed(net, real).astype(np.float32))


def test_batch_sizes_must_be_positive(tmp_path):
    real = blobs(10, torch.Generator().manual_seed(1))
    for options in (MetricOptions(batch_size=0), MetricOptions(feature_batch_size=0)):
        with pytest.raises(UserError, match="batch sizes must be at least 1"):
            evaluate(blobs, real, ["fid"], PooledPixels(), 10, cache_dir=tmp_path, options=options)


def test_the_feature_network_sees_chunks_of_the_sampled_batch(tmp_path):
    seen = []

    class Recording(PooledPixels):
        def __call__(self, images):
            seen.append(len(images))
            return super().__call__(images)

    real = blobs(30, torch.Generator().manual_seed(1))
    options = MetricOptions(batch_size=25, feature_batch_size=10)
    evaluate(blobs, real, ["fid"], Recording(), 50, cache_dir=tmp_path, options=options)
    assert seen == [10, 10, 10] + [10, 10, 5] * 2  # the 30 real images, then two sampled batches of 25
