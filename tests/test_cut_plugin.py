"""The CUT plugin: losses against the formulas, engine against the plain loop, exact resume with patch
sampling and flips, the one forward per step (``Phase.keep_graph``), training from folders on the
command line, export and translation at any size, presets, the answer key and the contract check."""

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganzoo.api import load_run, train
from ganzoo.bench import plain_loop, trainer_epoch_steps, trainer_settings
from ganzoo.cli.app import main
from ganzoo.data.folders import SkippedImagesWarning
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.adversary import Adversary, EngineStepContext
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo, Phase, Stage
from ganzoo_plugins.cut import CUTConfig, CUTModel
from ganzoo_plugins.cut.patchnce import patch_nce_loss
from test_cyclegan_plugin import QUIET, write_unpaired_root

FASTCUT = {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy CPU two threads spin-wait badly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def unpaired_root(tmp_path_factory) -> Path:
    return write_unpaired_root(tmp_path_factory.mktemp("unpaired"))


@pytest.fixture(scope="module")
def tiny_run(unpaired_root, tmp_path_factory) -> Path:
    """`ganzoo train cut --data ROOT` (trainA/trainB) on the command line."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    argv = ["train", "cut", "--data", str(unpaired_root), "--preset", "tiny", "--steps", "2", "--out", str(out),
            "--set", "progress=false", "--set", "sample_every=2"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code in (0, None)
    return out


def tiny_plugin(**config) -> CUTModel:
    info = DataInfo(channels=3, size=16, num_images=6, num_images_b=5, kind="unpaired", batch_size=2)
    settings = {"ngf": 4, "ndf": 4, "n_blocks": 5, "n_layers_d": 2, "num_patches": 16, "netf_nc": 8, **config}
    return CUTModel(CUTConfig(**settings), info)


def step_context() -> EngineStepContext:
    return EngineStepContext(0, 0, torch.device("cpu"), Stage(), Adversary(TrainConfig(loss="lsgan")))


def images(seed: int, n: int = 2, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- the method --------------------------------------------------------------------------------


def patch_nce_by_hand(nets, config, source, translated, flipped):
    """PatchNCE as the paper states it, from scratch: G's features of both images at the layers,
    F at one set of locations, the per-layer mean of the per-patch losses, averaged over layers."""
    queries = nets["G"](translated, nce_layers=config.nce_layers)
    if flipped:
        queries = [q.flip(3) for q in queries]
    keys = nets["G"](source, nce_layers=config.nce_layers)
    keys, ids = nets["F"](keys, config.num_patches)
    queries, _ = nets["F"](queries, config.num_patches, ids)
    return sum(patch_nce_loss(q, k, config.nce_t).mean() for q, k in zip(queries, keys)) / len(keys)




@pytest.mark.parametrize("settings", [{}, FASTCUT], ids=["cut", "fastcut"])
def test_losses_follow_the_reference_formulas(settings):
    torch.manual_seed(0)
    plugin = tiny_plugin(**settings)
    c = plugin.config
    nets = plugin.build()
    real_a, real_b = images(1), images(2)
    batch, ctx = Batch(images=real_a, images_b=real_b), step_context()
    state = torch.get_rng_state()
    d_terms = plugin.discriminator_loss(nets, batch, ctx)
    g_terms = plugin.generator_loss(nets, batch, ctx)

    torch.set_rng_state(state)  # the same flip and the same patch locations
    mse_to = lambda x, target: F.mse_loss(x, torch.full_like(x, target))  # noqa: E731
    with torch.no_grad():
        flipped = c.flip_equivariance and bool(torch.rand(()) < 0.5)
        real = torch.cat([real_a, real_b]) if c.nce_idt else real_a
        fake = nets["G"](real.flip(3) if flipped else real)
        fake_b, idt_b = fake[:2], fake[2:]
        expected_d = 0.5 * (mse_to(nets["D"](real_b), 1) + mse_to(nets["D"](fake_b), 0))
        nce = patch_nce_by_hand(nets, c, real_a, fake_b, flipped)
        if c.nce_idt:
            nce = 0.5 * (nce + patch_nce_by_hand(nets, c, real_b, idt_b, flipped))
        expected_g = mse_to(nets["D"](fake_b), 1) + c.lambda_nce * nce
    assert torch.allclose(d_terms["loss"], expected_d, atol=1e-6)
    assert torch.allclose(g_terms["loss"], expected_g, atol=1e-5)
    assert ("nce_idt" in g_terms) == c.nce_idt


def test_flip_equivariance_mirrors_inputs_on_about_half_the_steps():
    plugin = tiny_plugin(**FASTCUT)
    g = plugin.build()["G"]
    batch = Batch(images=images(1), images_b=images(2))
    torch.manual_seed(0)
    with torch.no_grad():
        translations = [plugin.translate_batch(g, batch) for _ in range(40)]
        assert 10 < sum(t.flipped for t in translations) < 30
        for t in (next(t for t in translations if t.flipped), next(t for t in translations if not t.flipped)):
            assert torch.allclose(t.fake_b, g(batch.images.flip(3) if t.flipped else batch.images), atol=1e-6)
    assert all(t.idt_b is None for t in translations)  # FastCUT has no identity term
    with torch.no_grad():
        assert not any(tiny_plugin().translate_batch(g, batch).flipped for _ in range(10))  # CUT never flips


def test_g_runs_forward_once_per_step_and_the_d_phase_keeps_its_graph(unpaired_root, tmp_path):
    spec = resolve("cut", {**QUIET, "dataset": str(unpaired_root)}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "run")
    d_phase, g_phase = trainer.phases
    assert (d_phase.kind, d_phase.keep_graph, g_phase.kind) == ("discriminator", ("G",), "generator")
    translations = []  # whether each translation (not a feature pass) carries G's graph
    trainer.nets["G"].register_forward_hook(
        lambda module, args, kwargs, out: None if kwargs else translations.append(out.requires_grad),
        with_kwargs=True,
    )
    before = {k: v.clone() for k, v in trainer.nets["G"].state_dict().items()}
    trainer.train_step()
    assert translations == [True]  # one translation, with G's graph, for both phases
    assert any(not torch.equal(before[k], v) for k, v in trainer.nets["G"].state_dict().items())


def test_engine_refuses_a_kept_graph_of_an_unknown_role(unpaired_root, tmp_path, monkeypatch):
    bad = [Phase("D", "D", CUTModel.discriminator_loss, "discriminator", keep_graph=("Generator",))]
    monkeypatch.setattr(CUTModel, "phases", lambda self: bad)
    spec = resolve("cut", {**QUIET, "dataset": str(unpaired_root)}, preset="tiny")
    with pytest.raises(UserError, match=r"keeps the graph of unknown roles \['Generator'\]"):
        Trainer(spec, tmp_path / "run")


@pytest.mark.parametrize("settings", [{}, FASTCUT], ids=["cut", "fastcut"])
def test_engine_step_equals_the_plain_pytorch_loop(unpaired_root, tmp_path, settings):
    spec = resolve("cut", {**QUIET, **settings, "dataset": str(unpaired_root)}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "run")
    plain_nets = copy.deepcopy(trainer.nets)
    plain_step = plain_loop("cut").updater(plain_nets, trainer_settings(trainer), trainer_epoch_steps(trainer))
    for seed in range(3):  # flips and patch locations drawn alike on both sides
        saved = trainer.stream.state_dict()
        batch = trainer.stream.next(spec.train.batch_size)
        trainer.stream.load_state_dict(saved)
        torch.manual_seed(seed)
        plain_step(batch.images, batch.images_b)
        torch.manual_seed(seed)
        trainer.train_step()
    for role, net in trainer.nets.items():
        for (name, ours), theirs in zip(net.named_parameters(), plain_nets[role].parameters()):
            assert torch.allclose(ours, theirs, atol=1e-6), f"{role}.{name} differs from the plain loop"


def test_f_is_a_role_sized_from_the_encoder_and_absent_without_patchnce():
    nets = tiny_plugin().build()
    assert set(nets) == {"G", "D", "F"}
    assert [head[0].in_features for head in nets["F"].heads] == [3, 8, 16, 16, 16]
    assert set(tiny_plugin(lambda_nce=0.0).build()) == {"G", "D"}
    assert tiny_plugin(lambda_nce=0.0).optimizers()["G"].roles == ("G",)


@pytest.mark.parametrize("layers,blocks", [((0, 4, 8, 12, 16), 4), ((4, 0), 5), ((), 5)])
def test_nce_layers_outside_the_encoder_are_refused_in_one_line(layers, blocks):
    with pytest.raises(UserError, match="nce_layers=.* must be increasing indices of the encoder's layers"):
        tiny_plugin(nce_layers=layers, n_blocks=blocks).build()


# --- data, resume, command line ------------------------------------------------------------------


def test_resume_is_exact_with_patch_sampling_flips_and_crops(unpaired_root, tmp_path):
    settings = {**QUIET, **FASTCUT, "dataset": str(unpaired_root), "load_size": 20, "hflip": True}
    train("cut", preset="tiny", steps=4, out=tmp_path / "straight", overrides=settings)
    train("cut", preset="tiny", steps=2, out=tmp_path / "split", overrides=settings)
    train("cut", steps=4, resume=tmp_path / "split")
    a, b = (ckpt.load(ckpt.latest(tmp_path / name / "checkpoints")) for name in ("straight", "split"))
    assert set(a["nets"]) == {"G", "D", "F"}
    for role in a["nets"]:
        for key, tensor in a["nets"][role].items():
            assert torch.equal(tensor, b["nets"][role][key]), f"{role}.{key}"
    for name, state in a["optimizers"].items():
        for index, slot in state["state"].items():
            assert torch.equal(slot["exp_avg"], b["optimizers"][name]["state"][index]["exp_avg"]), name


def test_trains_from_trainA_trainB_and_logs_every_term(tiny_run):
    info = json.loads((tiny_run / "config.json").read_text())["data_info"]
    assert (info["num_images"], info["num_images_b"], info["size"], info["kind"]) == (6, 5, 16, "unpaired")
    losses = json.loads((tiny_run / "stats.jsonl").read_text().splitlines()[-1])
    for key in ("G/loss", "G/adv", "G/nce", "G/nce_idt", "D/loss", "D/d_real", "D/d_fake"):
        assert np.isfinite(losses[key]), key
    grid = Image.open(tiny_run / "samples" / "step-00000002.png")
    assert grid.size == (2 * 18 + 2, 4 * 18 + 2)  # 4 rows of real A and A->B


def test_trains_from_two_folders(unpaired_root, tmp_path):
    argv = ["train", "cut", "--data", str(unpaired_root / "trainA"), "--data-b", str(unpaired_root / "trainB"),
            "--preset", "tiny", "--steps", "1", "--out", str(tmp_path / "run"), "--set", "progress=false"]
    with warnings.catch_warnings(), pytest.raises(SystemExit) as done:
        warnings.simplefilter("error", SkippedImagesWarning)
        main(argv)
    assert done.value.code in (0, None)
    info = json.loads((tmp_path / "run" / "config.json").read_text())["data_info"]
    assert (info["num_images"], info["num_images_b"]) == (6, 5)


def test_exports_one_translator_that_translates_any_size(tiny_run, tmp_path, capsys):
    from ganzoo_export.runtime import GanzooModel

    run = load_run(tiny_run)
    (path,) = run.export(tmp_path)
    assert path.name == "cut-AtoB.onnx"
    model = GanzooModel(path, providers=["CPUExecutionProvider"])
    assert (model.metadata.task, model.metadata.direction, model.metadata.size_multiple) == ("translate", "AtoB", 4)
    for shape in ((1, 3, 20, 36), (2, 3, 44, 28)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            assert np.abs(model.run_raw(source=x.numpy())["image"] - run.nets["G"](x).numpy()).max() < 1e-4
    # `ganzoo translate` on sizes that are not multiples of 4: padded, translated, cropped back
    source = tmp_path / "in"
    source.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("wide.png", (21, 37)), ("tall.jpg", (30, 13))):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(source / name)
    for translator in (path, tiny_run):
        out = tmp_path / f"out-{translator.name}"
        with pytest.raises(SystemExit) as done:
            main(["translate", str(translator), str(source), "--out", str(out)])
        assert done.value.code in (0, None)
        assert Image.open(out / "wide.png").size == (37, 21) and Image.open(out / "tall.jpg").size == (13, 30)
    assert "translated 2 images (AtoB)" in capsys.readouterr().out


def test_sample_translates_kept_training_images(tiny_run):
    run = load_run(tiny_run)
    first = run.sample(3, seed=5)
    assert first.shape == (3, 3, 16, 16) and first.abs().max() <= 1
    assert torch.equal(first, run.sample(3, seed=5))
    with pytest.raises(UserError, match="use AtoB"):
        run.sample(1, direction="BtoA")


def test_presets_resolve_to_the_documented_settings():
    cut, fast = resolve("cut", {}, preset="cut"), resolve("cut", {}, preset="fastcut")
    assert (cut.model.lambda_nce, cut.model.nce_idt, cut.model.flip_equivariance) == (1.0, True, False)
    assert (fast.model.lambda_nce, fast.model.nce_idt, fast.model.flip_equivariance) == (10.0, False, True)
    assert (cut.data.size, cut.data.load_size, cut.model.n_blocks, cut.train.batch_size) == (256, 286, 9, 1)
    assert cut.train.epochs == cut.model.n_epochs + cut.model.n_epochs_decay == 400
    assert (fast.model.n_epochs, fast.model.n_epochs_decay, fast.train.epochs) == (150, 50, 200)
    assert (cut.model.nce_layers, cut.model.nce_t, cut.model.num_patches, cut.model.netf_nc) == (
        (0, 4, 8, 12, 16), 0.07, 256, 256)
    assert (cut.train.loss, cut.model.antialias, cut.model.antialias_up) == ("lsgan", True, True)
    for name, method in (("digit-styles", cut), ("digit-styles-fastcut", fast), ("cpu", cut), ("cpu-fastcut", fast)):
        preset = resolve("cut", {}, preset=name)
        assert (preset.model.lambda_nce, preset.model.nce_idt) == (method.model.lambda_nce, method.model.nce_idt)
    styles = resolve("cut", {}, preset="digit-styles")
    assert (styles.data.dataset, styles.train.hflip, styles.data.size) == ("digit-styles", False, 32)
    assert resolve("cut", {"nce_layers": "0,4,8"}, preset="tiny").model.nce_layers == (0, 4, 8)


def test_answer_key_scores_a_to_b_only():
    from ganzoo.data.digit_pairs import make_digit_pairs
    from ganzoo.data.digit_styles import make_digit_styles
    from ganzoo_plugins.answer_keys import as_batch
    from translation_helpers import AnswerKeyOracle

    styles = make_digit_styles(size=16, seed=0, test_count=200)
    plugin = CUTModel(CUTConfig(), DataInfo(channels=3, size=16, kind="unpaired", name="digit-styles"))
    scores = plugin.evaluate({"G": AnswerKeyOracle(as_batch(styles.test_a), as_batch(styles.test_b))}, {"seed": 0})
    assert set(scores) == {"psnr_AtoB", "ssim_AtoB", "identity_psnr_AtoB", "identity_ssim_AtoB"}
    assert scores["psnr_AtoB"] == pytest.approx(100.0) and scores["identity_psnr_AtoB"] < 15

    pairs = make_digit_pairs(16)  # digit-pairs trained unpaired: its held-out pairs are the key
    edges, styled = as_batch(pairs.test_a), as_batch(pairs.test_b)
    plugin = CUTModel(CUTConfig(), DataInfo(channels=3, size=16, kind="unpaired", name="digit-pairs"))
    scores = plugin.evaluate({"G": AnswerKeyOracle(edges, styled)}, {})
    assert set(scores) == {"psnr_AtoB", "ssim_AtoB", "identity_psnr_AtoB", "identity_ssim_AtoB"}
    assert scores["psnr_AtoB"] == pytest.approx(100.0)
    other = CUTModel(CUTConfig(), DataInfo(channels=3, size=16, kind="unpaired", name="my-folders"))
    assert other.evaluate({"G": AnswerKeyOracle(edges, styled)}, {}) == {}


def test_plugin_honours_the_contract(unpaired_root, tmp_path):
    from ganzoo.testing import check_plugin

    report = check_plugin("cut", tmp_path, data=str(unpaired_root))
    assert [p.name for p in report.exports] == ["cut-AtoB.onnx"]


@pytest.mark.slow
def test_every_role_agrees_across_two_ranks(tmp_path):
    """Under DDP G is called for features as well as translations, and the D phase builds the G
    graph the G phase trains through: every gradient must still be averaged across ranks."""
    from distributed_helpers import run_ranks
    from test_distributed import assert_states_equal

    job = dict(plugin="cut", preset="tiny", data="digit-styles", steps=2, out=str(tmp_path / "run"),
               overrides={**QUIET, **FASTCUT})
    rank0, rank1 = run_ranks(2, job, tmp_path)
    assert set(rank0["nets"]) == {"G", "D", "F"}
    assert_states_equal(rank0, rank1)
