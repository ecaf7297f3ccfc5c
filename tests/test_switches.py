"""The engine's stability switches: each does what docs/engine.md says, for any plugin."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganzoo import registry
from ganzoo.api import train
from ganzoo.engine.adversary import Adversary
from ganzoo.engine.augment import Augmenter, cutout, translation
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import RunSpec, resolve
from ganzoo.engine.trainer import Trainer, apply_spectral_norm
from ganzoo.engine.unrolled import unrolled_discriminators
from ganzoo.errors import UserError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ganzoo-vanilla-gan"
QUIET = {"progress": False, "log_every": 1, "sample_every": 1000, "checkpoint_every": 1000}
POINTS = {**QUIET, "dataset": "ring8", "batch_size": 32, "latent_dim": 4, "g_hidden": 16, "d_hidden": 16}


@pytest.fixture
def vanilla(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from ganzoo_vanilla_gan import VanillaGAN

    registry.register(VanillaGAN)
    return VanillaGAN


def points_trainer(tmp_path, **overrides) -> Trainer:
    spec = resolve("vanilla", {**POINTS, **overrides})
    return Trainer(spec, tmp_path / "run")


def linear_critic(*weights: float):
    w = torch.tensor(weights)
    return lambda x: x.flatten(1) @ w


def stats(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "stats.jsonl").read_text().splitlines()]


# -- instance noise ---------------------------------------------------------------------------
def test_instance_noise_anneals_linearly_to_zero():
    adversary = Adversary(TrainConfig(instance_noise=0.5, steps=100))
    assert [adversary.noise_std(s) for s in (0, 50, 100, 150)] == [0.5, 0.25, 0.0, 0.0]
    short = Adversary(TrainConfig(instance_noise=0.5, steps=100, instance_noise_steps=10))
    assert short.noise_std(5) == 0.25 and short.noise_std(10) == 0.0


def test_instance_noise_reaches_real_and_fake_inputs_of_d():
    adversary = Adversary(TrainConfig(instance_noise=0.5, steps=100))
    seen = []
    d_fn = lambda x: (seen.append(x), x.sum(1))[1]  # noqa: E731
    zeros = torch.zeros(20_000, 2)
    adversary.discriminator_loss(d_fn, zeros, zeros, step=50)
    adversary.generator_loss(d_fn, zeros, step=50)
    assert len(seen) == 3
    for x in seen:
        assert x.std().item() == pytest.approx(0.25, rel=0.05)


# -- one-sided label smoothing ----------------------------------------------------------------
def test_label_smoothing_moves_only_the_real_target():
    adversary = Adversary(TrainConfig(label_smoothing=0.1, loss="nonsaturating"))
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    terms = adversary.discriminator_loss(lambda x: x, real, fake, step=0)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.full_like(real, 0.9)) + bce(fake, torch.zeros_like(fake))
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_label_smoothing_is_refused_for_losses_without_a_target():
    with pytest.raises(UserError, match="label_smoothing"):
        Adversary(TrainConfig(label_smoothing=0.1, loss="hinge"))


# -- R1, WGAN-GP, drift ---------------------------------------------------------------------
def test_r1_runs_every_interval_and_is_scaled_by_it():
    adversary = Adversary(TrainConfig(r1_gamma=2.0, r1_interval=4))
    d_fn = linear_critic(3.0, 4.0)  # gradient (3, 4) everywhere: R1 = 25
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    present = []
    for _ in range(5):
        terms = adversary.discriminator_loss(d_fn, real, fake, step=0)
        present.append("r1" in terms)
        if "r1" in terms:
            assert terms["r1"].item() == pytest.approx(25.0)
            assert (terms["loss"] - terms["d_adv"]).item() == pytest.approx(0.5 * 2.0 * 4 * 25.0)
    assert present == [True, False, False, False, True]


def test_wgan_gp_penalizes_gradient_norm_away_from_one():
    adversary = Adversary(TrainConfig(loss="wgan-gp"))
    assert adversary.gp_weight == 10.0
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    terms = adversary.discriminator_loss(linear_critic(0.0, 2.0), real, fake, step=0)
    assert terms["gp"].item() == pytest.approx(1.0)  # (|grad| - 1)^2 = (2 - 1)^2
    assert (terms["loss"] - terms["d_adv"]).item() == pytest.approx(10.0)
    unit = adversary.discriminator_loss(linear_critic(0.6, 0.8), real, fake, step=0)
    assert unit["gp"].item() == pytest.approx(0.0, abs=1e-6)


def test_drift_penalizes_squared_real_logits():
    adversary = Adversary(TrainConfig(loss="wgan", drift=0.001))
    real = torch.tensor([1.0, 3.0])
    terms = adversary.discriminator_loss(lambda x: x, real, torch.zeros(2), step=0)
    assert terms["drift"].item() == pytest.approx(5.0)
    assert (terms["loss"] - terms["d_adv"]).item() == pytest.approx(0.005)


# -- weight clipping, spectral norm, TTUR, k D steps, EMA (through the engine) -----------------
def test_weight_clipping_bounds_every_d_parameter(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, clip_weights=0.01, loss="wgan")
    trainer.train_step()
    d_params = torch.cat([p.flatten() for p in trainer.nets["D"].parameters()])
    g_params = torch.cat([p.flatten() for p in trainer.nets["G"].parameters()])
    assert d_params.abs().max() <= 0.01
    assert g_params.abs().max() > 0.01  # G is not clipped


def test_spectral_norm_makes_d_layers_1_lipschitz_and_leaves_g_alone(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, spectral_norm=True)
    linears = [m for m in trainer.nets["D"].modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in trainer.nets["G"].modules())

    layer = torch.nn.Linear(8, 8)
    with torch.no_grad():
        layer.weight.mul_(10)
    apply_spectral_norm(layer)
    for _ in range(30):  # one power iteration per training-mode call
        layer(torch.randn(2, 8))
    assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_ttur_sets_each_side_learning_rate(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, g_lr=1e-4, d_lr=4e-4)
    assert trainer.optim.optimizers["G"].param_groups[0]["lr"] == 1e-4
    assert trainer.optim.optimizers["D"].param_groups[0]["lr"] == 4e-4
    plain = points_trainer(tmp_path / "plain")
    assert plain.optim.optimizers["G"].param_groups[0]["lr"] == plain.optim.optimizers["D"].param_groups[0]["lr"] == 2e-4


def test_d_steps_runs_k_discriminator_steps_per_generator_step(vanilla, tmp_path):
    result = train("vanilla", steps=6, out=tmp_path / "r", overrides={**POINTS, "d_steps": 3})
    logged = stats(result.run_dir)
    assert ["G/loss" in s for s in logged] == [True, False, False, True, False, False]
    assert all("D/loss" in s for s in logged)


def test_ema_half_life_counts_images(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, ema_half_life=64, ema_rampup=10.0)  # ramp-up cap 320 > 64
    before = [p.detach().clone() for p in trainer.nets["G"].parameters()]
    trainer.train_step()  # 32 images: beta = 0.5 ** (32 / 64)
    keep = 0.5 ** 0.5
    for old, new, ema in zip(before, trainer.nets["G"].parameters(), trainer.ema["G"].module.parameters()):
        torch.testing.assert_close(ema, keep * old + (1 - keep) * new.detach())
    off = points_trainer(tmp_path / "off", ema_half_life=0)
    assert off.ema == {} and off.inference_nets()["G"] is off.nets["G"]


# -- unrolled GAN -------------------------------------------------------------------------------
def unroll_inputs(trainer):
    d_phase = next(p for p in trainer.phases if p.kind == "discriminator")
    g_phase = next(p for p in trainer.phases if p.kind == "generator")
    batch = trainer.stream.next(trainer.cfg.batch_size)
    from ganzoo.engine.adversary import EngineStepContext

    ctx = EngineStepContext(0, 0, trainer.device, trainer.stage, trainer.adversary)
    d_phases = [(d_phase, trainer.optim.optimizers["D"], ("D",))]
    return d_phase, g_phase, batch, ctx, d_phases


def test_unrolled_steps_are_the_real_optimizer_steps(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, unrolled_steps=2, spectral_norm=True)
    d_phase, g_phase, batch, ctx, d_phases = unroll_inputs(trainer)
    trainer.optim.nets_for(g_phase)
    torch.manual_seed(1)
    unrolled = unrolled_discriminators(trainer.nets, d_phases, 2, batch, ctx, 0.0, trainer.optim.autocast)
    simulated = unrolled["D"].params
    torch.manual_seed(1)  # the same latents, now for two real Adam steps
    for _ in range(2):
        trainer.run_phase(d_phase, batch, ctx)
    for name, param in trainer.nets["D"].named_parameters():
        torch.testing.assert_close(simulated[name].detach(), param.detach(), rtol=1e-5, atol=1e-6)


def test_unrolled_generator_gradient_flows_through_the_d_updates(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, unrolled_steps=3)
    _, g_phase, batch, ctx, d_phases = unroll_inputs(trainer)
    trainer.optim.nets_for(g_phase)
    unrolled = unrolled_discriminators(trainer.nets, d_phases, 3, batch, ctx, 0.0, trainer.optim.autocast)["D"]
    moved = sum(p.sum() for p in unrolled.params.values())
    grads = torch.autograd.grad(moved, list(trainer.nets["G"].parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # Metz et al.'s second term


def test_unrolled_generator_step_leaves_d_and_its_optimizer_untouched(vanilla, tmp_path):
    trainer = points_trainer(tmp_path, unrolled_steps=3, r1_gamma=1.0, r1_interval=2)
    d_phase, g_phase, batch, ctx, _ = unroll_inputs(trainer)
    trainer.run_phase(d_phase, batch, ctx)
    d_state = {k: v.clone() for k, v in trainer.nets["D"].state_dict().items()}
    optimizer = trainer.optim.optimizers["D"]
    opt_state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    updates = trainer.adversary.d_updates
    g_before = [p.detach().clone() for p in trainer.nets["G"].parameters()]
    trainer.run_phase(g_phase, batch, ctx)
    for key, value in trainer.nets["D"].state_dict().items():
        assert torch.equal(value, d_state[key]), key
    for p, slot in optimizer.state.items():
        for key, value in slot.items():
            assert torch.equal(value, opt_state[id(p)][key])
    assert trainer.adversary.d_updates == updates
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.nets["G"].parameters()))


# -- DiffAugment and ADA ----------------------------------------------------------------------
def test_diffaugment_keeps_shapes_and_passes_gradients():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = Augmenter("color,translation,cutout")(x * 2 - 1)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_shifts_whole_pixels_with_zero_fill():
    x = torch.arange(1, 1 + 2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16).repeat(8, 1, 1, 1)
    y = translation(x)
    for src, out in zip(x, y):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)  # 16 px * 1/8
            for dx in range(-2, 3)
            if torch.equal(out, F.pad(src, [2, 2, 2, 2])[:, 2 + dy : 18 + dy, 2 + dx : 18 + dx])
        ]
        assert len(matches) == 1


def test_cutout_zeroes_one_square_of_half_the_side():
    y = cutout(torch.ones(32, 1, 16, 16))
    for image in y[:, 0]:
        rows, cols = (image == 0).any(1).nonzero().flatten(), (image == 0).any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        assert (image == 0).sum() == len(rows) * len(cols)  # one rectangle (a square clipped by the border)
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()


def test_color_brightness_is_one_additive_shift_per_image():
    augmenter = Augmenter("color")
    brightness, geometric = augmenter.transforms[0]
    assert not geometric
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    shift = (brightness(x) - x).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.5


@pytest.mark.parametrize(
    "policy, message",
    [
        ("color,bogus", "unknown DiffAugment policy 'bogus'"),
        ("color,color", "names a policy twice"),
        ("", "nothing to do"),
    ],
)
def test_policy_errors_are_one_line(policy, message):
    with pytest.raises(UserError, match=message) as info:
        Augmenter(policy)
    assert "\n" not in str(info.value)


def test_augmenting_points_is_a_user_error():
    with pytest.raises(UserError, match="points"):
        Augmenter("color")(torch.zeros(4, 2))


def test_ada_p_rises_when_d_overfits_and_falls_otherwise():
    ada = Augmenter("translation", ada_target=0.6, ada_kimg=1.0, batch_size=64)  # step 64 * 4 / 1000
    assert ada.p == 0.0
    for _ in range(8):
        ada.observe(torch.full((64,), 3.0))  # every real image called real: r_t = 1 > 0.6
    assert ada.p == pytest.approx(2 * 0.256)
    for _ in range(4):
        ada.observe(torch.tensor([1.0, -1.0] * 32))  # r_t = 0 < 0.6
    assert ada.p == pytest.approx(0.256)
    for _ in range(40):
        ada.observe(-torch.ones(64))
    assert ada.p == 0.0


def test_ada_applies_each_transform_per_sample_with_probability_p():
    x = torch.arange(64 * 16 * 16, dtype=torch.float32).view(64, 1, 16, 16)
    ada = Augmenter("cutout", ada_target=0.6)
    assert torch.equal(ada(x), x)  # p starts at 0
    ada.load_state_dict({**ada.state_dict(), "p": 0.5})
    changed = (ada(x) != x).flatten(1).any(1).float().mean().item()
    assert 0.25 < changed < 0.75


def test_ada_p_is_logged_and_restored_on_resume(vanilla, tmp_path):
    spec = resolve("vanilla", {**QUIET, "dataset": "digits", "batch_size": 8, "ada_target": 0.6}, "tiny")
    trainer = Trainer(spec, tmp_path / "run")
    assert trainer.train_step()["D/ada_p"].item() == 0.0
    augmenter = trainer.adversary.augmenter
    augmenter.load_state_dict({**augmenter.state_dict(), "p": 0.375})
    assert trainer.train_step()["D/ada_p"].item() == 0.375
    trainer.save_checkpoint()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    resumed = Trainer(RunSpec.from_dict(config), tmp_path / "run", resume_from=trainer._last_checkpoint())
    assert resumed.step == 2
    assert resumed.adversary.augmenter.state_dict() == augmenter.state_dict()
