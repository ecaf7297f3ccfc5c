"""`ganzoo translate`: folders of odd sizes and modes, both backends, tiling, any translator."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.api import train
from ganzoo.cli.app import main
from ganzoo.cli.translate_cmd import run_translator
from ganzoo_plugins.cyclegan.networks import ResnetGenerator

QUIET = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def translator_run(tmp_path_factory) -> Path:
    """A one-step tiny CycleGAN run with both directions exported."""
    base = tmp_path_factory.mktemp("translate")
    rng = np.random.default_rng(0)
    for domain in ("trainA", "trainB"):
        (base / "data" / domain).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(base / "data" / domain / f"{i}.png")
    run = base / "run"
    train("cyclegan", preset="tiny", steps=1, out=run, overrides={**QUIET, "dataset": str(base / "data")})
    assert main_ok(["export", str(run)])
    return run


def main_ok(argv) -> bool:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code in (0, None)


def main_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def pixels(h, w, c=3, seed=0):
    shape = (h, w, c) if c > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_odd_folder(folder: Path) -> dict[str, tuple[int, int]]:
    """Images of assorted sizes, modes and formats; returns name -> upright (width, height)."""
    folder.mkdir(parents=True)
    Image.fromarray(pixels(37, 51)).save(folder / "rgb.png")
    Image.fromarray(pixels(20, 13, 1)).save(folder / "gray.png")
    Image.fromarray(pixels(19, 23, 4), "RGBA").save(folder / "alpha.png")
    Image.fromarray(pixels(25, 17)).convert("P").save(folder / "palette.gif")
    Image.fromarray(pixels(18, 30, 1).astype(np.uint16) * 257).save(folder / "sixteen.png")
    Image.fromarray(pixels(9, 11)).save(folder / "small.bmp")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.fromarray(pixels(20, 30)).save(folder / "rotated.jpg", exif=exif)
    (folder / "notes.txt").write_text("not an image, not picked up")
    return {
        "rgb.png": (51, 37), "gray.png": (13, 20), "alpha.png": (23, 19), "palette.gif": (17, 25),
        "sixteen.png": (30, 18), "small.bmp": (11, 9), "rotated.jpg": (20, 30),
    }


def test_folder_of_odd_sizes_and_modes_keeps_names_sizes_and_formats(translator_run, tmp_path, capsys):
    expected = write_odd_folder(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG truncated")
    model = translator_run / "exports" / "cyclegan-AtoB.onnx"

    assert main_ok(["translate", str(model), str(tmp_path / "in"), "--out", str(tmp_path / "out")])

    captured = capsys.readouterr()
    assert "translated 7 images (AtoB)" in captured.out
    assert "skipped 1 unreadable images" in captured.err and "broken.png" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    for name, size in expected.items():
        with Image.open(tmp_path / "out" / name) as result, Image.open(tmp_path / "in" / name) as source:
            assert result.size == size, name
            assert result.format == source.format, name


def test_strict_stops_at_an_unreadable_file(translator_run, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    model = translator_run / "exports" / "cyclegan-AtoB.onnx"
    err = main_error(["translate", str(model), str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--strict"], capsys)
    assert "broken.png" in err and "without strict" in err


def test_run_folder_and_onnx_file_translate_alike(translator_run, tmp_path):
    Image.fromarray(pixels(45, 29, seed=3)).save(tmp_path / "photo.jpg")
    onnx_model = translator_run / "exports" / "cyclegan-BtoA.onnx"
    common = [str(tmp_path / "photo.jpg"), "--direction", "BtoA", "--format", "png"]
    assert main_ok(["translate", str(translator_run), *common, "--out", str(tmp_path / "torch")])
    assert main_ok(["translate", str(onnx_model), *common, "--out", str(tmp_path / "onnx")])
    by_torch = np.asarray(Image.open(tmp_path / "torch" / "photo.png"), dtype=int)
    by_onnx = np.asarray(Image.open(tmp_path / "onnx" / "photo.png"), dtype=int)
    assert by_torch.shape == (45, 29, 3)
    assert np.abs(by_torch - by_onnx).max() <= 1


def test_large_images_run_in_bounded_tiles_on_both_backends(translator_run):
    from ganzoo_export.runtime import GanzooModel

    seen = []
    hook = nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape[-2:])) if isinstance(module, ResnetGenerator) else None
    )
    try:
        translator = run_translator(translator_run, "AtoB", "cpu", None, tile=32, overlap=8)
        image = pixels(70, 90, seed=4)
        by_torch = translator.translate(image)
    finally:
        hook.remove()
    assert by_torch.shape == (70, 90, 3)
    assert len(seen) > 1 and max(h for h, _ in seen) <= 32 and max(w for _, w in seen) <= 32
    onnx_model = GanzooModel(translator_run / "exports" / "cyclegan-AtoB.onnx", providers=["CPUExecutionProvider"])
    by_onnx = onnx_model.translate(image, tile=32, overlap=8)
    assert np.abs(by_torch.astype(int) - by_onnx.astype(int)).max() <= 1


def test_direction_must_be_chosen_and_must_exist(translator_run, tmp_path, capsys):
    Image.fromarray(pixels(8, 8)).save(tmp_path / "x.png")
    out = ["--out", str(tmp_path / "out")]
    err = main_error(["translate", str(translator_run), str(tmp_path / "x.png"), *out], capsys)
    assert "AtoB and BtoA" in err and "--direction" in err
    onnx_model = translator_run / "exports" / "cyclegan-AtoB.onnx"
    err = main_error(["translate", str(onnx_model), str(tmp_path / "x.png"), "--direction", "BtoA", *out], capsys)
    assert "translates AtoB, not BtoA" in err


def test_bad_requests_fail_with_one_line(translator_run, tmp_path, capsys):
    model = str(translator_run / "exports" / "cyclegan-AtoB.onnx")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    Image.fromarray(pixels(8, 8)).save(tmp_path / "one" / "same.png")
    Image.fromarray(pixels(8, 8)).save(tmp_path / "two" / "same.png")
    assert "would both be written" in main_error(
        ["translate", model, str(tmp_path / "one"), str(tmp_path / "two"), "--out", str(tmp_path / "o")], capsys
    )
    assert "would overwrite the input" in main_error(
        ["translate", model, str(tmp_path / "one"), "--out", str(tmp_path / "one")], capsys
    )
    assert "not an image format" in main_error(
        ["translate", model, str(tmp_path / "one"), "--out", str(tmp_path / "o"), "--format", "docx"], capsys
    )
    assert "no file or folder" in main_error(["translate", model, str(tmp_path / "nope.png"), "--out", "o"], capsys)
    assert "--tile 2 is smaller than the 4 pixels" in main_error(
        ["translate", model, str(tmp_path / "one"), "--out", str(tmp_path / "o"), "--tile", "2"], capsys
    )


class Negate(nn.Module):
    def forward(self, x):
        return -x


class Constant(nn.Module):
    def forward(self, z):
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 4, 4))


def export_toy(module, example, path, task, inputs, **fields):
    from ganzoo.export.trace import export_onnx
    from ganzoo_export.metadata import InputSpec, ModelMetadata

    name, role, shape, axes = inputs
    metadata = ModelMetadata(
        plugin="toy", plugin_version="1", ganzoo_version="0", task=task, channels=3,
        inputs=[InputSpec(name, role, shape)], **fields,
    )
    export_onnx(module, (example,), path, input_names=[name], dynamic_axes={name: axes}, metadata=metadata)
    return path


def test_any_translator_onnx_is_accepted_and_generators_are_refused(tmp_path, capsys):
    image_axes = {0: "batch", 2: "height", 3: "width"}
    toy = export_toy(
        Negate(), torch.zeros(1, 3, 8, 8), tmp_path / "negate.onnx", "translate",
        ("pixels", "image", ("batch", 3, "height", "width"), image_axes),
    )
    Image.fromarray(pixels(13, 7)).save(tmp_path / "in.png")
    assert main_ok(["translate", str(toy), str(tmp_path / "in.png"), "--out", str(tmp_path / "out")])
    assert "as exported" in capsys.readouterr().out
    negated = np.asarray(Image.open(tmp_path / "out" / "in.png"), dtype=int)
    assert np.abs(negated - (255 - pixels(13, 7).astype(int))).max() <= 1

    generator = export_toy(
        Constant(), torch.zeros(2, 4), tmp_path / "gen.onnx", "generate",
        ("latent", "latent", ("batch", 4), {0: "batch"}), latent_dim=4, height=4, width=4,
    )
    err = main_error(["translate", str(generator), str(tmp_path / "in.png"), "--out", str(tmp_path / "o2")], capsys)
    assert "generate model" in err and "ganzoo generate" in err
