"""DiffAugment and ADA with an image-conditioned discriminator: the condition and the judged image of
each pair receive the same shift and the same cutout, so D never sees a misaligned pair; colour
transforms change the judged image only.

Conditions here have no zero pixel, so the zeros after augmentation are exactly the holes the
geometric transforms made (pixels shifted in from the border, the cutout square). A pair is aligned
when its two images have their holes in the same places; augmenting the two independently puts
them elsewhere, and these tests fail.
"""

from __future__ import annotations

import pytest
import torch

from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.augment import Augmenter
from ganzoo.engine.options import TrainConfig
from ganzoo.plugin import Batch, DataInfo, Stage
from ganzoo_plugins.pix2pix import Pix2Pix, Pix2PixConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def holes(images: torch.Tensor) -> torch.Tensor:
    """Where an image is zero in every channel, per sample: (N, H, W)."""
    return (images == 0).all(dim=1)


def no_zeros(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1


def with_ada_p(augmenter: Augmenter, p: float) -> Augmenter:
    augmenter.load_state_dict({**augmenter.state_dict(), "p": p})
    return augmenter


@pytest.mark.parametrize(
    "augmenter",
    [
        Augmenter("translation,cutout"),
        Augmenter("color,translation,cutout"),
        with_ada_p(Augmenter("", ada_target=0.6), 0.5),  # ADA: each transform for half the pairs
    ],
    ids=["diffaugment-geometric", "diffaugment-all", "ada-p0.5"],
)
def test_condition_and_image_of_a_pair_get_the_same_shift_and_cutout(augmenter):
    condition = no_zeros(64, 3, 16, 16)
    torch.manual_seed(1)
    image, cond = augmenter.augment(condition.clone(), condition)
    assert torch.equal(holes(image), holes(cond))
    assert holes(cond).any(), "the geometric transforms must have made holes"
    assert holes(cond).flatten(1).any(1).float().mean() < 1 or augmenter.p == 1  # ADA leaves some pairs alone
    # Colour moves pixel values of the judged image; the condition's pixels are only moved or zeroed.
    kept = set(condition.unique().tolist()) | {0.0}
    assert set(cond.unique().tolist()) <= kept
    if "color" in augmenter.policies:
        assert not torch.equal(image, cond)
    else:
        assert torch.equal(image, cond)


def test_pairs_are_aligned_per_sample_not_only_per_batch():
    condition = no_zeros(32, 1, 16, 16)
    torch.manual_seed(2)
    image, cond = Augmenter("translation,cutout").augment(no_zeros(32, 3, 16, 16, seed=9), condition)
    masks = holes(cond)
    assert len({m.flatten().nonzero().flatten().tolist().__repr__() for m in masks}) > 1  # shifts differ per pair
    assert torch.equal(holes(image), masks)


class SpyD(torch.nn.Module):
    """A discriminator that remembers what it was shown."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 1, 3, padding=1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.conv(x)


@pytest.mark.parametrize(
    "settings",
    [{"diffaugment": "color,translation,cutout"}, {"ada_target": 0.6}],
    ids=["diffaugment", "ada"],
)
def test_pix2pix_discriminator_sees_aligned_pairs_under_augmentation(settings):
    plugin = Pix2Pix(Pix2PixConfig(num_downs=5, ngf=4, ndf=4, n_layers_d=2),
                     DataInfo(channels=3, size=32, kind="paired"))
    nets = plugin.build()
    nets["D"] = SpyD(6)
    cfg = TrainConfig(loss="nonsaturating", **settings)
    augmenter = Augmenter(cfg.diffaugment, cfg.ada_target, cfg.ada_kimg, cfg.batch_size)  # as the engine makes it
    if augmenter.ada_target:
        with_ada_p(augmenter, 0.5)
    adversary = Adversary(cfg, augmenter)
    ctx = EngineStepContext(0, 0, torch.device("cpu"), Stage(), adversary)
    real_a = no_zeros(8, 3, 32, 32) * 2 - 1  # in [-0.8, 0.8], never exactly 0
    batch = Batch(images=real_a, images_b=real_a.clone())  # a real pair whose halves start out identical
    torch.manual_seed(3)
    plugin.generator_loss(nets, batch, ctx)
    plugin.discriminator_loss(nets, batch, ctx)
    seen = nets["D"].seen
    assert len(seen) == 3  # G's fake, then D's real and fake
    for shown in seen:
        assert torch.equal(holes(shown[:, :3]), holes(shown[:, 3:])), "condition and image were augmented apart"
    assert any(holes(shown[:, :3]).any() for shown in seen)
    real_seen = seen[1]
    geometric_only = "color" not in augmenter.policies
    assert torch.equal(real_seen[:, :3], real_seen[:, 3:]) == geometric_only
