"""Metadata format 2: the model card every exported file carries, and format 1 files still loading."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ganzoo.api import train
from ganzoo.cli.app import main
from ganzoo.exporting import export_run
from ganzoo.plugin import DataInfo, ExportSpec
from ganzoo_export import GanzooModel, ModelMetadata
from ganzoo_export.card import format_card
from tiny_models import TinyResnetTranslator, conditional_metadata

# What ganzoo 0.1's format-1 writer put in a CycleGAN and a DCGAN file, key for key.
FORMAT_1_TRANSLATOR = {
    "ganzoo.format": "1", "ganzoo.plugin": "cyclegan", "ganzoo.plugin_version": "0.1.0",
    "ganzoo.ganzoo_version": "0.1.0", "ganzoo.task": "translate",
    "ganzoo.inputs": '[{"name": "source", "role": "image", "shape": ["batch", 3, "height", "width"]}]',
    "ganzoo.channels": "3", "ganzoo.value_range": "[-1, 1]", "ganzoo.layout": "NCHW", "ganzoo.color": "RGB",
    "ganzoo.precision": "fp32", "ganzoo.height": "dynamic", "ganzoo.width": "dynamic",
    "ganzoo.direction": "AtoB", "ganzoo.size_multiple": "4",
}
FORMAT_1_GENERATOR = {
    **FORMAT_1_TRANSLATOR, "ganzoo.plugin": "dcgan", "ganzoo.task": "generate",
    "ganzoo.inputs": '[{"name": "latent", "role": "latent", "shape": ["batch", 100]}]', "ganzoo.channels": "1",
    "ganzoo.color": "grayscale", "ganzoo.height": "32", "ganzoo.width": "32", "ganzoo.latent_dim": "100",
    "ganzoo.extra.dataset": "digits",
}
del FORMAT_1_GENERATOR["ganzoo.direction"], FORMAT_1_GENERATOR["ganzoo.size_multiple"]


def ganzoo(capsys, *args) -> str:
    """The command line, in this process; returns what it printed."""
    with pytest.raises(SystemExit) as exited:
        main(list(map(str, args)))
    captured = capsys.readouterr()
    assert exited.value.code == 0, captured.err
    return captured.out


def test_format_1_files_still_load_with_the_values_format_1_implied():
    translator = ModelMetadata.from_props(FORMAT_1_TRANSLATOR)
    assert translator.format == "1" and translator.padding_mode == "reflect" and translator.size_multiple == 4
    assert translator.min_size is None and translator.data_license is None
    generator = ModelMetadata.from_props(FORMAT_1_GENERATOR)
    assert generator.latent_distribution == "normal" and generator.latent_dim == 100
    assert generator.height == 32 and generator.extra == {"dataset": "digits"}
    assert generator.to_props()["ganzoo.format"] == "2"  # re-saving writes the newest format


def test_format_2_round_trips_every_field():
    card = conditional_metadata()
    card.data_name, card.data_license, card.training_size = "digits", "CC-BY-SA-3.0", 16
    card.steps, card.images_seen, card.description = 2500, 80_000, "A small conditional generator."
    card.evaluation = {"step": 2500, "reference_set": "digits", "scores": {"fid": "12.3"}}
    props = card.to_props()
    assert props["ganzoo.latent_distribution"] == "normal" and props["ganzoo.steps"] == "2500"
    assert json.loads(props["ganzoo.evaluation"])["scores"] == {"fid": "12.3"}
    assert all(isinstance(value, str) for value in props.values())
    assert ModelMetadata.from_props(props) == card
    text = format_card(card, "cgan.onnx")
    for expected in ("classes         3: zero, one, two", "licence: CC-BY-SA-3.0", "2,500 steps, 80,000 images seen",
                     "fid 12.3 (step 2500, against digits)", "A small conditional generator."):
        assert expected in text, text


@dataclass
class FolderRun:
    """A run as exporting.py sees it (its ExportableRun protocol), with no ganzoo.api involved."""

    path: Path
    nets: dict
    spec: SimpleNamespace
    plugin: SimpleNamespace
    step: int = 40
    images_seen: int = 160
    options_seen: list = field(default_factory=list)


def folder_run(tmp_path: Path) -> FolderRun:
    net = TinyResnetTranslator().eval()

    def exports(nets, options):
        run.options_seen.append(dict(options))
        example = (torch.rand(1, 3, 16, 16) * 2 - 1,)
        axes = {0: "batch", 2: "height", 3: "width"}
        return [ExportSpec("AtoB", nets["G_AB"], example, ("source",), ("image",), {"source": axes, "image": axes},
                           "translate", metadata={"direction": "AtoB", "norm": "instance"},
                           parity_inputs=[(torch.rand(2, 3, 24, 20) * 2 - 1,)])]

    info = DataInfo(channels=3, size=16, kind="unpaired", name="/home/someone/private/horse2zebra")
    plugin = SimpleNamespace(
        data=info, data_kind="unpaired", exports=exports, version="2.0.0", description="CycleGAN (Zhu et al. 2017)"
    )
    spec = SimpleNamespace(plugin="cyclegan", data=SimpleNamespace(dataset=info.name), train=SimpleNamespace(seed=0))
    run = FolderRun(tmp_path / "run", {"G_AB": net}, spec, plugin)
    run.path.mkdir()
    return run


def test_a_translator_card_gets_measured_sizes_and_no_local_paths(tmp_path):
    run = folder_run(tmp_path)
    (path,) = export_run(run, tmp_path / "out", {"data_license": "CC-BY-4.0", "plugin_option": 1})
    assert run.options_seen == [{"plugin_option": 1}]  # card options are not passed to the plugin
    meta = GanzooModel(path).metadata
    assert (meta.size_multiple, meta.min_size, meta.max_size) == (4, 8, 512)  # measured by probing
    assert meta.padding_mode == "reflect" and meta.direction == "AtoB" and meta.extra == {"norm": "instance"}
    assert meta.data_name == "horse2zebra" and meta.data_license == "CC-BY-4.0"
    assert meta.plugin_version == "2.0.0" and meta.steps == 40 and meta.images_seen == 160
    assert meta.evaluation is None
    assert "/home/someone" not in path.read_bytes().decode("latin-1")
    assert meta.description.startswith("CycleGAN (Zhu et al. 2017). Trained with ganzoo")
    assert "at least 8 pixels" in meta.description


def test_exporting_never_imports_the_api():
    """ganzoo.api imports exporting; the reverse would be an import cycle."""
    source = Path(__file__).resolve().parents[1] / "ganzoo" / "exporting.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update([node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)])
    assert "ganzoo.plugin" in imported  # the walk does see its imports
    assert not any(name == "ganzoo.api" or name.startswith("ganzoo.api.") for name in imported)


@pytest.mark.slow
def test_a_trained_runs_card_has_its_data_training_and_scores(tmp_path, capsys):
    run = train("dcgan", preset="tiny", steps=3, out=tmp_path / "run", overrides={"progress": False}).run_dir
    record = {"kind": "run", "step": 3, "reference_set": "digits", "metrics": {"fid": 123.456, "kid": {"mean": 0.1, "std": 0.01}}}
    older = {**record, "step": 1, "metrics": {"fid": 999.0}}
    (run / "metrics.json").write_text(json.dumps([record, older]))
    ganzoo(capsys, "export", run)
    card = json.loads(ganzoo(capsys, "info", run / "exports" / "dcgan-generator.onnx", "--json"))
    assert card["ganzoo.format"] == "2" and card["ganzoo.task"] == "generate"
    assert card["ganzoo.data_name"] == "digits" and card["ganzoo.data_license"] == "CC-BY-SA-3.0"
    assert (card["ganzoo.steps"], card["ganzoo.images_seen"], card["ganzoo.training_size"]) == ("3", "24", "16")
    assert json.loads(card["ganzoo.evaluation"]) == {
        "step": 3, "reference_set": "digits", "scores": {"fid": "123.5", "kid": "0.1 ± 0.01"},
    }
    assert card["ganzoo.latent_distribution"] == "normal"
    ganzoo(capsys, "export", run, "--out", tmp_path / "own", "--option", "description=My digits.",
           "--option", "data_name=MNIST")
    text = ganzoo(capsys, "info", tmp_path / "own" / "dcgan-generator.onnx")
    assert "  My digits.\n" in text and "training data   MNIST (licence: CC-BY-SA-3.0), 16x16 images" in text
