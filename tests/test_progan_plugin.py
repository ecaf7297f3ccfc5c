"""Progressive GAN plugin: growth through the engine, optimizer rebuilds, exact resume mid-fade,
losses, exports at two resolutions, the growth report, and the contract check."""

import copy
import json
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from ganzoo.api import load_run, train
from ganzoo.bench import plain_loop, trainer_settings
from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo
from ganzoo_plugins.progan import (
    DRIFT,
    GP_WEIGHT,
    MIN_FEATURE_MAPS,
    ProGANConfig,
    ProgressiveGAN,
    growth_schedule,
    steps_to_grow,
)
from ganzoo_plugins.progan.growth_report import growth_frames, images_at, write_growth_report
from ganzoo_plugins.progan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
)
from ganzoo_plugins.progan.networks import ProgressiveGenerator, blend_real

QUIET = {"progress": False, "log_every": 1, "sample_every": 1, "checkpoint_every": 100}
# Tiny nets at 16x16 with batch 2: 4x4 for 4 images, then each doubling fades in over 8 images and
# stabilises for 4, so steps 2-5 fade in 8x8 (alpha 0, .25, .5, .75) and step 8 starts 16x16.
GROWING = {**QUIET, "fade_images": 8, "batch_size": 2}
STRAIGHT_STEPS = 10


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These nets are tiny: a second thread only adds contention on the shared CPU. Module scope:
    # the shared run below and the runs compared with it must use the same float reductions.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_plugin(**overrides) -> ProgressiveGAN:
    settings = dict(latent_dim=16, fmap_base=64, fmap_max=16, stabilize_images=4, fade_images=8)
    return ProgressiveGAN(ProGANConfig(**{**settings, **overrides}), DataInfo(channels=1, size=16))


def make_trainer(tmp_path, **overrides) -> Trainer:
    spec = resolve("progan", {**GROWING, **overrides}, preset="tiny")
    return Trainer(spec, tmp_path)


@pytest.fixture(scope="module")
def grown_run(tmp_path_factory):
    """One tiny run that grows 4x4 -> 16x16, with a preview grid and stats line every step."""
    path = tmp_path_factory.mktemp("progan") / "run"
    overrides = {**GROWING, "checkpoint_every": 5}
    train("progan", preset="tiny", steps=STRAIGHT_STEPS, out=path, overrides=overrides)
    return path


# --- the growth schedule as the engine sees it --------------------------------------------------


@pytest.mark.parametrize(
    ("images", "key", "resolution", "alpha"),
    [
        (0, 0, 4, 1.0), (3, 0, 4, 1.0), (4, 1, 8, 0.0), (8, 1, 8, 0.5), (11, 1, 8, 0.875),
        (12, 1, 8, 1.0), (16, 2, 16, 0.0), (22, 2, 16, 0.75), (24, 2, 16, 1.0), (10**6, 2, 16, 1.0),
    ],
)
def test_stage_follows_images_shown(images, key, resolution, alpha):
    stage = tiny_plugin().stage(images)
    assert (stage.key, stage.resolution) == (key, resolution)
    assert stage.info() == {"res": resolution, "alpha": pytest.approx(alpha)}
    assert stage.batch_size is None  # the engine's batch_size


def test_batch_size_per_resolution():
    plugin = tiny_plugin(batch_sizes={"8": 6, 16: 3, 1024: 1})  # 1024: beyond this data, ignored
    assert [plugin.stage(images).batch_size for images in (0, 4, 16)] == [None, 6, 3]
    schedule = growth_schedule(plugin.config, 16, batch_size=2)
    # 4x4: 2 steps of 2; 8x8: 12 images in steps of 6; 16x16: 12 images in steps of 3.
    assert steps_to_grow(schedule) == 2 + 2 + 4
    with pytest.raises(UserError, match="batch_sizes"):
        tiny_plugin(batch_sizes={12: 4})


def test_stats_and_progress_show_resolution_and_moving_alpha(grown_run):
    records = [json.loads(line) for line in (grown_run / "stats.jsonl").read_text().splitlines()]
    seen = [(r["images_seen"], r["stage/res"], r["stage/alpha"]) for r in records]
    # Each record holds the stage of the step just trained, which started 2 images earlier.
    assert seen[:6] == [
        (2, 4, 1.0), (4, 4, 1.0), (6, 8, 0.0), (8, 8, 0.25), (10, 8, 0.5), (12, 8, 0.75)
    ]
    assert seen[-1] == (20, 16, 0.25)


def test_steps_to_grow_cover_the_schedule_and_set_the_digits_run_length():
    schedule = tiny_plugin().schedule
    steps = steps_to_grow(growth_schedule(tiny_plugin().config, 16, batch_size=2))
    assert steps * 2 >= schedule.total_images() > (steps - 1) * 2
    digits = resolve("progan", preset="digits")
    assert digits.train.steps == steps_to_grow(growth_schedule(digits.model, 32, batch_size=16))


# --- the method's parts, as built and configured --------------------------------------------------


def test_networks_and_training_settings_follow_the_paper():
    nets = tiny_plugin().build()
    for net in nets.values():
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.Conv2d, nn.Linear)) for m in net.modules())
        slopes = {m.negative_slope for m in net.modules() if isinstance(m, nn.LeakyReLU)}
        assert slopes == {0.2}
        gains = {math.sqrt(2), 1.0, math.sqrt(2) / 4}  # He; linear outputs; G's dense 4x4
        for layer in net.modules():
            if isinstance(layer, (EqualizedConv2d, EqualizedLinear)):
                gain = layer.scale * math.sqrt(layer.weight[0].numel())
                assert any(gain == pytest.approx(g) for g in gains)
    assert any(isinstance(m, PixelNorm) for m in nets["G"].modules())
    assert not any(isinstance(m, PixelNorm) for m in nets["D"].modules())
    assert any(isinstance(m, MinibatchStdDev) for m in nets["D"].modules())

    for spec in tiny_plugin().optimizers().values():
        assert (spec.lr, spec.betas, spec.eps) == (1e-3, (0.0, 0.99), 1e-8)
    train_cfg = resolve("progan").train
    assert (train_cfg.loss, train_cfg.gp_weight, train_cfg.drift) == ("wgan-gp", GP_WEIGHT, DRIFT)
    assert resolve("progan", preset="paper").train.ema_half_life == pytest.approx(11_084, abs=2)


def test_discriminator_loss_fades_reals_and_adds_penalties():
    plugin = tiny_plugin()
    nets = plugin.build()
    real = torch.rand(4, 1, 8, 8) * 2 - 1
    adversary = Adversary(TrainConfig(loss="wgan-gp", drift=DRIFT))
    ctx = EngineStepContext(0, 6, torch.device("cpu"), plugin.stage(6), adversary)  # 8x8, alpha 0.25
    terms = plugin.discriminator_loss(nets, Batch(real), ctx)
    with torch.no_grad():
        faded_scores = nets["D"](blend_real(real, 0.25), 0.25)
    assert terms["d_real"].item() == pytest.approx(faded_scores.mean().item(), rel=1e-5)
    assert terms["drift"].item() == pytest.approx(faded_scores.pow(2).mean().item(), rel=1e-5)
    expected = terms["d_adv"] + GP_WEIGHT * terms["gp"] + DRIFT * terms["drift"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    g_loss = plugin.generator_loss(nets, Batch(real), ctx)["loss"]
    assert g_loss.requires_grad and g_loss.shape == ()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"fmap_base": 32}, "fmap_base"), ({"start_resolution": 6}, "start_resolution")],
)
def test_bad_model_settings_are_user_errors(overrides, match):
    with pytest.raises(UserError, match=match):
        tiny_plugin(**overrides)


def float32_drift(fmap_base: int) -> float:
    """Largest |float32 - float64| of a random G at 32x32: rounding error, amplified."""
    torch.manual_seed(0)
    g = ProgressiveGenerator(64, 32, 1, fmap_base=fmap_base, fmap_max=fmap_base // 4).eval()
    z = torch.randn(16, 64)
    with torch.no_grad():
        return (g(z, 32).double() - copy.deepcopy(g).double()(z.double(), 32)).abs().max().item()


def test_too_few_top_channels_make_pixel_norm_too_imprecise_to_export():
    # Why MIN_FEATURE_MAPS: pixel norm divides by a feature vector's length, and with 2 channels
    # some vectors are nearly zero, so float32 rounding alone exceeds the export's 1e-4 parity.
    assert float32_drift(fmap_base=32) > 1e-4  # 2 channels at 32x32
    assert float32_drift(fmap_base=MIN_FEATURE_MAPS * 16) < 5e-5  # the narrowest allowed
    with pytest.raises(UserError, match="fmap_base >= 128"):
        ProgressiveGAN(ProGANConfig(fmap_base=64), DataInfo(channels=1, size=32))


def test_image_size_must_be_a_power_of_two():
    with pytest.raises(UserError, match="size"):
        ProgressiveGAN(ProGANConfig(), DataInfo(channels=3, size=48))


# --- the engine: optimizer rebuilds and exact resume ---------------------------------------------


def adam_steps(optimizer: torch.optim.Optimizer) -> set[int]:
    return {int(state["step"]) for state in optimizer.state.values()}


def test_new_resolution_rebuilds_optimizers_with_fresh_state(tmp_path):
    trainer = make_trainer(tmp_path)
    for _ in range(2):
        trainer.train_step()
    before = dict(trainer.optim.optimizers)
    assert trainer.stage.resolution == 4 and adam_steps(before["D"]) == {2}
    trainer.train_step()  # images 4: 8x8 fade-in starts
    assert trainer.stage.resolution == 8 and trainer.stage.key == 1
    for name, optimizer in trainer.optim.optimizers.items():
        assert optimizer is not before[name]
        assert adam_steps(optimizer) == {1}  # one step since the rebuild
    rebuilt = dict(trainer.optim.optimizers)
    trainer.train_step()  # within the fade: the same optimizers keep their state
    assert all(trainer.optim.optimizers[name] is optimizer for name, optimizer in rebuilt.items())
    assert adam_steps(trainer.optim.optimizers["G"]) == {2}


def run_state(path) -> dict:
    from ganzoo.engine import checkpoint as ckpt

    return ckpt.load(ckpt.latest(path / "checkpoints"))


def assert_same_state(a: dict, b: dict) -> None:
    for key in ("step", "images_seen", "stage_key"):
        assert a[key] == b[key], key
    for group in ("nets", "ema"):
        for role in a[group]:
            for name, tensor in a[group][role].items():
                assert torch.equal(tensor, b[group][role][name]), f"{group}.{role}.{name} differs"
    for name in a["optimizers"]:
        for index, state in a["optimizers"][name]["state"].items():
            other = b["optimizers"][name]["state"][index]
            assert all(torch.equal(state[k], other[k]) for k in state), f"optimizer {name} differs"


@pytest.mark.parametrize(
    "stop_at",
    [5, 8],
    ids=["mid-fade-in", "at-a-new-resolution"],  # 5: 8x8 alpha 0.75 next; 8: 16x16 starts next
)
def test_resume_continues_with_identical_state(grown_run, tmp_path, stop_at):
    path = tmp_path / "resumed"
    overrides = {**GROWING, "checkpoint_every": 100}
    first = train("progan", preset="tiny", steps=stop_at, out=path, overrides=overrides)
    stage = tiny_plugin().stage(first.images_seen)
    if stop_at == 5:
        assert (stage.resolution, stage.alpha) == (8, 0.75)
    result = train("progan", steps=STRAIGHT_STEPS, resume=path)
    assert (result.step, result.images_seen) == (STRAIGHT_STEPS, 2 * STRAIGHT_STEPS)
    assert_same_state(run_state(grown_run), run_state(path))


# --- sampling, previews, exports ---------------------------------------------------------------


def test_samples_and_previews_at_every_resolution(grown_run):
    run = load_run(grown_run)
    images = run.sample(5, seed=3)
    assert images.shape == (5, 1, 16, 16) and images.abs().max() <= 1
    assert run.sample(2, seed=3, resolution="8").shape == (2, 1, 8, 8)
    with pytest.raises(UserError, match="resolution"):
        run.sample(2, resolution=32)
    with pytest.raises(UserError, match="class"):
        run.sample(2, **{"class": 3})

    plugin, examples = run.plugin, Batch(images=torch.zeros(2, 1, 16, 16))

    def preview(images_seen):
        generator = torch.Generator().manual_seed(0)
        return plugin.preview(run.nets, examples=examples, stage=plugin.stage(images_seen), generator=generator)

    early = preview(0)  # 4x4, upsampled to 16x16 cells
    late = preview(10**6)
    assert early.shape == late.shape == (3, 8 * 18 + 2, 8 * 18 + 2)  # grids are drawn in RGB
    cell = early[:, 2:18, 2:18]
    assert torch.equal(cell, cell[:, ::4, ::4].repeat_interleave(4, 1).repeat_interleave(4, 2))


def test_export_final_and_intermediate_resolution_with_parity(grown_run, tmp_path):
    from ganzoo_export.runtime import GanzooModel

    run = load_run(grown_run)
    paths = run.export(tmp_path, resolution=8)
    assert [p.name for p in paths] == ["progan-generator.onnx", "progan-generator-8x8.onnx"]
    z = torch.randn(3, 16)
    for path, resolution in zip(paths, (16, 8)):
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert props["ganzoo.resolution"] == str(resolution)
        assert props["ganzoo.height"] == props["ganzoo.width"] == str(resolution)
        assert props["ganzoo.extra.max_resolution"] == "16"
        model = GanzooModel(path, providers=["CPUExecutionProvider"])
        (out,) = model.run_raw(latent=z.numpy()).values()
        expected = run.nets["G"](z, resolution, 1.0).clamp(-1, 1).numpy()
        assert out.shape == (3, 1, resolution, resolution)
        assert np.abs(out - expected).max() <= 1e-4
    with pytest.raises(UserError, match="resolution"):
        run.plugin.exports(run.nets, {"resolution": "12"})


# --- the growth report --------------------------------------------------------------------------


def test_growth_report_gif_and_grid_per_resolution(grown_run):
    from PIL import Image

    frames = growth_frames(grown_run, load_run(grown_run).plugin.schedule)
    assert [f.step for f in frames] == list(range(1, STRAIGHT_STEPS + 1))
    assert [f.resolution for f in frames] == [4, 8, 8, 8, 8, 8, 8, 16, 16, 16]
    assert frames[3].fading and frames[3].alpha == 0.5
    assert frames[3].caption == "8x8 fade-in 0.50, 8 img"

    samples = grown_run / "samples"  # written by the plugin's on_train_end hook
    for resolution in (4, 8, 16):
        last = max(f.step for f in frames if f.resolution == resolution)
        grid = Image.open(samples / f"resolution-{resolution}x{resolution}.png")
        written = Image.open(samples / f"step-{last:08d}.png")
        assert np.array_equal(np.asarray(grid), np.asarray(written))
    with Image.open(samples / "growth.gif") as gif:
        assert gif.n_frames == STRAIGHT_STEPS
    strip = Image.open(samples / "growth.png")
    assert strip.width > 3 * grid.width

    report = write_growth_report(grown_run, load_run(grown_run).plugin.schedule, max_frames=4)
    with Image.open(report.gif) as gif:
        assert gif.n_frames == 4


def test_grids_between_logged_steps_get_interpolated_images():
    logged = {5: 20, 10: 40}  # stats.jsonl every 5 steps, 4 images per step
    assert [images_at(step, logged) for step in (2, 5, 7, 12)] == [8, 20, 28, 48]
    assert images_at(3, {}) == 0


def test_plain_loop_is_the_engines_step_by_hand(tmp_path):
    """Same weights, batch and noise at 4x4: one plain step and one engine step agree."""
    trainer = make_trainer(tmp_path, ema_half_life=0)
    initial = {role: copy.deepcopy(m.state_dict()) for role, m in trainer.nets.items()}
    plain_nets = {role: copy.deepcopy(m) for role, m in trainer.nets.items()}
    step = plain_loop(trainer.spec.plugin).updater(plain_nets, trainer_settings(trainer))
    batch = copy.deepcopy(trainer.stream).next(2, 4)

    torch.manual_seed(7)
    step(batch.images)
    torch.manual_seed(7)
    trainer.train_step()
    for role, module in trainer.nets.items():
        plain = plain_nets[role].state_dict()
        for name, ours in module.state_dict().items():
            torch.testing.assert_close(ours, plain[name], rtol=1e-5, atol=1e-6, msg=name)
        ours = module.state_dict()
        assert any(not torch.equal(ours[k], v) for k, v in initial[role].items()), role
