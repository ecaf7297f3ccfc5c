"""Adversarial losses and penalties; device-resident batches."""

import math

import pytest
import torch

from ganzoo.data.catalog import digits_imageset
from ganzoo.data.sources import BatchStream, TensorSource
from ganzoo.losses import LOSSES, gradient_penalty, r1_penalty


def test_loss_values_on_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731 - softplus
    bce_d = (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2
    assert LOSSES["minimax"].d(real, fake, 1.0).item() == pytest.approx(bce_d)
    assert LOSSES["minimax"].g(fake).item() == pytest.approx(-(sp(-1) + sp(1)) / 2)  # mean log(1 - D)
    assert LOSSES["nonsaturating"].g(fake).item() == pytest.approx((sp(1) + sp(-1)) / 2)  # -mean log D
    assert LOSSES["lsgan"].d(real, fake, 1.0).item() == pytest.approx((1 + 1) / 2 + (1 + 1) / 2)
    assert LOSSES["lsgan"].g(fake).item() == pytest.approx((4 + 0) / 2)
    assert LOSSES["hinge"].d(real, fake, 1.0).item() == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert LOSSES["wgan"].d(real, fake, 1.0).item() == pytest.approx(0 - 1)
    assert LOSSES["wgan"].g(fake).item() == pytest.approx(0)


def test_label_smoothing_changes_the_real_target():
    real, fake = torch.tensor([3.0]), torch.tensor([-3.0])
    assert LOSSES["nonsaturating"].d(real, fake, 0.9) > LOSSES["nonsaturating"].d(real, fake, 1.0)
    assert LOSSES["lsgan"].d(torch.tensor([0.9]), torch.tensor([0.0]), 0.9).item() == pytest.approx(0)


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0] = 1.0  # D(x) = x[0,0,0,0]: gradient norm exactly 1 everywhere
    d = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(d, real, fake).item() == pytest.approx(0, abs=1e-10)
    assert gradient_penalty(lambda x: 3 * d(x), real, fake).item() == pytest.approx(4.0)
    assert r1_penalty(lambda x: 3 * d(x), real).item() == pytest.approx(9.0)


def test_epochs_are_permutations_and_resume_exactly():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    source = TensorSource(images, torch.arange(10), torch.device("cpu"), seed=3)
    seen = [source.next(4)[1] for _ in range(5)]  # 20 items = two epochs
    flat = torch.cat(seen)
    assert sorted(flat[:10].tolist()) == list(range(10)) and sorted(flat[10:].tolist()) == list(range(10))
    assert flat[:10].tolist() != flat[10:].tolist()  # a new permutation each epoch
    replay = TensorSource(images, torch.arange(10), torch.device("cpu"), seed=3)
    replay.next(4)
    state = replay.state_dict()
    resumed = TensorSource(images, torch.arange(10), torch.device("cpu"), seed=3)
    resumed.load_state_dict(state)
    assert torch.cat([resumed.next(4)[1] for _ in range(4)]).tolist() == flat[4:].tolist()


def test_ranks_take_disjoint_shares_of_one_permutation():
    images = torch.zeros(8, 1, 2, 2, dtype=torch.uint8)
    shares = [TensorSource(images, torch.arange(8), torch.device("cpu"), 0, rank=r, world_size=2).next(4)[1] for r in (0, 1)]
    assert sorted(torch.cat(shares).tolist()) == list(range(8))


def test_images_are_converted_to_minus_one_one_and_flipped():
    images = torch.tensor([[0, 255]], dtype=torch.uint8).view(1, 1, 1, 2).expand(64, 1, 1, 2).contiguous()
    out, _, _ = TensorSource(images, None, torch.device("cpu"), seed=0, hflip=True).next(64)
    left = out[:, 0, 0, 0]
    assert set(left.tolist()) == {-1.0, 1.0}  # some flipped, some not
    assert out.min() == -1 and out.max() == 1


def test_unpaired_stream_and_resize():
    a = TensorSource(torch.zeros(6, 3, 8, 8, dtype=torch.uint8), None, torch.device("cpu"), 0)
    b = TensorSource(torch.full((4, 3, 8, 8), 255, dtype=torch.uint8), None, torch.device("cpu"), 1)
    stream = BatchStream(a, b)
    batch = stream.next(2, resolution=4)
    assert batch.images.shape == (2, 3, 4, 4) and batch.images_b.shape == (2, 3, 4, 4)
    assert batch.images.max() == -1 and batch.images_b.min() == 1
    assert stream.epoch_length() == 6


def test_builtin_digits():
    digits = digits_imageset(32, 1)
    assert digits.images.shape == (5000, 1, 32, 32) and digits.images.dtype == torch.uint8
    assert torch.bincount(digits.labels).tolist() == [500] * 10
    assert digits.class_names[7] == "seven"
    assert digits.images[:, :, :2].max() == 0  # the 2-pixel border of 28 -> 32
    assert digits_imageset(64, 3).images.shape == (5000, 3, 64, 64)
