"""`ganzoo export RUN --option precision=fp16|int8` on real runs: the run's own data calibrates int8."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ganzoo.api import load_run, train
from ganzoo.cli.app import main
from ganzoo_export import GanzooModel

QUIET = {"progress": False, "sample_every": 100, "checkpoint_every": 100}


@pytest.fixture(scope="module")
def translator_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cyclegan"
    return train("cyclegan", preset="tiny", data="digit-styles", steps=4, out=out, overrides=QUIET).run_dir


def ops(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_int8_translator_is_calibrated_on_the_runs_training_images(translator_run, tmp_path, monkeypatch):
    import ganzoo.exporting as exporting

    seen = []
    real_training_images = exporting.training_images

    def recording(run, domain, channels):
        images = real_training_images(run, domain, channels)
        seen.append((domain, images.shape, float(images.min()), float(images.max())))
        return images

    monkeypatch.setattr(exporting, "training_images", recording)
    paths = load_run(translator_run).export(tmp_path, precision="int8")
    assert sorted(path.name for path in paths) == ["cyclegan-AtoB-int8.onnx", "cyclegan-BtoA-int8.onnx"]
    # Domain A for AtoB, B for BtoA: 64 calibration + 4 held-out images at the training size, in [-1, 1].
    assert [(domain, shape) for domain, shape, _, _ in seen] == [("a", (68, 3, 16, 16)), ("b", (68, 3, 16, 16))]
    assert all(-1 <= low < high <= 1 for _, _, low, high in seen)
    model = GanzooModel(tmp_path / "cyclegan-AtoB-int8.onnx")
    assert model.metadata.precision == "int8" and "QuantizeLinear" in ops(model.path)
    assert model.metadata.min_size == 8 and model.metadata.size_multiple == 4
    assert model.translate(np.full((21, 13, 3), 128, np.uint8)).shape == (21, 13, 3)


def test_fp16_translator_on_the_cpu(translator_run, tmp_path):
    run = load_run(translator_run)
    (fp16_path, _) = sorted(run.export(tmp_path / "fp16", precision="fp16"))
    (fp32_path, _) = sorted(run.export(tmp_path / "fp32"))
    assert fp16_path.name == "cyclegan-AtoB-fp16.onnx" and fp32_path.name == "cyclegan-AtoB.onnx"
    fp16, fp32 = GanzooModel(fp16_path), GanzooModel(fp32_path)
    image = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    assert fp16.metadata.precision == "fp16"
    assert np.abs(fp16.translate(image).astype(int) - fp32.translate(image).astype(int)).max() <= 3


def test_int8_generator_is_calibrated_on_seeded_latents_and_unknown_precisions_are_refused(tmp_path, capsys):
    run = train("dcgan", preset="tiny", steps=3, out=tmp_path / "dcgan", overrides=QUIET).run_dir
    (path,) = load_run(run).export(precision="int8")
    model = GanzooModel(path)
    assert path.name == "dcgan-generator-int8.onnx" and model.metadata.precision == "int8"
    assert "QuantizeLinear" in ops(path) and model.generate(4, seed=1).shape == (4, 16, 16, 1)
    with pytest.raises(SystemExit) as exited:
        main(["export", str(run), "--option", "precision=int4"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == "error: precision='int4' is not supported: use precision=fp32, fp16 or int8"
