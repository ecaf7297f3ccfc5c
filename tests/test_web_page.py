"""`ganzoo web MODEL.onnx --out site/`: the static page, opened in headless Chromium.

Needs Node, `npm ci --prefix export/js` (onnxruntime-web, playwright-core) and Debian's chromium;
without them the browser tests skip, unless GANZOO_REQUIRE_JS=1 (as in .ci/run). Nothing is
downloaded: onnxruntime-web comes from export/js/node_modules. Screenshots are kept in each
test's temporary folder.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo_export import GanzooModel, RuntimeInputError
from ganzoo_export import web as web_module
from ganzoo_export.images import make_grid
from ganzoo_export.latents import latents
from ganzoo_export.web import ORT_WEB_FILES, ORT_WEB_INTEGRITY, ORT_WEB_VERSION, write_site
from js_tools import JS, node_or_skip, unavailable
from tiny_models import TinyConditionalGenerator, export_conditional, export_tiny_models

CHROMIUM = os.environ.get("GANZOO_CHROMIUM", "/usr/bin/chromium")
ORT_WEB = JS / "node_modules" / "onnxruntime-web"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return export_tiny_models(tmp_path_factory.mktemp("web-models"), seed=9)


@pytest.fixture(scope="module")
def browser_tools():
    node = node_or_skip()
    if not Path(CHROMIUM).is_file():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set GANZOO_CHROMIUM)")
    if not (JS / "node_modules" / "playwright-core").is_dir():
        unavailable("export/js has no playwright-core: run `npm ci --prefix export/js`")
    return node


def serve(folder: Path):
    """A static file server for ``folder`` on a free local port, in a thread."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def open_in_chromium(node: str, site: Path, request: dict) -> dict:
    server = serve(site)
    try:
        request = {**request, "url": f"http://127.0.0.1:{server.server_port}/index.html", "chromium": CHROMIUM}
        done = subprocess.run([node, str(JS / "test" / "browser.mjs")], input=json.dumps(request),
                              capture_output=True, text=True, timeout=240, cwd=JS)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["status"].startswith("done"), answer
    pixels = np.frombuffer(base64.b64decode(answer["rgba"]), np.uint8)
    answer["pixels"] = pixels.reshape(answer["height"], answer["width"], 4)
    return answer


def test_the_site_holds_everything_and_no_server_code(tmp_path, models):
    site = tmp_path / "site"
    message = write_site(models / "conditional.onnx", site, ORT_WEB if ORT_WEB.is_dir() else fake_ort_web(tmp_path))
    assert "python -m http.server" in message
    files = sorted(str(path.relative_to(site)) for path in site.rglob("*") if path.is_file())
    assert files == sorted([
        ".ganzoo-web", "app.js", "index.html", "model.onnx", "ort/LICENSE.txt", *(f"ort/{name}" for name in ORT_WEB_FILES),
        *(f"ganzoo/{name}" for name in web_module.RUNTIME_FILES),
    ])
    assert (site / "model.onnx").read_bytes() == (models / "conditional.onnx").read_bytes()
    write_site(models / "generator.onnx", site, ORT_WEB if ORT_WEB.is_dir() else fake_ort_web(tmp_path))  # own folder: replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RuntimeInputError, match="is not empty and was not written by `ganzoo web`"):
        write_site(models / "generator.onnx", tmp_path / "mine", fake_ort_web(tmp_path))
    with pytest.raises(RuntimeInputError, match="holds no onnxruntime-web build"):
        write_site(models / "generator.onnx", tmp_path / "new", tmp_path)


def smaller_file(models: Path, precision: str, folder: Path) -> Path:
    """The conditional generator again at ``precision`` (int8: calibrated on its seeded latents)."""
    if precision == "fp32":
        return models / "conditional.onnx"
    torch.manual_seed(9)
    module = TinyConditionalGenerator()
    calibration = [{"z": latents(0, 8 * i, 8, (8,)), "label": np.arange(8) % 3} for i in range(4)]
    path = folder / f"conditional-{precision}.onnx"
    export_conditional(module, path, precision=precision, calibration=calibration if precision == "int8" else ())
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_the_page_generates_the_same_grid_as_python(tmp_path, models, browser_tools, precision):
    model = smaller_file(models, precision, tmp_path)
    site = tmp_path / "site"
    write_site(model, site, ORT_WEB)
    screenshot = tmp_path / "generate.png"
    answer = open_in_chromium(browser_tools, site, {"screenshot": str(screenshot), "generate": {"n": 9, "seed": 7, "label": "two"}})
    assert answer["classes"] == ["", "zero", "one", "two"]  # every class in turn, then each class by name
    expected = make_grid(GanzooModel(model).generate(9, seed=7, labels="two"), nrow=3)
    assert answer["pixels"].shape[:2] == expected.shape[:2] == (56, 56)
    rgb = answer["pixels"][:, :, :3].astype(int)
    assert rgb.std() > 10  # not blank
    assert np.abs(rgb - expected.astype(int)).max() <= 1  # grey in all three channels, Python's levels
    assert (answer["pixels"][:, :, 3] == 255).all()
    assert screenshot.stat().st_size > 1000 and Image.open(screenshot).size[0] > 100


@pytest.mark.slow
def test_the_page_generates_digits_of_every_class(tmp_path, browser_tools):
    """A CGAN trained on the built-in digits (tests/data/README.md), drawn by the page."""
    import torch

    from ganzoo.metrics.classifier import digit_quality

    model = DATA / "cgan-digits16.onnx"
    site = tmp_path / "site"
    write_site(model, site, ORT_WEB)
    screenshot = tmp_path / "digits.png"
    answer = open_in_chromium(browser_tools, site, {"screenshot": str(screenshot), "generate": {"n": 30, "seed": 7}})
    images = GanzooModel(model).generate(30, seed=7)  # no class: image i is digit i mod 10
    grid = make_grid(images, nrow=6)
    assert np.abs(answer["pixels"][:, :, :3].astype(int) - grid.astype(int)).max() <= 1
    cells = np.stack([answer["pixels"][2 + 18 * (i // 6) : 18 + 18 * (i // 6), 2 + 18 * (i % 6) : 18 + 18 * (i % 6), 0]
                      for i in range(30)])
    digits = torch.from_numpy(cells).float()[:, None] / 127.5 - 1
    quality = digit_quality(digits, torch.arange(30) % 10)
    assert quality["requested_class_share"] >= 0.7 and quality["classes_covered"] == 10, quality
    assert screenshot.is_file()


def test_the_page_translates_a_dropped_in_image_like_python(tmp_path, models, browser_tools):
    site = tmp_path / "site"
    write_site(models / "translator.onnx", site, ORT_WEB)
    image = np.random.default_rng(4).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    screenshot = tmp_path / "translate.png"
    answer = open_in_chromium(browser_tools, site, {"screenshot": str(screenshot), "translate": {"file": str(tmp_path / "photo.png")}})
    expected = GanzooModel(models / "translator.onnx").translate(image)  # 37x50 > 32: tiled, as in the browser
    assert answer["pixels"].shape[:2] == (37, 50)
    assert np.abs(answer["pixels"][:, :, :3].astype(int) - expected.astype(int)).max() <= 1
    assert screenshot.is_file()


def fake_ort_web(tmp_path: Path) -> Path:
    """A folder shaped like onnxruntime-web's dist/ (for the tests that only copy files)."""
    folder = tmp_path / "fake-ort" / "dist"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ORT_WEB_FILES:
        (folder / name).write_text(f"// {name}\n")
    return folder.parent


def test_onnxruntime_web_is_found_or_downloaded_and_checked(tmp_path, monkeypatch):
    fake = fake_ort_web(tmp_path)
    project = tmp_path / "app"
    (project / "node_modules").mkdir(parents=True)
    shutil.copytree(fake, project / "node_modules" / "onnxruntime-web")
    monkeypatch.chdir(project / "node_modules")
    monkeypatch.delenv("GANZOO_ONNXRUNTIME_WEB", raising=False)
    assert web_module.find_onnxruntime_web() == project / "node_modules" / "onnxruntime-web" / "dist"
    monkeypatch.setenv("GANZOO_ONNXRUNTIME_WEB", str(fake / "dist"))
    assert web_module.find_onnxruntime_web() == fake / "dist"
    # The registry download, from a local tarball: used only if its sha512 matches the pin.
    tarball = tmp_path / "ort.tgz"
    subprocess.run(["tar", "czf", tarball, "-C", fake.parent, "--transform", "s,^fake-ort,package,", "fake-ort"], check=True)
    digest = "sha512-" + base64.b64encode(__import__("hashlib").sha512(tarball.read_bytes()).digest()).decode()
    cache = tmp_path / "cache" / "onnxruntime-web"
    got = web_module.download_onnxruntime_web(tarball.as_uri(), digest, cache)
    assert got == cache and sorted(p.name for p in cache.iterdir()) == sorted(ORT_WEB_FILES)
    with pytest.raises(RuntimeInputError, match="does not match its pinned sha512; not used"):
        web_module.download_onnxruntime_web(tarball.as_uri(), ORT_WEB_INTEGRITY, tmp_path / "cache" / "other")
    assert not (tmp_path / "cache" / "other").exists()


def test_the_pinned_onnxruntime_web_is_the_one_the_js_package_locks():
    lock = json.loads((JS / "package-lock.json").read_text())["packages"]["node_modules/onnxruntime-web"]
    assert (lock["version"], lock["integrity"]) == (ORT_WEB_VERSION, ORT_WEB_INTEGRITY)
