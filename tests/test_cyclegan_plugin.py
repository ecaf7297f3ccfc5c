"""The CycleGAN plugin: losses, engine-vs-plain-loop parity, pools and exact resume, schedule,
previews, ONNX export, reference-weight import and the digit-styles answer key."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganzoo.api import load_run, train
from ganzoo.bench import plain_loop, trainer_settings
from ganzoo.cli.app import main
from ganzoo.data.folders import SkippedImagesWarning
from ganzoo.data.sources import TensorSource
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo, Stage
from ganzoo_plugins.cyclegan import CycleGAN, CycleGANConfig
from ganzoo_plugins.cyclegan.schedule import linear_decay, steps_per_epoch
from translation_helpers import AnswerKeyOracle, assert_resume_is_exact

QUIET = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}


pytestmark = pytest.mark.usefixtures("one_thread")


def write_unpaired_root(root: Path, corrupt: bool = False) -> Path:
    """trainA: 6 images, trainB: 5, in assorted sizes and modes (every one is read as RGB)."""
    rng = np.random.default_rng(0)
    pixels = lambda h, w, c=3: rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)  # noqa: E731
    a, b = root / "trainA", root / "trainB"
    a.mkdir(parents=True)
    b.mkdir()
    Image.fromarray(pixels(20, 31)).save(a / "wide.png")
    Image.fromarray(pixels(40, 18, 1)).save(a / "gray_tall.png")
    Image.fromarray(pixels(16, 16, 4), "RGBA").save(a / "alpha.png")
    Image.fromarray(pixels(23, 17)).convert("P").save(a / "palette.gif")
    Image.fromarray(pixels(33, 29)).save(a / "photo.jpg")
    Image.fromarray(pixels(17, 19)).save(a / "plain.bmp")
    for i in range(5):
        Image.fromarray(pixels(18 + i, 22 - i)).save(b / f"b{i}.png")
    if corrupt:
        (a / "broken.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="module")
def unpaired_root(tmp_path_factory) -> Path:
    return write_unpaired_root(tmp_path_factory.mktemp("unpaired"))


@pytest.fixture(scope="module")
def tiny_run(unpaired_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train("cyclegan", preset="tiny", steps=2, out=out, overrides={**QUIET, "dataset": str(unpaired_root), "sample_every": 2})
    return out


def tiny_plugin(**config) -> CycleGAN:
    info = DataInfo(channels=3, size=16, num_images=6, num_images_b=5, kind="unpaired", batch_size=2)
    return CycleGAN(CycleGANConfig(ngf=4, ndf=4, n_blocks=1, n_layers_d=2, **config), info)


def step_context() -> EngineStepContext:
    return EngineStepContext(0, 0, torch.device("cpu"), Stage(), Adversary(TrainConfig(loss="lsgan")))


# --- the method --------------------------------------------------------------------------------


def test_losses_follow_the_reference_formulas():
    torch.manual_seed(0)
    plugin = tiny_plugin()
    nets = plugin.build()
    g_ab, g_ba, d_a, d_b = (nets[r] for r in ("G_AB", "G_BA", "D_A", "D_B"))
    real_a, real_b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    batch, ctx = Batch(images=real_a, images_b=real_b), step_context()
    mse_to = lambda x, target: F.mse_loss(x, torch.full_like(x, target))  # noqa: E731

    g_terms = plugin.generator_loss(nets, batch, ctx)
    d_terms = plugin.discriminator_loss(nets, batch, ctx)  # the pools are not full: fakes pass through

    with torch.no_grad():
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        expected_g = (
            mse_to(d_b(fake_b), 1) + mse_to(d_a(fake_a), 1)
            + 10 * (F.l1_loss(g_ba(fake_b), real_a) + F.l1_loss(g_ab(fake_a), real_b))
            + 5 * (F.l1_loss(g_ba(real_a), real_a) + F.l1_loss(g_ab(real_b), real_b))
        )
        expected_d = 0.5 * (mse_to(d_a(real_a), 1) + mse_to(d_a(fake_a), 0)) + 0.5 * (
            mse_to(d_b(real_b), 1) + mse_to(d_b(fake_b), 0)
        )
    assert torch.allclose(g_terms["loss"], expected_g, atol=1e-5)
    assert torch.allclose(d_terms["loss"], expected_d, atol=1e-6)
    assert {"adv_AB", "adv_BA", "cycle_A", "cycle_B", "idt_A", "idt_B"} <= set(g_terms)


def test_identity_loss_can_be_switched_off():
    plugin = tiny_plugin(lambda_identity=0.0)
    batch = Batch(images=torch.zeros(1, 3, 16, 16), images_b=torch.zeros(1, 3, 16, 16))
    terms = plugin.generator_loss(plugin.build(), batch, step_context())
    assert "idt_A" not in terms and torch.isfinite(terms["loss"])


def test_discriminators_draw_fakes_through_the_history_pools():
    plugin = tiny_plugin(pool_size=3)
    nets = plugin.build()
    for _ in range(2):
        batch = Batch(images=torch.rand(2, 3, 16, 16), images_b=torch.rand(2, 3, 16, 16))
        ctx = step_context()
        plugin.generator_loss(nets, batch, ctx)
        plugin.discriminator_loss(nets, batch, ctx)
    state = plugin.state_dict()
    assert state["pool_A"]["images"].shape == (3, 3, 16, 16)
    restored = tiny_plugin(pool_size=3)
    restored.load_state_dict(state)
    assert torch.equal(restored.pools["B"].state_dict()["images"], state["pool_B"]["images"])


def test_engine_step_equals_the_plain_pytorch_loop(unpaired_root, tmp_path):
    spec = resolve("cyclegan", {**QUIET, "dataset": str(unpaired_root)}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "run")
    plain_nets = copy.deepcopy(trainer.nets)
    plain_step = plain_loop(trainer.spec.plugin).updater(plain_nets, trainer_settings(trainer))
    for _ in range(2):  # the pools (4 images) stay unfull, so neither side draws random numbers
        saved = trainer.stream.state_dict()
        batch = trainer.stream.next(spec.train.batch_size)
        trainer.stream.load_state_dict(saved)
        plain_step(batch.images, batch.images_b)
        trainer.train_step()
    for role, net in trainer.nets.items():
        for (name, ours), theirs in zip(net.named_parameters(), plain_nets[role].parameters()):
            assert torch.allclose(ours, theirs, atol=1e-6), f"{role}.{name} differs from the plain loop"


# --- data, schedule, resume ------------------------------------------------------------------------


def test_folders_of_any_size_and_mode_train_and_unreadable_files_are_skipped(tmp_path):
    root = write_unpaired_root(tmp_path / "data", corrupt=True)
    with pytest.warns(SkippedImagesWarning, match="skipped 1 of 7"):
        train("cyclegan", preset="tiny", steps=2, out=tmp_path / "run", overrides={**QUIET, "dataset": str(root)})
    info = json.loads((tmp_path / "run" / "config.json").read_text())["data_info"]
    assert (info["num_images"], info["num_images_b"], info["size"], info["channels"]) == (6, 5, 16, 3)
    losses = json.loads((tmp_path / "run" / "stats.jsonl").read_text().splitlines()[-1])
    for key in ("G/loss", "G/cycle_A", "G/idt_B", "D/loss", "D/d_real_A", "D/d_fake_B"):
        assert np.isfinite(losses[key]), key


def test_random_crops_come_from_the_larger_stored_images():
    stored = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    source = TensorSource(stored, None, torch.device("cpu"), seed=3, crop=4)
    images, _, _ = source.next(2)
    assert images.shape == (2, 1, 4, 4)
    as_uint8 = ((images + 1) * 127.5).round().to(torch.uint8)
    for crop in as_uint8:
        windows = [stored[i, :, top : top + 4, left : left + 4] for i in range(2) for top in range(3) for left in range(3)]
        assert any(torch.equal(crop, window) for window in windows)
    again = TensorSource(stored, None, torch.device("cpu"), seed=3, crop=4)
    assert torch.equal(again.next(2)[0], images)  # positions follow the seed and the cursor


def test_learning_rate_is_constant_then_decays_linearly_to_zero(unpaired_root, tmp_path):
    # An epoch is max(6, 5) = 6 images = 3 steps of 2: steps 1-3 at full rate, then 2/3, 1/3, 0.
    settings = {**QUIET, "dataset": str(unpaired_root), "n_epochs": 1, "n_epochs_decay": 1,
                "checkpoint_every": 1, "keep_checkpoints": 10}
    train("cyclegan", preset="tiny", steps=6, out=tmp_path / "run", overrides=settings)
    lrs = {}
    for path in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"):
        state = ckpt.load(path)
        lrs[state["step"]] = [state["optimizers"][o]["param_groups"][0]["lr"] for o in ("G", "D")]
    for step, factor in {1: 1, 3: 1, 4: 2 / 3, 5: 1 / 3, 6: 0}.items():
        assert lrs[step] == pytest.approx([2e-4 * factor] * 2, abs=1e-12), step


def test_presets_resolve_to_the_documented_settings():
    paper = resolve("cyclegan", {}, preset="paper")
    assert (paper.data.size, paper.data.load_size, paper.model.n_blocks, paper.train.batch_size) == (256, 286, 9, 1)
    assert paper.train.epochs == paper.model.n_epochs + paper.model.n_epochs_decay == 200
    cpu = resolve("cyclegan", {}, preset="cpu")
    assert (cpu.data.size, cpu.data.load_size, cpu.model.n_blocks) == (128, 143, 6)
    assert cpu.train.epochs == cpu.model.n_epochs + cpu.model.n_epochs_decay
    styles = resolve("cyclegan", {}, preset="digit-styles")
    assert (styles.data.dataset, styles.train.hflip, styles.train.loss) == ("digit-styles", False, "lsgan")


def test_schedule_helpers():
    assert steps_per_epoch(6, 5, 2) == 3 and steps_per_epoch(100, 250, 1) == 250
    factor = linear_decay(10, 5)
    assert [factor(s) for s in (0, 9, 10, 11, 14, 15, 40)] == pytest.approx([1, 1, 1, 0.8, 0.2, 0, 0])
    assert linear_decay(3, 0)(3) == 0.0
    with pytest.raises(ValueError):
        linear_decay(-1, 2)


def test_resume_is_exact_with_full_pools_crops_and_flips(unpaired_root, tmp_path):
    settings = {**QUIET, "dataset": str(unpaired_root), "pool_size": 2, "load_size": 20, "hflip": True}
    a, b = assert_resume_is_exact("cyclegan", settings, tmp_path)
    for domain in ("A", "B"):
        assert torch.equal(a["plugin_state"][f"pool_{domain}"]["images"], b["plugin_state"][f"pool_{domain}"]["images"])


# --- previews, samples, exports ------------------------------------------------------------------


def test_preview_shows_both_cycles_side_by_side(tiny_run):
    grid = Image.open(tiny_run / "samples" / "step-00000002.png")
    # 4 rows of real A, A->B, A->B->A, real B, B->A, B->A->B, 16 px each with 2 px gaps.
    assert grid.size == (6 * 18 + 2, 4 * 18 + 2)


def test_sample_translates_kept_training_images(tiny_run):
    run = load_run(tiny_run)
    first = run.sample(3, seed=5, direction="BtoA")
    assert first.shape == (3, 3, 16, 16) and first.abs().max() <= 1
    assert torch.equal(first, run.sample(3, seed=5, direction="BtoA"))
    with pytest.raises(UserError, match="AtoB or BtoA"):
        run.sample(1, direction="sideways")


def test_exports_both_directions_with_dynamic_height_and_width(tiny_run, tmp_path):
    from ganzoo_export.runtime import GanzooModel

    run = load_run(tiny_run)
    paths = run.export(tmp_path)
    assert [p.name for p in paths] == ["cyclegan-AtoB.onnx", "cyclegan-BtoA.onnx"]
    for path, role in zip(paths, ("G_AB", "G_BA")):
        model = GanzooModel(path, providers=["CPUExecutionProvider"])
        meta = model.metadata
        assert (meta.task, meta.direction, meta.size_multiple) == ("translate", path.stem[-4:], 4)
        assert meta.inputs[0].shape == ("batch", 3, "height", "width")
        for shape in ((1, 3, 20, 36), (2, 3, 44, 28)):  # two sizes besides the export's own
            x = torch.rand(shape) * 2 - 1
            onnx_out = model.run_raw(source=x.numpy())["image"]
            with torch.no_grad():
                assert np.abs(onnx_out - run.nets[role](x).numpy()).max() < 1e-4
        image = np.random.default_rng(1).integers(0, 256, (21, 15, 3), dtype=np.uint8)
        translated = model.translate(image)
        with torch.no_grad():
            padded = F.pad(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1, (0, 1, 0, 3), mode="reflect")
            expected = ((run.nets[role](padded)[0, :, :21, :15].clamp(-1, 1) + 1) * 127.5).round()
        assert translated.shape == (21, 15, 3)
        assert np.abs(translated.astype(int) - expected.permute(1, 2, 0).numpy().astype(int)).max() <= 1


def test_unet_generator_option(unpaired_root, tmp_path):
    settings = {**QUIET, "dataset": str(unpaired_root), "generator": "unet", "num_downs": 5, "size": 32}
    train("cyclegan", preset="tiny", steps=1, out=tmp_path / "unet", overrides=settings)
    specs = load_run(tmp_path / "unet").plugin.exports(load_run(tmp_path / "unet").nets, {})
    assert [s.metadata["size_multiple"] for s in specs] == [32, 32]
    with pytest.raises(UserError, match="multiple of 32"):
        train("cyclegan", preset="tiny", steps=1, out=tmp_path / "bad", overrides={**settings, "size": 16})


# --- bring your own weights ------------------------------------------------------------------------


class ReferenceResnetBlock(nn.Module):
    """Written as pytorch-CycleGAN-and-pix2pix writes it (models/networks.py)."""

    def __init__(self, dim):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    def __init__(self, ngf: int, n_blocks: int):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
        model = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), norm(ngf * mult * 2), nn.ReLU(True)]
        model += [ReferenceResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            up = nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1)
            model += [up, norm(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)
        torch.manual_seed(1)
        with torch.no_grad():
            for param in self.parameters():
                param.normal_(0, 0.1)  # nonzero biases: a misplaced one would change the output

    def forward(self, x):
        return self.model(x)


def test_import_reproduces_the_reference_network_and_exports_onnx(tmp_path, capsys):
    from ganzoo_export.runtime import GanzooModel

    reference = ReferenceResnetGenerator(ngf=8, n_blocks=3).eval()
    weights = tmp_path / "latest_net_G_A.pth"
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, weights)  # as DataParallel saves

    with pytest.raises(SystemExit) as done:
        main(["import", "cyclegan", str(weights), "--out", str(tmp_path / "run")])
    assert done.value.code in (0, None)
    assert "cyclegan-AtoB.onnx" in capsys.readouterr().out

    run = load_run(tmp_path / "run")
    assert (run.spec.model.ngf, run.spec.model.n_blocks) == (8, 3)
    model = GanzooModel(tmp_path / "run" / "exports" / "cyclegan-AtoB.onnx", providers=["CPUExecutionProvider"])
    for shape in ((2, 3, 32, 32), (1, 3, 36, 52)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            expected = reference(x)
            assert (run.nets["G_AB"](x) - expected).abs().max() <= 1e-5
        assert np.abs(model.run_raw(source=x.numpy())["image"] - expected.numpy()).max() <= 1e-4
    assert [p.name for p in (tmp_path / "run" / "exports").iterdir()] == ["cyclegan-AtoB.onnx"]
    with pytest.raises(UserError, match="ganzoo translate"):
        run.sample(1)


def test_import_of_a_mismatched_file_fails_with_one_line(tmp_path, capsys):
    weights = tmp_path / "not_a_generator.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3)).state_dict(), weights)
    with pytest.raises(SystemExit) as done:
        main(["import", "cyclegan", str(weights), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and "resnet_9blocks" in err
    assert not (tmp_path / "run").exists()


# --- the answer key ----------------------------------------------------------------------------


class Untouched(nn.Module):
    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x + self.anchor


def test_answer_key_scores_translations_and_the_identity_baseline():
    from ganzoo.data.digit_styles import make_digit_styles
    from ganzoo_plugins.answer_keys import as_batch

    styles = make_digit_styles(size=16, seed=0, test_count=200)
    info = DataInfo(channels=3, size=16, kind="unpaired", name="digit-styles")
    plugin = CycleGAN(CycleGANConfig(), info)
    nets = {"G_AB": AnswerKeyOracle(as_batch(styles.test_a), as_batch(styles.test_b)), "G_BA": Untouched()}
    scores = plugin.evaluate(nets, {"seed": 0})
    assert scores["psnr_AtoB"] == pytest.approx(100.0) and scores["ssim_AtoB"] == pytest.approx(1.0, abs=1e-4)
    assert scores["psnr_BtoA"] == pytest.approx(scores["identity_psnr_BtoA"])
    assert scores["identity_psnr_AtoB"] < 15 and scores["identity_ssim_AtoB"] < 0.5  # the styles differ a lot
    other = CycleGAN(CycleGANConfig(), DataInfo(channels=3, size=16, kind="unpaired", name="my-folders"))
    assert other.evaluate(nets, {}) == {}
