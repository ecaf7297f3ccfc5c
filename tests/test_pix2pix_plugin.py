"""The pix2pix plugin: the paper's losses, engine-vs-plain-loop parity, exact resume, previews,
sampling, ONNX export and `ganzoo translate`, reference-weight import, the digit-pairs answer key."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganzoo.api import load_run, train
from ganzoo.bench import plain_loop, trainer_epoch_steps, trainer_settings
from ganzoo.cli.app import main
from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo, Stage
from ganzoo_plugins.pix2pix import Pix2Pix, Pix2PixConfig
from translation_helpers import AnswerKeyOracle, assert_resume_is_exact

QUIET = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}
PAIRS = 6


pytestmark = pytest.mark.usefixtures("one_thread")


def write_facades(root: Path) -> Path:
    """ROOT/train of side-by-side AB images whose B is the negative of A (40 px halves)."""
    (root / "train").mkdir(parents=True)
    for k in range(PAIRS):
        a = np.random.default_rng(k).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / "train" / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def facades(tmp_path_factory) -> Path:
    return write_facades(tmp_path_factory.mktemp("facades"))


@pytest.fixture(scope="module")
def tiny_run(facades, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train("pix2pix", preset="tiny", steps=2, out=out, overrides={**QUIET, "dataset": str(facades), "sample_every": 2})
    return out


def tiny_plugin(**config) -> Pix2Pix:
    info = DataInfo(channels=3, size=32, num_images=PAIRS, num_images_b=PAIRS, kind="paired", batch_size=2)
    return Pix2Pix(Pix2PixConfig(num_downs=5, ngf=4, ndf=4, n_layers_d=2, **config), info)


def step_context(**train_settings) -> EngineStepContext:
    cfg = TrainConfig(loss="nonsaturating", **train_settings)
    return EngineStepContext(0, 0, torch.device("cpu"), Stage(), Adversary(cfg))


# --- the method --------------------------------------------------------------------------------


def test_losses_follow_the_paper():
    torch.manual_seed(0)
    plugin = tiny_plugin(dropout=False)
    nets = plugin.build()
    g, d = nets["G"], nets["D"]
    real_a, real_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    batch, ctx = Batch(images=real_a, images_b=real_b), step_context()
    bce = lambda logits, target: F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))  # noqa: E731

    g_terms = plugin.generator_loss(nets, batch, ctx)
    d_terms = plugin.discriminator_loss(nets, batch, ctx)  # judges the G phase's output, from the cache

    with torch.no_grad():
        fake_b = g(real_a)
        expected_g = bce(d(torch.cat([real_a, fake_b], 1)), 1) + 100 * F.l1_loss(fake_b, real_b)
        expected_d = 0.5 * (bce(d(torch.cat([real_a, real_b], 1)), 1) + bce(d(torch.cat([real_a, fake_b], 1)), 0))
    assert torch.allclose(g_terms["loss"], expected_g, atol=1e-5)
    assert torch.allclose(d_terms["loss"], expected_d, atol=1e-6)
    assert torch.allclose(g_terms["l1"], F.l1_loss(fake_b, real_b))
    lighter = tiny_plugin(dropout=False, lambda_l1=10.0).generator_loss(nets, batch, step_context())
    assert torch.allclose(lighter["loss"], g_terms["adv"] + 10 * g_terms["l1"], atol=1e-5)


def test_networks_are_a_dropout_unet_and_a_patchgan_on_input_and_output():
    nets = Pix2Pix(Pix2PixConfig(ngf=8, ndf=8), DataInfo(channels=1, size=256, kind="paired", channels_b=3)).build()
    g, d = nets["G"], nets["D"]
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3  # unet_256's three middle levels
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 13
    assert d.model[0].in_channels == 4  # grey input + colour output
    assert g(torch.zeros(1, 1, 256, 256)).shape == (1, 3, 256, 256)
    with torch.no_grad():
        assert d(torch.zeros(1, 4, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 patches, 30x30 of them
    with pytest.raises(UserError, match="multiple of 256"):
        Pix2Pix(Pix2PixConfig(), DataInfo(channels=3, size=128, kind="paired")).build()




def test_engine_step_equals_the_plain_pytorch_loop(facades, tmp_path):
    spec = resolve("pix2pix", {**QUIET, "dataset": str(facades)}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "run")
    plain_nets = copy.deepcopy(trainer.nets)
    plain_step = plain_loop(trainer.spec.plugin).updater(plain_nets, trainer_settings(trainer), trainer_epoch_steps(trainer))
    for step in range(2):
        saved = trainer.stream.state_dict()
        batch = trainer.stream.next(spec.train.batch_size)
        trainer.stream.load_state_dict(saved)
        torch.manual_seed(step)  # the same dropout masks on both sides
        plain_step(batch.images, batch.images_b)
        torch.manual_seed(step)
        trainer.train_step()
    for role, net in trainer.nets.items():
        theirs = dict(plain_nets[role].state_dict())
        for name, ours in net.state_dict().items():  # parameters and batch-norm statistics
            assert torch.allclose(ours.float(), theirs[name].float(), atol=1e-6), f"{role}.{name} differs from the plain loop"


def test_presets_resolve_to_the_documented_settings():
    paper = resolve("pix2pix", {}, preset="paper")
    assert (paper.data.size, paper.data.load_size, paper.model.num_downs, paper.train.batch_size) == (256, 286, 8, 1)
    assert (paper.model.norm, paper.model.dropout, paper.model.lambda_l1, paper.train.loss) == ("batch", True, 100.0, "nonsaturating")
    assert paper.train.epochs == paper.model.n_epochs + paper.model.n_epochs_decay == 200 and paper.train.hflip
    cpu = resolve("pix2pix", {}, preset="cpu")
    assert (cpu.data.size, cpu.data.load_size, cpu.model.num_downs) == (128, 143, 7)
    builtin = resolve("pix2pix", {})  # without --preset: the built-in pairs' CPU preset
    assert (builtin.preset, builtin.data.dataset, builtin.data.size, builtin.model.num_downs) == ("digit-pairs", "digit-pairs", 32, 5)
    assert (builtin.train.ema_half_life, builtin.model.lr, builtin.train.steps) == (0, 2e-4, 1200)


def test_resume_is_exact_with_crops_flips_and_dropout(facades, tmp_path):
    assert_resume_is_exact("pix2pix", {**QUIET, "dataset": str(facades), "load_size": 36, "hflip": True}, tmp_path)


# --- previews, samples, exports ------------------------------------------------------------------


def test_preview_rows_are_input_output_and_the_true_output(tiny_run):
    grid = np.asarray(Image.open(tiny_run / "samples" / "step-00000002.png").convert("RGB")).astype(int)
    assert grid.shape == (4 * 34 + 2, 3 * 34 + 2, 3)  # 4 rows of 3 columns, 32 px each with 2 px gaps
    for row in range(4):
        top = 2 + row * 34
        real_a, truth = grid[top : top + 32, 2:34], grid[top : top + 32, 70:102]
        assert np.array_equal(truth, 255 - real_a)  # the same pair: B is A's negative


def test_sample_translates_kept_training_images(tiny_run):
    run = load_run(tiny_run)
    first = run.sample(3, seed=5)
    assert first.shape == (3, 3, 32, 32) and first.abs().max() <= 1
    assert torch.equal(first, run.sample(3, seed=5))
    with pytest.raises(UserError, match="direction='BtoA' is not one this run translates"):
        run.sample(1, direction="BtoA")


def test_export_translates_any_size_in_onnx_and_with_ganzoo_translate(tiny_run, tmp_path, capsys):
    from ganzoo_export.runtime import GanzooModel

    run = load_run(tiny_run)
    (path,) = run.export(tmp_path)
    assert path.name == "pix2pix-AtoB.onnx"
    model = GanzooModel(path, providers=["CPUExecutionProvider"])
    meta = model.metadata
    assert (meta.task, meta.direction, meta.size_multiple) == ("translate", "AtoB", 32)
    assert meta.inputs[0].shape == ("batch", 3, "height", "width")
    for shape in ((1, 3, 32, 96), (2, 3, 64, 32)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            assert np.abs(model.run_raw(source=x.numpy())["image"] - run.nets["G"](x).numpy()).max() < 1e-4
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(photos / "mine.png")
    with pytest.raises(SystemExit) as done:
        main(["translate", str(tiny_run), str(photos), "--out", str(tmp_path / "out")])
    assert done.value.code in (0, None) and "translated 1 images" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "mine.png").size == (70, 45)


def test_one_command_trains_on_a_folder_of_side_by_side_images(facades, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "pix2pix", "--data", str(facades), "--preset", "tiny", "--steps", "1", "--out", str(tmp_path / "r"),
              "--set", "progress=false"])
    assert done.value.code in (0, None) and "finished at step 1" in capsys.readouterr().out
    info = load_run(tmp_path / "r").data_info
    assert (info.kind, info.num_images, info.channels_b) == ("paired", PAIRS, 3)


def test_plugin_honours_the_contract(facades, tmp_path):
    from ganzoo.testing import check_plugin

    report = check_plugin("pix2pix", tmp_path, data=str(facades))
    assert [p.name for p in report.exports] == ["pix2pix-AtoB.onnx"]


# --- bring your own weights ------------------------------------------------------------------------


class ReferenceUnetSkipConnectionBlock(nn.Module):
    """Written as pytorch-CycleGAN-and-pix2pix writes it (models/networks.py)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        if isinstance(norm_layer, functools.partial):
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv] + [submodule] + [uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv] + [uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm] + [submodule] + [uprelu, upconv, upnorm]
            if use_dropout:
                model += [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class ReferenceUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm, use_dropout):
        super().__init__()
        if norm == "batch":
            norm_layer = functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
        else:
            norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
        block = ReferenceUnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = ReferenceUnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                                     use_dropout=use_dropout)
        block = ReferenceUnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = ReferenceUnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = ReferenceUnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = ReferenceUnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                                      outermost=True, norm_layer=norm_layer)
        torch.manual_seed(num_downs)
        with torch.no_grad():  # nonzero biases and statistics: a misplaced one would change the output
            for param in self.parameters():
                param.normal_(0, 0.2)
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.normal_(0, 0.1)
                    module.running_var.uniform_(0.5, 2.0)
                    module.num_batches_tracked.fill_(17)

    def forward(self, x):
        return self.model(x)


@pytest.mark.parametrize(
    ("num_downs", "norm", "dropout", "data_parallel"),
    [(7, "batch", True, True), (8, "instance", False, False), (7, "instance", True, False)],
    ids=["unet_128-batch-dropout-module", "unet_256-instance", "unet_128-instance-dropout"],
)
def test_import_reproduces_the_reference_network_and_exports_onnx(tmp_path, capsys, num_downs, norm, dropout, data_parallel):
    from ganzoo_export.runtime import GanzooModel

    reference = ReferenceUnetGenerator(1, 3, num_downs, ngf=2, norm=norm, use_dropout=dropout).eval()
    weights = tmp_path / "latest_net_G.pth"
    state = reference.state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()} if data_parallel else state, weights)

    with pytest.raises(SystemExit) as done:
        main(["import", "pix2pix", str(weights), "--out", str(tmp_path / "run")])
    assert done.value.code in (0, None)
    assert "pix2pix-AtoB.onnx" in capsys.readouterr().out

    run = load_run(tmp_path / "run")
    assert (run.spec.model.num_downs, run.spec.model.ngf, run.spec.model.norm) == (num_downs, 2, norm)
    assert (run.data_info.channels, run.data_info.channels_b) == (1, 3)
    model = GanzooModel(tmp_path / "run" / "exports" / "pix2pix-AtoB.onnx", providers=["CPUExecutionProvider"])
    assert model.metadata.size_multiple == 2**num_downs
    side = 2**num_downs
    for shape in ((2, 1, side, side), (1, 1, side, 2 * side)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            expected = reference(x)
            assert (run.nets["G"](x) - expected).abs().max() <= 1e-5
        assert np.abs(model.run_raw(source=x.numpy())["image"] - expected.numpy()).max() <= 1e-5
    # The runtime reads a grayscale image for this 1 -> 3 channel translator and writes RGB.
    assert model.metadata.input_channels == 1
    gray = np.random.default_rng(0).integers(0, 256, (side + 3, side - 5), dtype=np.uint8)
    assert model.translate(gray).shape == (side + 3, side - 5, 3)
    with pytest.raises(UserError, match="ganzoo translate"):
        run.sample(1)


def import_error(tmp_path, capsys, state) -> str:
    weights = tmp_path / "weights.pth"
    torch.save(state, weights)
    with pytest.raises(SystemExit) as done:
        main(["import", "pix2pix", str(weights), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert not (tmp_path / "run").exists()
    return err


def test_import_of_a_file_of_another_shape_fails_with_one_line(tmp_path, capsys):
    from ganzoo_plugins.cyclegan.networks import ResnetGenerator

    assert "unet_256" in import_error(tmp_path, capsys, nn.Sequential(nn.Conv2d(3, 8, 3)).state_dict())
    assert "ganzoo import cyclegan" in import_error(tmp_path, capsys, ResnetGenerator(3, 3, 4, 2).state_dict())
    state = ReferenceUnetGenerator(3, 3, 5, ngf=2, norm="batch", use_dropout=True).state_dict()
    state["model.model.1.model.1.weight"] = torch.zeros(5, 5, 4, 4)
    assert "does not match a U-Net generator" in import_error(tmp_path, capsys, state)


# --- the answer key ----------------------------------------------------------------------------


def test_answer_key_scores_translations_and_the_identity_baseline():
    from ganzoo.data.digit_pairs import make_digit_pairs
    from ganzoo_plugins.answer_keys import as_batch

    pairs = make_digit_pairs(16)
    edges, styled = as_batch(pairs.test_a), as_batch(pairs.test_b)
    plugin = Pix2Pix(Pix2PixConfig(), DataInfo(channels=3, size=16, kind="paired", name="digit-pairs"))
    scores = plugin.evaluate({"G": AnswerKeyOracle(edges, styled)}, {"direction": "AtoB"})
    assert scores["psnr_AtoB"] == pytest.approx(100.0) and scores["ssim_AtoB"] == pytest.approx(1.0, abs=1e-4)
    assert scores["identity_psnr_AtoB"] < 10 and scores["identity_ssim_AtoB"] < 0.3  # edges look nothing like B
    backwards = plugin.evaluate({"G": AnswerKeyOracle(styled, edges)}, {"direction": "BtoA"})
    assert backwards["psnr_AtoB"] == pytest.approx(100.0)
    assert plugin.evaluate({"G": AnswerKeyOracle(styled, edges)}, {})["psnr_AtoB"] < 10  # the key follows direction
    other = Pix2Pix(Pix2PixConfig(), DataInfo(channels=3, size=16, kind="paired", name="my-folders"))
    assert other.evaluate({"G": AnswerKeyOracle(edges, styled)}, {}) == {}


def test_eval_passes_the_data_direction_to_the_answer_key(tmp_path):
    from ganzoo.reporting.run_eval import run_subject

    train("pix2pix", preset="tiny", steps=1, out=tmp_path / "run",
          overrides={**QUIET, "dataset": "digit-pairs", "direction": "BtoA"})
    scores = run_subject(tmp_path / "run").plugin_scores()
    assert set(scores) == {"psnr_AtoB", "ssim_AtoB", "identity_psnr_AtoB", "identity_ssim_AtoB"}


def test_cyclegan_trains_on_digit_pairs_as_unpaired_data_and_says_so_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as done, pytest.warns(UserWarning) as said:
        main(["train", "cyclegan", "--data", "digit-pairs", "--preset", "tiny", "--steps", "1", "--out",
              str(tmp_path / "run"), "--set", "progress=false"])
    assert done.value.code in (0, None)
    messages = [str(w.message) for w in said]
    assert len(messages) == 1 and messages[0].startswith("digit-pairs is paired data") and "pairing" in messages[0]
    assert "\n" not in messages[0]  # the CLI prints it as one "warning: ..." line (test_cli checks the format)
    run = load_run(tmp_path / "run")
    scores = run.plugin.evaluate(run.nets, {"seed": 0})
    assert {"psnr_AtoB", "psnr_BtoA", "identity_psnr_AtoB"} <= set(scores)
