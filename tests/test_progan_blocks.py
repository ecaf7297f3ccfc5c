"""Progressive GAN building blocks: layers, growing G and D, and the growth schedule."""

import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.errors import UserError
from ganzoo_plugins.progan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
)
from ganzoo_plugins.progan.networks import (
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    blend_real,
    feature_maps,
)
from ganzoo_plugins.progan.schedule import Growth, GrowthSchedule

LATENT = 8
TINY = dict(fmap_base=32, fmap_max=8)
RESOLUTIONS = [4, 8, 16, 32]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_generator(max_resolution=32, channels=3):
    return ProgressiveGenerator(LATENT, max_resolution, channels, **TINY).eval()


def tiny_discriminator(max_resolution=32, channels=3):
    return ProgressiveDiscriminator(max_resolution, channels, **TINY).eval()


# --- equalized learning rate ---------------------------------------------------------------


def test_equalized_conv_scale_init_and_effective_weight():
    layer = EqualizedConv2d(64, 32, 3, padding=1)
    assert layer.scale == pytest.approx(math.sqrt(2 / (64 * 9)))
    assert layer.weight.mean().item() == pytest.approx(0.0, abs=0.03)
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.03)
    assert torch.all(layer.bias == 0)

    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 64, 5, 5)
    expected = F.conv2d(x, layer.weight * layer.scale, layer.bias, padding=1)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape == (2, 32, 5, 5)


def test_equalized_linear_scale_gain_and_effective_weight():
    layer = EqualizedLinear(256, 128, gain=1.0)
    assert layer.scale == pytest.approx(1 / math.sqrt(256))
    assert EqualizedLinear(256, 4).scale == pytest.approx(math.sqrt(2 / 256))
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.03)
    assert torch.all(layer.bias == 0)

    x = torch.randn(3, 256)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight * layer.scale, layer.bias))


def test_equalized_layers_keep_activation_scale_with_he_gain():
    # The point of the runtime scale: unit-variance inputs give roughly unit second moment
    # after a ReLU-family layer, whatever the fan-in.
    for fan_in in (16, 512):
        layer = EqualizedConv2d(fan_in, 64, 1)
        out = F.relu(layer(torch.randn(8, fan_in, 8, 8)))
        assert out.square().mean().item() == pytest.approx(1.0, rel=0.2)


# --- pixel norm and minibatch stddev ------------------------------------------------------


def test_pixel_norm_gives_unit_rms_per_pixel():
    x = torch.randn(4, 16, 6, 6) * 7.0 + 3.0
    rms = PixelNorm()(x).square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones(4, 6, 6))


def manual_minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    groups = x.shape[0] // group
    values = torch.empty(x.shape[0])
    for g in range(groups):
        members = list(range(g, x.shape[0], groups))
        std = torch.sqrt(x[members].var(dim=0, unbiased=False) + 1e-8).mean()
        values[members] = std
    return values


@pytest.mark.parametrize(("batch", "group"), [(8, 4), (2, 2), (6, 6), (1, 1)])
def test_minibatch_stddev_matches_manual_computation(batch, group):
    x = torch.randn(batch, 5, 4, 4)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (batch, 6, 4, 4)
    torch.testing.assert_close(out[:, :5], x)
    feature = out[:, 5]
    # One constant map per sample.
    assert torch.all(feature == feature[:, :1, :1])
    torch.testing.assert_close(feature[:, 0, 0], manual_minibatch_std(x, group))


def test_minibatch_stddev_of_constant_batch_is_zero():
    x = torch.randn(1, 3, 4, 4).expand(8, -1, -1, -1)
    feature = MinibatchStdDev()(x)[:, -1]
    assert feature.abs().max().item() < 1e-3


# --- generator and discriminator -----------------------------------------------------------


def test_channel_widths_follow_paper_with_paper_settings():
    widths = [feature_maps(stage, 8192, 512) for stage in range(1, 10)]
    assert widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_generator_and_discriminator_shapes(channels, resolution, alpha):
    g = tiny_generator(channels=channels)
    d = tiny_discriminator(channels=channels)
    with torch.no_grad():
        images = g(torch.randn(4, LATENT), resolution, alpha)
        assert images.shape == (4, channels, resolution, resolution)
        assert torch.isfinite(images).all()
        logits = d(images, alpha)
    assert logits.shape == (4, 1)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("max_resolution", [4, 8, 16, 32, 64])
def test_any_power_of_two_max_resolution(max_resolution):
    g = tiny_generator(max_resolution, channels=1)
    d = tiny_discriminator(max_resolution, channels=1)
    assert g.resolutions[-1] == max_resolution and len(g.to_rgb) == len(d.from_rgb)
    with torch.no_grad():
        images = g(torch.randn(2, LATENT), max_resolution, 0.5)
        assert images.shape == (2, 1, max_resolution, max_resolution)
        assert d(images, 0.5).shape == (2, 1)


@pytest.mark.parametrize("bad", [0, 2, 12, 48])
def test_bad_max_resolution_is_a_user_error(bad):
    with pytest.raises(UserError, match="max_resolution"):
        ProgressiveGenerator(LATENT, bad, 3, **TINY)
    with pytest.raises(UserError, match="max_resolution"):
        ProgressiveDiscriminator(bad, 3, **TINY)


def test_too_few_feature_maps_is_a_user_error():
    with pytest.raises(UserError, match="fmap_base"):
        ProgressiveGenerator(LATENT, 64, 3, fmap_base=16, fmap_max=8)


def test_unavailable_resolution_or_alpha_is_a_user_error():
    g = tiny_generator(16)
    z = torch.randn(1, LATENT)
    for resolution in (2, 12, 32):
        with pytest.raises(UserError, match="resolution"):
            g(z, resolution, 1.0)
    with pytest.raises(UserError, match="alpha"):
        g(z, 8, 1.5)
    with pytest.raises(UserError, match="channel"):
        tiny_discriminator(16, channels=3)(torch.randn(1, 1, 8, 8))


def test_state_dict_is_built_for_every_resolution_up_front():
    g = tiny_generator()
    shapes = {k: v.shape for k, v in g.state_dict().items()}
    with torch.no_grad():
        for resolution in RESOLUTIONS:
            g(torch.randn(1, LATENT), resolution, 0.5)
    assert {k: v.shape for k, v in g.state_dict().items()} == shapes
    assert all(f"to_rgb.{i}.weight" in shapes for i in range(len(RESOLUTIONS)))


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_generator_alpha_one_ignores_previous_to_rgb(resolution):
    g = tiny_generator()
    level = RESOLUTIONS.index(resolution)
    z = torch.randn(3, LATENT)
    with torch.no_grad():
        before = g(z, resolution, 1.0)
        g.to_rgb[level - 1].weight.add_(5.0)
        g.to_rgb[level - 1].bias.add_(5.0)
        after = g(z, resolution, 1.0)
        faded_changed = g(z, resolution, 0.5)
    torch.testing.assert_close(after, before)
    assert not torch.allclose(faded_changed, before)


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_generator_alpha_zero_is_upsampled_previous_resolution(resolution):
    g = tiny_generator()
    z = torch.randn(3, LATENT)
    with torch.no_grad():
        previous = g(z, resolution // 2, 1.0)
        faded = g(z, resolution, 0.0)
        halfway = g(z, resolution, 0.5)
        new = g(z, resolution, 1.0)
    upsampled = F.interpolate(previous, scale_factor=2, mode="nearest")
    torch.testing.assert_close(faded, upsampled)
    torch.testing.assert_close(halfway, (upsampled + new) / 2)


def test_generator_fade_trains_only_active_blocks():
    g = tiny_generator()
    g(torch.randn(2, LATENT), 8, 0.5).square().mean().backward()
    assert g.to_rgb[0].weight.grad is not None and g.to_rgb[1].weight.grad is not None
    assert g.blocks[1][1].weight.grad is not None
    assert g.to_rgb[2].weight.grad is None and g.blocks[2][1].weight.grad is None


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_discriminator_fade_in(resolution):
    d = tiny_discriminator()
    level = RESOLUTIONS.index(resolution)
    x = torch.randn(4, 3, resolution, resolution)
    with torch.no_grad():
        at_zero = d(x, 0.0)
        at_previous = d(F.avg_pool2d(x, 2), 1.0)
        before = d(x, 1.0)
        d.from_rgb[level - 1][0].weight.add_(5.0)
        after = d(x, 1.0)
    torch.testing.assert_close(at_zero, at_previous)
    torch.testing.assert_close(after, before)


def test_blend_real_matches_generator_fade():
    x = torch.randn(2, 3, 8, 8)
    assert blend_real(x, 1.0) is x
    low = blend_real(x, 0.0)
    expected_low = F.avg_pool2d(x, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(low, expected_low)
    torch.testing.assert_close(blend_real(x, 0.25), 0.75 * expected_low + 0.25 * x)


# --- growth schedule -----------------------------------------------------------------------


def small_schedule(**overrides) -> GrowthSchedule:
    settings = dict(start_resolution=4, max_resolution=32, stabilize_images=100, fade_images=50)
    return GrowthSchedule(**{**settings, **overrides})


def test_schedule_boundaries_and_totals():
    schedule = small_schedule()
    assert schedule.phase_boundaries() == [(0, 4), (100, 8), (250, 16), (400, 32)]
    assert schedule.total_images() == 550


@pytest.mark.parametrize(
    ("images", "resolution", "alpha", "phase", "fading"),
    [
        (0, 4, 1.0, 0, False),
        (99, 4, 1.0, 0, False),
        (100, 8, 0.0, 1, True),
        (125, 8, 0.5, 1, True),
        (149, 8, 0.98, 1, True),
        (150, 8, 1.0, 1, False),
        (249, 8, 1.0, 1, False),
        (250, 16, 0.0, 2, True),
        (410, 32, 0.2, 3, True),
        (450, 32, 1.0, 3, False),
        (550, 32, 1.0, 3, False),
        (10**9, 32, 1.0, 3, False),
    ],
)
def test_schedule_stage_at(images, resolution, alpha, phase, fading):
    stage = small_schedule().stage_at(images)
    assert stage == Growth(resolution, pytest.approx(alpha), 16, phase, fading)


def test_schedule_is_monotone_and_phase_tracks_resolution():
    schedule = small_schedule()
    stages = [schedule.stage_at(images) for images in range(0, 700, 5)]
    for previous, current in zip(stages, stages[1:]):
        assert current.resolution >= previous.resolution
        assert (current.phase_index != previous.phase_index) == (
            current.resolution != previous.resolution
        )
        if current.resolution == previous.resolution:
            assert current.alpha >= previous.alpha
        else:
            assert current.phase_index == previous.phase_index + 1
            assert current.resolution == 2 * previous.resolution
    assert [s.phase_index for s in stages][-1] == 3


def test_schedule_batch_sizes_start_resolution_and_no_fade():
    schedule = small_schedule(
        start_resolution=8, batch_sizes={"16": 12, 32: 6}, default_batch_size=20, fade_images=0
    )
    assert schedule.phase_boundaries() == [(0, 8), (100, 16), (200, 32)]
    assert schedule.stage_at(0) == Growth(8, 1.0, 20, 0, False)
    assert schedule.stage_at(100) == Growth(16, 1.0, 12, 1, False)
    assert schedule.stage_at(250).batch_size == 6


@pytest.mark.parametrize(
    "overrides",
    [
        dict(start_resolution=6),
        dict(max_resolution=2),
        dict(start_resolution=64),
        dict(stabilize_images=0),
        dict(fade_images=-1),
        dict(batch_sizes={64: 4}),
        dict(batch_sizes={8: 0}),
        dict(default_batch_size=0),
    ],
)
def test_schedule_rejects_bad_settings(overrides):
    with pytest.raises(UserError):
        small_schedule(**overrides)
