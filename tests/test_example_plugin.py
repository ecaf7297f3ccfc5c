"""The example third-party package (examples/ganzoo-vanilla-gan) seen the way an installed one is.

Installing into a throwaway virtual environment takes too long for a unit test, so each test builds
a small site-packages folder holding what pip would write for a distribution (``*.dist-info`` with
METADATA and entry_points.txt) and puts it on ``sys.path``: ganzoo then discovers the plugin through
``importlib.metadata`` exactly as it would after ``pip install``.
"""

import warnings
from pathlib import Path

import pytest
import tomllib
import torch
from typer.testing import CliRunner

from ganzoo import registry
from ganzoo.api import load_run, train
from ganzoo.cli.app import app
from ganzoo.data.catalog import open_data
from ganzoo.data.options import DataConfig
from ganzoo.data.sources import TensorSource
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, DataInfo
from ganzoo.registry import PluginNameClash

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ganzoo-vanilla-gan"
QUIET = {"progress": False, "log_every": 1, "sample_every": 2, "checkpoint_every": 2}
TINY_POINTS = {**QUIET, "batch_size": 16, "latent_dim": 4, "g_hidden": 16, "d_hidden": 16}


def install_dist_info(site: Path, name: str, version: str, plugins: dict[str, str]) -> None:
    """What pip writes for a distribution, as far as entry-point discovery is concerned."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in plugins.items())
    (info / "entry_points.txt").write_text(f"[ganzoo.plugins]\n{lines}")


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def example(site, monkeypatch):
    """The example package 'installed' from its own pyproject.toml (editable: code stays in examples/)."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    install_dist_info(site, project["name"], project["version"], project["entry-points"]["ganzoo.plugins"])
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return project


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


# -- the installed example ----------------------------------------------------------------------
def test_installed_example_is_listed_with_its_package_and_version(example):
    record = registry.get_record("vanilla")
    assert (record.package, record.package_version) == ("ganzoo-vanilla-gan", "1.0.0")
    assert record.status == "available"  # found without importing it
    row = next(line for line in cli("plugins", "list").splitlines() if "vanilla" in line)
    assert "ganzoo-vanilla-gan 1.0.0" in row and "loaded" in row
    info = cli("plugins", "info", "vanilla")
    assert "(ganzoo-vanilla-gan 1.0.0)" in info and "loss=minimax" in info and "preset paper" in info


def test_installed_example_trains_samples_and_exports(example, tmp_path):
    testing = pytest.importorskip("ganzoo.testing")
    report = testing.check_plugin("vanilla", tmp_path, overrides={"batch_size": 8})
    assert report.sample_shape == (3, 1, 16, 16)
    assert [p.name for p in report.exports] == ["vanilla-generator.onnx"]


def test_example_models_points_with_the_same_networks(example, tmp_path):
    result = train("vanilla", data="ring8", steps=2, out=tmp_path / "r", overrides=TINY_POINTS)
    run = load_run(result.run_dir)
    assert run.data_info.kind == "vectors" and run.data_info.channels == 2
    points = run.sample(100, seed=3)
    assert points.shape == (100, 2) and torch.equal(points, run.sample(100, seed=3))
    assert (result.run_dir / "samples" / "step-00000002.png").exists()  # the scatter preview
    cli("sample", str(result.run_dir), "-n", "10", "--out", str(tmp_path / "points.csv"))
    assert len((tmp_path / "points.csv").read_text().splitlines()) == 10
    with pytest.raises(UserError, match="points"):
        run.export()


def test_paper_preset_is_the_mnist_network_of_the_paper(example):
    from ganzoo_vanilla_gan import Maxout, VanillaGAN

    plugin_cls = registry.get_plugin("vanilla")
    assert plugin_cls is VanillaGAN and plugin_cls.train_defaults == {"loss": "minimax"}
    preset = VanillaGAN.presets["paper"]
    config = VanillaGAN.Config(**{k: v for k, v in preset.items() if k not in ("size", "batch_size")})
    nets = VanillaGAN(config, DataInfo(channels=1, size=28)).build()
    widths = [m.out_features for m in nets["G"].modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [1200, 1200, 784]
    maxouts = [m for m in nets["D"].modules() if isinstance(m, Maxout)]
    assert [(m.units, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    assert nets["G"](torch.randn(3, 100)).shape == (3, 1, 28, 28)
    assert nets["D"](torch.rand(3, 1, 28, 28)).shape == (3,)


# -- a broken third-party plugin ------------------------------------------------------------------
def test_broken_plugin_is_listed_with_its_package_and_error_and_the_rest_works(example, site, tmp_path):
    (site / "exploding_gan.py").write_text("raise RuntimeError('boom at import')\n")
    install_dist_info(site, "exploding-gan", "0.3.0", {"exploding": "exploding_gan:ExplodingGAN"})

    listing = cli("plugins", "list")
    row = " ".join(line for line in listing.splitlines() if "exploding" in line)
    assert "exploding-gan 0.3.0" in row and "broken" in row and "RuntimeError: boom at import" in row
    assert "ganzoo-vanilla-gan" in listing and "dcgan" in listing

    expected = r"plugin 'exploding' from exploding-gan 0\.3\.0 is broken \(import failed: RuntimeError: boom at import\)"
    with pytest.raises(UserError, match=expected) as info:
        registry.get_plugin("exploding")
    assert "\n" not in str(info.value)
    assert "vanilla" in cli("plugins", "info", "vanilla")
    assert train("vanilla", data="ring8", steps=1, out=tmp_path / "r", overrides=TINY_POINTS).step == 1


# -- two plugins with one name ------------------------------------------------------------------
def test_name_clash_both_usable_by_qualified_name_and_runs_keep_their_provider(example, site, tmp_path):
    (site / "another_vanilla.py").write_text(
        "from ganzoo_vanilla_gan import VanillaGAN\n\n"
        "class Vanilla(VanillaGAN):\n    version = '2.0.0'\n    description = 'another vanilla'\n"
    )
    install_dist_info(site, "another-vanilla", "2.0.0", {"vanilla": "another_vanilla:Vanilla"})
    install_dist_info(site, "zz-dcgan", "9.9.9", {"dcgan": "zz_dcgan:DCGAN"})
    listing = cli("plugins", "list")
    for qualified in ("another-vanilla:vanilla", "ganzoo-vanilla-gan:vanilla", "ganzoo:dcgan", "zz-dcgan:dcgan"):
        assert qualified in listing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = registry.get_record("vanilla")
        again = registry.get_record("vanilla")
        assert registry.get_record("dcgan").package == "ganzoo"  # ganzoo's own plugins come first
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginNameClash)]
    assert first is again and first.package == "another-vanilla"  # then distributions by name
    assert len([m for m in messages if "'vanilla'" in m]) == 1  # said once, when the name is used
    assert "ganzoo-vanilla-gan:vanilla" in messages[0]

    ours = train("ganzoo-vanilla-gan:vanilla", data="ring8", steps=1, out=tmp_path / "ours", overrides=TINY_POINTS)
    theirs = train("another-vanilla:vanilla", data="ring8", steps=1, out=tmp_path / "theirs", overrides=TINY_POINTS)
    assert load_run(ours.run_dir).spec.plugin_cls.version == "1.0.0"
    assert load_run(theirs.run_dir).spec.plugin_cls.version == "2.0.0"
    # Uninstall the provider that trained "ours": the other one must not stand in for it.
    for info in site.glob("ganzoo_vanilla_gan-*.dist-info"):
        for file in info.iterdir():
            file.unlink()
        info.rmdir()
    registry.reset()
    message = r"trained with plugin 'vanilla' from ganzoo-vanilla-gan, which is not installed here \(installed: another-vanilla:vanilla\)"
    with pytest.raises(UserError, match=message):
        load_run(ours.run_dir)
    with pytest.raises(UserError, match=message):
        train("", steps=2, resume=ours.run_dir)


def test_a_plugin_missing_a_required_method_is_listed_as_broken_naming_it(site):
    (site / "half_gan.py").write_text(
        "from ganzoo.plugin import LatentGAN, Plugin\n\n"
        "class HalfGAN(Plugin):\n    name = 'half'\n"
        "    def build(self): return {}\n    def optimizers(self): return {}\n    def phases(self): return []\n"
    )
    install_dist_info(site, "half-gan", "0.1.0", {"half": "half_gan:HalfGAN"})
    row = " ".join(line for line in cli("plugins", "list").splitlines() if "half" in line)
    assert "broken" in row and "does not implement sample" in row
    with pytest.raises(UserError, match="HalfGAN does not implement sample"):
        registry.get_plugin("half")


def test_entry_point_and_class_names_must_agree(site):
    (site / "misnamed_gan.py").write_text(
        "from ganzoo_plugins.dcgan import DCGAN\n\nclass Misnamed(DCGAN):\n    name = 'other'\n"
    )
    install_dist_info(site, "misnamed-gan", "0.1.0", {"misnamed": "misnamed_gan:Misnamed"})
    with pytest.raises(UserError, match="entry point 'misnamed' loads Misnamed whose name is 'other'"):
        registry.get_plugin("misnamed")


# -- the register() decorator ---------------------------------------------------------------------
def test_register_decorator_makes_a_script_plugin_usable(example, tmp_path):
    from ganzoo_vanilla_gan import VanillaGAN

    @registry.register
    class ScriptGAN(VanillaGAN):
        name = "script-gan"
        description = "a plugin defined in a test file"

    record = registry.get_record("script-gan")
    assert record.package == __name__ and record.cls is ScriptGAN
    assert "script-gan" in cli("plugins", "list", "script*")
    train("script-gan", data="ring8", steps=2, out=tmp_path / "r", overrides=TINY_POINTS)
    assert load_run(tmp_path / "r").sample(4).shape == (4, 2)

    class Impostor(VanillaGAN):
        name = "script-gan"

    registry.register(Impostor)  # a script registering its class again: the newer one serves
    assert registry.get_plugin("script-gan") is Impostor
    registry.register(ScriptGAN, replace=True)
    assert registry.get_plugin("script-gan") is ScriptGAN

    class Incomplete(registry.Plugin):
        name = "incomplete"

    with pytest.raises(TypeError, match="Incomplete does not implement build, optimizers, phases, sample"):
        registry.register(Incomplete)


# -- point data in the core ---------------------------------------------------------------------
@pytest.mark.parametrize("name, modes", [("ring8", 8), ("grid25", 25)])
def test_toy_datasets_are_float_points(name, modes):
    data = open_data(DataConfig(dataset=name), Accepts("images", "vectors"), seed=0)
    assert data.info.kind == "vectors" and data.info.channels == 2 and data.info.size == 0
    assert data.a.images.dtype == torch.float32 and data.a.images.shape == (data.info.num_images, 2)
    source = TensorSource(data.a.images, None, torch.device("cpu"), seed=0)
    batch, _, _ = source.next(64)
    assert batch.dtype == torch.float32 and batch.shape == (64, 2)
    assert torch.isin(batch, data.a.images).all()  # passed through unchanged, no pixel conversion


def test_point_data_rejects_image_only_options_and_plugins(tmp_path):
    points = torch.zeros(10, 2)
    with pytest.raises(UserError, match="hflip"):
        TensorSource(points, None, torch.device("cpu"), seed=0, hflip=True)
    with pytest.raises(UserError, match="ring8 is vectors data, which plugin 'dcgan' does not take .it takes images."):
        train("dcgan", data="ring8", steps=1, out=tmp_path / "r", overrides=QUIET)
