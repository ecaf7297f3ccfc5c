"""`ganzoo import MODULE:CLASS WEIGHTS`: generators from outside ganzoo become ganzoo ONNX files.

The classes below stand for a user's own code: the CLI imports them from this module by name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganzoo.cli.app import main
from ganzoo_export import GanzooModel
from ganzoo_export.images import from_uint8, to_uint8
from ganzoo_export.latents import latents

HERE = Path(__file__).resolve().parent


class PixTranslator(nn.Module):
    """A pix2pix-style encoder-decoder as another code base would write it (two stride-2 stages)."""

    def __init__(self, channels: int = 3, width: int = 16, blocks: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width),
                                   nn.ReLU(True)]
        for scale in (1, 2):
            layers += [nn.Conv2d(width * scale, width * scale * 2, 3, 2, 1), nn.InstanceNorm2d(width * scale * 2),
                       nn.ReLU(True)]
        for _ in range(blocks):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(width * 4, width * 4, 3), nn.InstanceNorm2d(width * 4),
                       nn.ReLU(True)]
        for scale in (4, 2):
            layers += [nn.ConvTranspose2d(width * scale, width * scale // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(width * scale // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class LabelGenerator(nn.Module):
    """A conditional DCGAN generator taking (N, nz, 1, 1) noise and class indices."""

    def __init__(self, nz: int = 8, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(classes, nz)
        self.net = nn.Sequential(nn.ConvTranspose2d(nz, 8, 4, 1, 0), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z, label):
        return self.net(z * self.embed(label)[:, :, None, None])


def ganzoo_import(*args, check: bool = True) -> subprocess.CompletedProcess:
    # From this folder, as a user runs it next to their own module.
    done = subprocess.run([sys.executable, "-m", "ganzoo", "import", *map(str, args)], capture_output=True,
                          text=True, cwd=HERE, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("foreign")
    torch.manual_seed(0)
    net = PixTranslator(width=8, blocks=2).eval()
    with torch.no_grad():  # trained-looking statistics: affine norms away from identity
        for layer in net.modules():
            if isinstance(layer, nn.Conv2d):
                layer.weight.mul_(1.5)
    # Saved as DataParallel does, inside a checkpoint dict: both are unwrapped on import.
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, folder / "G.pth")
    out = folder / "pix.onnx"
    done = ganzoo_import("test_import_foreign:PixTranslator", folder / "G.pth", "--task", "translate",
                         "--option", "width=8", "--option", "blocks=2", "--direction", "edges2shoes",
                         "--data-license", "BSD-3-Clause", "--out", out)
    assert f"wrote {out}" in done.stdout
    return net, out


def test_a_foreign_translator_exports_with_parity_1e5(translator):
    net, path = translator
    model = GanzooModel(path)
    meta = model.metadata
    assert (meta.task, meta.plugin, meta.direction) == ("translate", "test_import_foreign:PixTranslator", "edges2shoes")
    assert (meta.size_multiple, meta.min_size, meta.max_size, meta.padding_mode) == (4, 8, 512, "reflect")
    assert meta.data_license == "BSD-3-Clause" and "PixTranslator from test_import_foreign" in meta.description
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 3, 36, 44)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    assert np.abs(model.run_raw(source=batch)["image"] - expected).max() <= 1e-5


def test_the_imported_translator_pads_and_tiles_like_any_ganzoo_translator(translator):
    net, path = translator
    image = np.random.default_rng(2).integers(0, 256, (30, 23, 3), dtype=np.uint8)
    padded = np.pad(from_uint8(image), ((0, 2), (0, 1), (0, 0)), mode="reflect")  # to multiples of 4
    with torch.no_grad():
        expected = to_uint8(net(torch.from_numpy(padded.transpose(2, 0, 1)[None].copy())).numpy())[0, :30, :23]
    translated = GanzooModel(path).translate(image)
    assert translated.shape == (30, 23, 3)
    assert np.abs(translated.astype(int) - expected.astype(int)).max() <= 1


def test_a_foreign_conditional_generator_samples_by_class_name(tmp_path):
    torch.manual_seed(3)
    net = LabelGenerator().eval()
    torch.save(net.state_dict(), tmp_path / "G.pt")
    out = tmp_path / "gen.onnx"
    with pytest.raises(SystemExit) as exited:
        main(["import", "test_import_foreign:LabelGenerator", str(tmp_path / "G.pt"), "--task", "generate",
              "--latent-shape", "8,1,1", "--class-names", "cat,dog,fox", "--out", str(out)])
    assert exited.value.code == 0
    model = GanzooModel(out)
    assert model.metadata.latent_dim == 8 and model.metadata.class_names == ["cat", "dog", "fox"]
    images = model.generate(3, seed=7, labels="fox")
    with torch.no_grad():
        z = torch.from_numpy(latents(7, 0, 3, (8, 1, 1)))
        expected = to_uint8(net(z, torch.tensor([2, 2, 2])).numpy())
    assert images.shape == (3, 8, 8, 3)
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1


def test_import_mistakes_are_one_line(tmp_path, capsys):
    net = PixTranslator(width=4, blocks=1)
    torch.save(net.state_dict(), tmp_path / "small.pth")
    torch.save(net, tmp_path / "pickled.pth")  # the whole module: code, not just tensors
    target = "test_import_foreign:PixTranslator"
    for args, message in [
        ((target, tmp_path / "pickled.pth", "--task", "translate"), "holds pickled Python objects"),
        ((target, tmp_path / "small.pth", "--task", "translate", "--option", "depth=3"),
         "takes no argument 'depth': its arguments are channels, width, blocks"),
        ((target, tmp_path / "small.pth", "--task", "translate"), "does not fit PixTranslator as built"),
        ((target, tmp_path / "small.pth", "--task", "translate", "--option", "width=four"),
         "width='four' is not a valid int"),
        (("no_such_module:Net", tmp_path / "small.pth", "--task", "translate"), "cannot import no_such_module"),
        ((target, tmp_path / "small.pth"), "needs --task translate or --task generate"),
        ((target, tmp_path / "small.pth", "--task", "generate", "--option", "width=4"), "needs --latent-shape"),
    ]:
        with pytest.raises(SystemExit) as exited:  # in-process: this module is importable here already
            main(["import", *map(str, args), "--out", str(tmp_path / "x.onnx")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exited.value.code == 2 and len(lines) == 1 and message in lines[0], (args, lines)
    assert not (tmp_path / "x.onnx").exists()
