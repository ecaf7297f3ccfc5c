"""Bad input to the deploy runtime gets one line that names the problem and the fix."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganzoo.export.probe import size_multiple, smallest_size
from ganzoo_export import GanzooModel, RuntimeInputError, runtime
from ganzoo_export.images import load_image_exif
from tiny_models import TinyResnetTranslator, export_tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return export_tiny_models(tmp_path_factory.mktemp("models"))


def ganzoo_run(*args):
    done = subprocess.run(
        [sys.executable, "-m", "ganzoo_export", *map(str, args)], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr.strip().splitlines()


def test_empty_and_truncated_model_files(tmp_path, models):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(RuntimeInputError, match=r"is empty \(0 bytes\); export or download it again"):
        GanzooModel(empty)
    whole = (models / "generator.onnx").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 7, 100):
        truncated = tmp_path / f"cut{cut}.onnx"
        truncated.write_bytes(whole[:cut])
        with pytest.raises(RuntimeInputError, match="is not a valid ONNX model, or is truncated"):
            GanzooModel(truncated)
    code, lines = ganzoo_run("generate", tmp_path / f"cut{len(whole) // 2}.onnx", "--out", tmp_path / "g.png")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "truncated" in lines[0]


def test_the_probe_finds_what_sizes_a_translator_takes():
    net = TinyResnetTranslator().eval()
    assert size_multiple(net, 3) == 4
    assert smallest_size(net, 3, 4) == 8


def test_image_smaller_than_the_model_takes(models):
    model = GanzooModel(models / "translator.onnx")
    assert model.metadata.min_size == 8
    # What the check prevents: onnxruntime's own error from deep inside the graph.
    with pytest.raises(Exception, match="Pad"):
        model.run_raw(image=np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(RuntimeInputError, match=r"the image is 3x2 pixels; this model needs at least 8x8"):
        model.translate(np.zeros((2, 3, 3), np.uint8))
    assert model.translate(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7, 3)  # padded up to 8x8 and back
    with pytest.raises(RuntimeInputError, match="tile 4 is smaller than the 8 pixels"):
        model.translate(np.zeros((16, 16, 3), np.uint8), tile=4)


def test_corrupt_and_truncated_image_files(tmp_path, models):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "whole.png")
    Image.fromarray(pixels).save(tmp_path / "whole.jpg", quality=90)
    for name in ("whole.png", "whole.jpg"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
        with pytest.raises(RuntimeInputError, match="is corrupt or truncated"):
            load_image_exif(tmp_path / f"cut-{name}", channels=3)
    (tmp_path / "noise.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(RuntimeInputError, match="(not an image|corrupt or truncated)"):
        load_image_exif(tmp_path / "noise.png", channels=3)
    code, lines = ganzoo_run("translate", models / "translator.onnx", tmp_path / "cut-whole.png", "--out", tmp_path / "out")
    assert code == 2 and len(lines) == 1 and "cut-whole.png' is corrupt or truncated" in lines[0]


@pytest.mark.parametrize("n", [2.5, "3", True, None])
def test_n_must_be_a_whole_number(models, n):
    with pytest.raises(RuntimeInputError, match=r"n must be a whole number"):
        GanzooModel(models / "generator.onnx").generate(n)


def test_n_and_batch_size_must_be_positive(models):
    model = GanzooModel(models / "generator.onnx")
    with pytest.raises(RuntimeInputError, match="n must be at least 1, got 0"):
        model.generate(0)
    with pytest.raises(RuntimeInputError, match="batch_size must be at least 1, got -2"):
        model.generate(2, batch_size=-2)
    assert model.generate(np.int64(2)).shape == (2, 16, 16, 1)


@pytest.mark.parametrize("label", [1.5, 3, -1, "three", True])
def test_labels_must_be_whole_class_indices_or_names(models, label):
    with pytest.raises(RuntimeInputError, match=r"is not valid for this model; use an index in 0\.\.2 or one of"):
        GanzooModel(models / "conditional.onnx").generate(2, labels=label)


@pytest.mark.parametrize("seed, problem", [(-1, "from 0 to"), (2**53, "from 0 to"), (1.0, "whole number"), ("7", "whole")])
def test_seed_must_be_a_whole_number_from_zero(models, seed, problem):
    with pytest.raises(RuntimeInputError, match=f"seed must be .*{problem}"):
        GanzooModel(models / "generator.onnx").generate(2, seed=seed)


def test_cli_errors_are_one_line(models, tmp_path):
    for args, message in [
        (("generate", models / "generator.onnx", "--seed", "-1"), "seed must be from 0"),
        (("generate", models / "generator.onnx", "-n", "0"), "n must be at least 1"),
        (("generate", models / "conditional.onnx", "--class", "seven"), "class 'seven' is not valid"),
        (("generate", tmp_path / "none.onnx"), "does not exist"),
        (("translate", models / "generator.onnx", tmp_path, "--out", tmp_path / "o"), "no images in"),
    ]:
        code, lines = ganzoo_run(*args)
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, lines)


def test_a_request_too_large_for_memory_is_refused_but_batches_still_stream(models, monkeypatch):
    model = GanzooModel(models / "generator.onnx")
    monkeypatch.setattr(runtime, "available_memory", lambda: 1_000_000)  # 1 MB free
    with pytest.raises(RuntimeInputError, match=r"5,000 images of 16x16x1 need .* GiB, more than half .* iter_generate"):
        model.generate(5000)
    assert model.generate(1000).shape == (1000, 16, 16, 1)  # 256 kB fits
    # The same request batch by batch: only one batch of latents and images exists at a time.
    batches = model.iter_generate(10**9, seed=3, batch_size=4)
    start, first = next(batches)
    assert start == 0 and first.shape == (4, 16, 16, 1)
    np.testing.assert_array_equal(first, model.generate(4, seed=3))
    start, second = next(batches)
    assert start == 4
    np.testing.assert_array_equal(second, model.generate(8, seed=3)[4:])
