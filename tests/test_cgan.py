"""The conditional GAN: conditional training, sampling by class, export with a label input, runtime."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from ganzoo.api import load_run, train
from ganzoo.cli.app import main as cli
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo
from ganzoo_plugins.cgan import CGANConfig, ConditionalGAN, diversity_ratio, paired_labels

TINY = {"progress": False, "log_every": 1, "sample_every": 2, "checkpoint_every": 2}
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run on the built-in digits, shared by the sampling, export and runtime tests."""
    out = tmp_path_factory.mktemp("cgan") / "run"
    train("cgan", preset="tiny", steps=2, out=out, overrides=TINY)
    return load_run(out)


@pytest.fixture(scope="module")
def onnx_path(run, tmp_path_factory):
    return run.export(tmp_path_factory.mktemp("exports"))[0]


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        cli(args)
    return info.value.code


def stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def tiny_plugin(**config) -> ConditionalGAN:
    base = {"ngf": 4, "ndf": 4, "latent_dim": 8, "embed_dim": 3}
    info = DataInfo(channels=1, size=16, num_classes=3, class_names=("a", "b", "c"))
    return ConditionalGAN(CGANConfig(**{**base, **config}), info)


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, class_terms, diversity_term",
    [
        ({}, True, True),  # projection D with its class head, mode seeking on
        ({"aux_weight": 0, "diversity_weight": 0}, False, False),  # the pure projection D
        ({"conditioning": "concat"}, False, True),
        ({"conditioning": "acgan", "generator_conditioning": "batchnorm"}, True, True),
    ],
)
def test_each_conditioning_trains_with_finite_losses(tmp_path, settings, class_terms, diversity_term):
    result = train("cgan", preset="tiny", steps=1, out=tmp_path / "r", overrides={**TINY, **settings})
    last = stats(result.run_dir)[-1]
    assert result.step == 1
    assert np.isfinite([last["D/loss"], last["G/loss"]]).all()
    assert ("D/d_class" in last and "G/g_class" in last) == class_terms
    assert ("G/g_diversity" in last) == diversity_term


def test_mode_seeking_pairs_images_of_one_class_and_measures_their_spread():
    assert paired_labels(torch.tensor([3, 1, 4, 1, 5])).tolist() == [3, 1, 3, 1, 5]
    z = torch.randn(4, 8)
    collapsed = torch.zeros(4, 1, 2, 2)
    assert diversity_ratio(collapsed, z) == 0
    spread = torch.cat([torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)])
    assert diversity_ratio(spread, z) == pytest.approx(1 / (z[:2] - z[2:]).abs().mean().item())


def test_both_networks_depend_on_the_label(run):
    z = torch.randn(4, run.spec.model.latent_dim)
    as_three = run.nets["G"](z, torch.full((4,), 3))
    as_seven = run.nets["G"](z, torch.full((4,), 7))
    assert not torch.allclose(as_three, as_seven)
    real = torch.zeros(4, 1, 16, 16)
    assert not torch.allclose(run.nets["D"](real, torch.full((4,), 3)), run.nets["D"](real, torch.full((4,), 7)))


def test_generator_and_discriminator_forms_are_chosen_independently():
    kinds = lambda nets: (type(nets["G"]).__name__, type(nets["D"]).__name__)  # noqa: E731
    assert kinds(tiny_plugin().build()) == ("ConcatGenerator", "ProjectionDiscriminator")
    assert kinds(tiny_plugin(generator_conditioning="batchnorm", conditioning="concat").build()) == (
        "ConditionalBatchNormGenerator", "ConcatDiscriminator"
    )
    assert kinds(tiny_plugin(generator_conditioning="both", conditioning="acgan").build()) == (
        "ConditionalBatchNormGenerator", "AuxClassifierDiscriminator"
    )
    assert tiny_plugin().build()["D"].classifier is not None
    assert tiny_plugin(aux_weight=0).build()["D"].classifier is None


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"conditioning": "acgan", "aux_weight": 0}, "needs aux_weight > 0"),
        ({"conditioning": "concat", "aux_weight": 1}, "has no class head"),
    ],
)
def test_contradictory_settings_are_refused(settings, message):
    with pytest.raises(UserError, match=message):
        tiny_plugin(**settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"diversity_weight": -1}, r"diversity_weight=-1.0 \(model\) is out of range: it must be >= 0"),
        ({"embed_dim": 0}, r"embed_dim=0 \(model\) is out of range: it must be >= 1"),
        ({"lr": "-0.1"}, r"lr=-0.1 \(model\) is out of range: it must be > 0"),
    ],
)
def test_nonsense_values_are_refused_when_read_with_the_valid_range(settings, message):
    from ganzoo.engine.spec import resolve

    with pytest.raises(UserError, match=message):
        resolve("cgan", settings)


def test_trains_on_class_subfolders_with_names_from_the_folders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "data" / name / f"{i}.png")
    train("cgan", preset="tiny", data=str(tmp_path / "data"), steps=1, out=tmp_path / "r", overrides=TINY)
    run = load_run(tmp_path / "r")
    assert run.data_info.class_names == ("cat", "dog")
    dogs = run.sample(3, seed=0, **{"class": "dog"})
    assert dogs.shape == (3, 3, 16, 16)
    assert torch.equal(dogs, run.sample(3, seed=0, **{"class": 1}))


def test_unlabelled_data_is_refused(tmp_path):
    (tmp_path / "flat").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(UserError, match="needs labelled data"):
        train("cgan", preset="tiny", data=str(tmp_path / "flat"), steps=1, out=tmp_path / "r", overrides=TINY)


@pytest.mark.parametrize("settings", [{"diversity_weight": 1.0}, {"aux_weight": 2.0, "aux_fakes": True}])
def test_plain_loop_is_the_engines_step_by_hand(tmp_path, settings):
    """Same weights, batch and noise: one plain step and one engine step end with the same weights."""
    import copy

    from ganzoo.bench import plain_loop, trainer_settings
    from ganzoo.engine.spec import resolve
    from ganzoo.engine.trainer import Trainer

    spec = resolve("cgan", {**TINY, **settings, "batch_size": 6, "ema_half_life": 0}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "run")
    initial = {role: copy.deepcopy(m.state_dict()) for role, m in trainer.nets.items()}
    plain_nets = copy.deepcopy(trainer.nets)
    step = plain_loop("cgan").updater(plain_nets, trainer_settings(trainer))
    batch = copy.deepcopy(trainer.stream).next(6)
    torch.manual_seed(3)
    step(batch.images, batch.labels)
    torch.manual_seed(3)
    trainer.train_step()
    for role, module in trainer.nets.items():
        theirs = plain_nets[role].state_dict()
        for name, ours in module.state_dict().items():
            torch.testing.assert_close(ours, theirs[name], rtol=1e-5, atol=1e-6, msg=f"{role}.{name}")
        assert any(not torch.equal(v, initial[role][k]) for k, v in module.state_dict().items()), role


# -- sampling ---------------------------------------------------------------------------------
def test_sampling_by_index_name_and_string_agree(run):
    by_index = run.sample(5, seed=3, **{"class": 7})
    assert by_index.shape == (5, 1, 16, 16)
    assert by_index.min() >= -1 and by_index.max() <= 1
    assert torch.equal(by_index, run.sample(5, seed=3, **{"class": "seven"}))
    assert torch.equal(by_index, run.sample(5, seed=3, **{"class": "7"}))
    assert not torch.equal(by_index, run.sample(5, seed=3, **{"class": 2}))


def test_default_grid_has_one_row_per_class_with_shared_noise_per_column(run):
    images = run.sample(16, seed=4)  # rounded up to whole rows: 10 classes x 2 columns
    assert images.shape[0] == 20
    assert run.plugin.grid_columns(16, {}) == 2
    assert run.plugin.grid_columns(16, {"class": "3"}) is None
    for k in (0, 7):
        assert torch.allclose(images[2 * k : 2 * k + 2], run.sample(2, seed=4, **{"class": k}), atol=1e-6)


def test_preview_is_a_row_per_class_grid(run):
    from ganzoo.plugin import Stage

    examples = Batch(images=torch.zeros(2, 1, 16, 16))
    image = run.plugin.preview(run.nets, examples=examples, stage=Stage(), generator=torch.Generator().manual_seed(0))
    assert image.shape == (3, 2 + 10 * 18, 2 + 8 * 18)  # a row per class, 8 columns of 16 px, 2 px padding


@pytest.mark.parametrize("bad", [10, -1, "ten", "", True])
def test_bad_class_is_a_one_line_error_naming_the_choices(run, bad):
    with pytest.raises(UserError) as info:
        run.sample(2, **{"class": bad})
    message = str(info.value)
    assert "\n" not in message and "0..9" in message and "seven" in message


def test_unknown_sampling_option_is_refused(run):
    with pytest.raises(UserError, match="does not know the option.s. colour: it takes class"):
        run.sample(2, colour="red")


def test_cli_sample_by_name_and_bad_class(run, tmp_path, capsys):
    assert run_cli(["sample", str(run.path), "--class", "seven", "-n", "4", "--out", str(tmp_path / "sevens.png")]) == 0
    assert Image.open(tmp_path / "sevens.png").size == (2 + 2 * 18, 2 + 2 * 18)
    assert run_cli(["sample", str(run.path), "-n", "10", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size == (2 + 1 * 18, 2 + 10 * 18)  # one column, a row per class
    code = run_cli(["sample", str(run.path), "--class", "42", "--out", str(tmp_path / "bad.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "class '42' is not valid" in err


# -- export and runtime -------------------------------------------------------------------------


def test_export_has_latent_and_label_inputs_with_class_metadata(run, onnx_path):
    from ganzoo_export.runtime import GanzooModel

    model = GanzooModel(onnx_path, providers=["CPUExecutionProvider"])
    meta = model.metadata
    assert [(s.name, s.role) for s in meta.inputs] == [("latent", "latent"), ("label", "label")]
    assert meta.num_classes == 10 and tuple(meta.class_names) == DIGIT_NAMES
    inputs = {i.name: i.type for i in model.session.get_inputs()}
    assert inputs == {"latent": "tensor(float)", "label": "tensor(int64)"}


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_torch_on_both_inputs(run, onnx_path, batch):
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    z = torch.randn(batch, run.spec.model.latent_dim)
    for label in (0, 9):
        labels = torch.full((batch,), label)
        expected = run.nets["G"](z, labels).numpy()
        (actual,) = session.run(None, {"latent": z.numpy(), "label": labels.numpy()})
        np.testing.assert_allclose(actual, expected, atol=1e-4)
    (zero,) = session.run(None, {"latent": z.numpy(), "label": np.zeros(batch, np.int64)})
    assert not np.allclose(zero, actual)  # the label input is live, not folded into a constant


def test_runtime_accepts_class_by_index_or_name_and_rejects_out_of_range(onnx_path):
    from ganzoo_export.errors import RuntimeInputError
    from ganzoo_export.runtime import GanzooModel

    model = GanzooModel(onnx_path, providers=["CPUExecutionProvider"])
    sevens = model.generate(3, seed=2, labels=7)
    assert sevens.shape == (3, 16, 16, 1) and sevens.dtype == np.uint8
    assert np.array_equal(sevens, model.generate(3, seed=2, labels="seven"))
    assert not np.array_equal(sevens, model.generate(3, seed=2, labels="two"))
    with pytest.raises(RuntimeInputError) as info:
        model.generate(2, labels=10)
    assert "\n" not in str(info.value) and "0..9" in str(info.value)


def test_cli_generate_with_class(onnx_path, tmp_path, capsys):
    cpu = ["--providers", "CPUExecutionProvider"]
    assert run_cli(["generate", str(onnx_path), "--class", "seven", "-n", "4", "--out", str(tmp_path / "g.png"), *cpu]) == 0
    assert Image.open(tmp_path / "g.png").size == (2 + 2 * 18, 2 + 2 * 18)
    code = run_cli(["generate", str(onnx_path), "--class", "12", "--out", str(tmp_path / "bad.png"), *cpu])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "class 12 is not valid" in err
