"""The ganzoo-runtime distribution on its own: a fresh environment without torch.

The wheel is built from export/ and installed with pip into a new virtual environment. Nothing
is downloaded: its dependencies (onnxruntime, numpy, Pillow and what they require) are the very
distributions this environment holds, made visible to the new one through a .pth file, as an
offline wheelhouse would provide them; torch is not among them, and the test proves it cannot be
imported there.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

from ganzoo_export.web import ORT_WEB_FILES
from tiny_models import (
    TinyConditionalGenerator,
    TinyResnetTranslator,
    export_conditional,
    export_resnet_translator,
)

EXPORT = Path(__file__).resolve().parents[1] / "export"
RUNTIME_DEPENDENCIES = ("numpy", "pillow", "onnxruntime")


def run(*args) -> subprocess.CompletedProcess:
    """Run a command outside the checkout (python -c puts the working folder on sys.path)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=300, env=env, cwd=tempfile.gettempdir())
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def installed_distribution(name: str) -> metadata.Distribution:
    """The installed distribution of ``name``; "onnxruntime" is whichever build provides it."""
    for candidate in ("onnxruntime-gpu", "onnxruntime") if name.startswith("onnxruntime") else (name,):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            continue
    raise metadata.PackageNotFoundError(name)


def provide(names: tuple[str, ...], folder: Path) -> set[str]:
    """Symlink the files of ``names`` and everything they require into ``folder``."""
    folder.mkdir()
    seen: set[str] = set()
    queue = list(names)
    while queue:
        dist = installed_distribution(queue.pop())
        name = canonicalize_name(dist.metadata["Name"])
        if name in seen:
            continue
        seen.add(name)
        for top in {Path(str(file)).parts[0] for file in dist.files or []} - {".."}:
            if not (folder / top).exists() and Path(dist.locate_file(top)).exists():
                (folder / top).symlink_to(Path(dist.locate_file(top)))
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return seen


@pytest.fixture(scope="module")
def runtime_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime-only")
    wheels = root / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", EXPORT, "-w", wheels)
    (wheel,) = wheels.glob("ganzoo_runtime-*.whl")
    env = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    provided = provide(RUNTIME_DEPENDENCIES, root / "provided")
    (site / "provided.pth").write_text(str(root / "provided") + "\n")
    # This environment's pip, working on the new interpreter (pip --python), offline.
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-deps", wheel)
    return {"root": root, "python": python, "bin": env / "bin", "wheel": wheel, "provided": provided}


def test_the_wheel_depends_on_onnxruntime_numpy_and_pillow_only(runtime_env):
    with zipfile.ZipFile(runtime_env["wheel"]) as archive:
        meta = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1].strip() for line in archive.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
        names = {Path(name).parts[0] for name in archive.namelist()}
    assert sorted(canonicalize_name(Requirement(text).name) for text in requires) == [
        "numpy", "onnxruntime", "onnxruntime-gpu", "pillow",
    ]
    markers = {Requirement(text).name: str(Requirement(text).marker) for text in requires}
    # Exactly one onnxruntime build on any platform: the GPU one where ganzoo itself uses it.
    assert markers["onnxruntime-gpu"] == 'platform_system == "Linux" and platform_machine == "x86_64"'
    assert markers["onnxruntime"] == 'platform_system != "Linux" or platform_machine != "x86_64"'
    assert "ganzoo_export" in names and "ganzoo" not in names and "ganzoo_plugins" not in names
    with zipfile.ZipFile(runtime_env["wheel"]) as archive:  # what `ganzoo-run web` copies
        assert {"ganzoo_export/js/src/model.js", "ganzoo_export/js/site/index.html"} <= set(archive.namelist())
    assert "torch" not in runtime_env["provided"]


def test_pip_check_passes_and_torch_is_absent(runtime_env):
    python = runtime_env["python"]
    run(sys.executable, "-m", "pip", "--python", python, "check")
    probe = "import importlib.util, json; print(json.dumps([importlib.util.find_spec(m) is None for m in ('torch', 'ganzoo')]))"
    assert json.loads(run(python, "-c", probe).stdout) == [True, True]


def test_generate_sample_by_class_name_and_translate_without_torch(runtime_env, tmp_path):
    torch.manual_seed(0)
    conditional = TinyConditionalGenerator().eval()
    export_conditional(conditional, tmp_path / "cgan.onnx")
    translator = TinyResnetTranslator().eval()
    export_resnet_translator(translator, tmp_path / "cyclegan.onnx")
    ganzoo_run = runtime_env["bin"] / "ganzoo-run"

    out = run(ganzoo_run, "generate", tmp_path / "cgan.onnx", "-n", "4", "--seed", "7", "--class", "two",
              "--out", tmp_path / "twos").stdout
    assert "wrote 4 images" in out
    twos = np.stack([np.asarray(Image.open(tmp_path / "twos" / f"{i:04d}.png")) for i in range(4)])
    # The same images this environment's runtime draws, class given by index.
    from ganzoo_export import GanzooModel

    expected = GanzooModel(tmp_path / "cgan.onnx").generate(4, seed=7, labels=2)[..., 0]
    np.testing.assert_array_equal(twos, expected)

    photo = np.random.default_rng(1).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo).save(tmp_path / "photos" / "photo.png")
    run(ganzoo_run, "translate", tmp_path / "cyclegan.onnx", tmp_path / "photos", "--out", tmp_path / "translated")
    translated = np.asarray(Image.open(tmp_path / "translated" / "photo.png"))
    assert translated.shape == (21, 30, 3)
    np.testing.assert_array_equal(translated, GanzooModel(tmp_path / "cyclegan.onnx").translate(photo))

    script = (
        "import sys; from ganzoo_export import GanzooModel; m = GanzooModel(sys.argv[1]); "
        "print(m.metadata.class_names, m.generate(3, seed=1, labels=['zero', 'one', 'two']).shape, "
        "'torch' in sys.modules)"
    )
    assert run(runtime_env["python"], "-c", script, tmp_path / "cgan.onnx").stdout.strip() == (
        "['zero', 'one', 'two'] (3, 16, 16, 1) False"
    )
    card = run(runtime_env["python"], "-m", "ganzoo_export", "info", tmp_path / "cyclegan.onnx").stdout
    assert "at least 8 px" in card
    ort_web = tmp_path / "ort-web"  # stands in for onnxruntime-web's dist/: only copied here
    ort_web.mkdir()
    for name in ORT_WEB_FILES:
        (ort_web / name).write_text("//")
    run(ganzoo_run, "web", tmp_path / "cgan.onnx", "--out", tmp_path / "site", "--onnxruntime-web", ort_web)
    assert (tmp_path / "site" / "ganzoo" / "model.js").read_text() == (EXPORT / "js" / "src" / "model.js").read_text()
