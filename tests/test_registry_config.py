"""Registry discovery and rules; config resolution and overrides."""

import warnings

import pytest

from ganzoo import registry
from ganzoo.config import coerce, parse_assignments
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.spec import resolve
from ganzoo.errors import UserError
from ganzoo.plugin import Plugin
from ganzoo_plugins.dcgan import DCGAN


def test_builtins_are_found_through_entry_points():
    records = {r.name: r for r in registry.records()}
    assert {"dcgan", "cgan", "cyclegan", "progan"} <= set(records)
    assert all(records[n].package == "ganzoo" and records[n].entry_point is not None for n in ("dcgan", "cgan", "cyclegan", "progan"))
    assert records["dcgan"].status == "available"  # nothing imported until asked for
    assert registry.get_plugin("dcgan") is DCGAN and records["dcgan"].status == "loaded"


def test_wildcard_listing():
    assert registry.list_plugins("*gan") == sorted(n for n in registry.list_plugins() if n.endswith("gan"))
    assert "cyclegan" in registry.list_plugins("cyc*")


def test_unknown_name_suggests_close_names():
    with pytest.raises(UserError, match="unknown plugin 'dcgn': did you mean dcgan"):
        registry.get_plugin("dcgn")


def test_register_decorator_and_clash_rule():
    @registry.register
    class Mine(DCGAN):
        name = "my-dcgan"

    assert registry.get_plugin("my-dcgan") is Mine

    class Impostor(DCGAN):
        name = "dcgan"

    registry.register(Impostor)
    with pytest.warns(registry.PluginNameClash, match="using ganzoo:dcgan .also installed: test_registry_config:dcgan."):
        assert registry.get_plugin("dcgan") is DCGAN
    assert registry.get_plugin(f"{__name__}:dcgan") is Impostor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.register(Impostor, replace=True)
    assert registry.get_plugin("dcgan") is Impostor


def test_register_rejects_non_plugins():
    with pytest.raises(TypeError):
        registry.register(object)

    class Nameless(Plugin):
        pass

    with pytest.raises(TypeError, match="no name"):
        registry.register(Nameless)


def test_precedence_defaults_preset_overrides():
    spec = resolve("dcgan", {"ngf": "12", "loss": "hinge"}, preset="digits")
    assert spec.model.ngf == 12  # override beats preset
    assert spec.model.ndf == 32  # preset beats default
    assert spec.train.steps == DCGAN.presets["digits"]["steps"] != TrainConfig().steps  # preset, train key
    assert spec.train.loss == "hinge"
    assert spec.model.latent_dim == 100  # default
    assert resolve("dcgan", {"model.ngf": 5, "steps": None}).model.ngf == 5  # prefixes and None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lss": "hinge"}, "unknown setting 'lss': did you mean loss"),
        ({"loss": "huber"}, "loss='huber' is not allowed"),
        ({"steps": "many"}, "steps='many' is not a valid int"),
        ({"steps": "0"}, r"steps=0 \(train\) is out of range: it must be >= 1"),
        ({"gp_weight": "-1"}, r"gp_weight=-1.0 \(train\) is out of range: it must be >= 0"),
        ({"lr": "-1"}, r"lr=-1.0 \(model\) is out of range: it must be > 0"),
        ({"d_lr": "nan"}, "d_lr='nan' is not allowed: settings must be finite numbers"),
        ({"label_smoothing": "1"}, r"label_smoothing=1.0 \(train\) is out of range: it must be >= 0 and < 1"),
        ({"channels": "2"}, r"channels=2 \(data\) is out of range: it must be one of 1, 3"),
        ({"size": "100000"}, r"size=100000 \(data\) is out of range: it must be >= 4 and <= 8192"),
        ({"workers": "-2"}, r"workers=-2 \(train\) is out of range: it must be >= 0"),
        ({"engine.loss": "hinge"}, "unknown section 'engine'"),
        ({"spectral_norm": "maybe"}, "spectral_norm='maybe' is not a valid bool"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        resolve("dcgan", overrides)


def test_coercion():
    assert coerce("1e3", int, "k") == 1000
    assert coerce("off", bool, "k") is False
    assert coerce("none", float | None, "k") is None
    assert coerce("0.5,0.9", tuple[float, float], "k") == (0.5, 0.9)
    assert parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UserError, match="key=value"):
        parse_assignments(["novalue"])


def test_unknown_preset():
    with pytest.raises(UserError, match="has no preset 'huge': choose one of digits, paper, tiny"):
        resolve("dcgan", preset="huge")


def test_explicit_steps_replace_a_preset_length_in_epochs():
    from ganzoo.registry import register

    @register
    class EpochPreset(DCGAN):
        name = "epoch-preset-dcgan"
        presets = {"long": {"epochs": 3.0}}

    assert resolve("epoch-preset-dcgan", preset="long").train.epochs == 3.0
    spec = resolve("epoch-preset-dcgan", {"steps": 7}, preset="long")
    assert spec.train.epochs is None and spec.train.steps == 7
