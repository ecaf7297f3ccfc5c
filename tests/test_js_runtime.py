"""The JavaScript runtime (export/js) against the Python one: the same latents, outputs within 1e-5.

Needs Node and `npm ci --prefix export/js` (as .ci/run does); without them these tests skip,
unless GANZOO_REQUIRE_JS=1 (set by .ci/run) makes the missing tools an error.
"""

from __future__ import annotations

import base64
import json
import subprocess

import numpy as np
import pytest

from ganzoo_export import GanzooModel
from ganzoo_export.images import from_uint8
from ganzoo_export.latents import latents
from ganzoo_export.tiling import translate_image
from js_tools import JS, node_or_skip
from tiny_models import export_tiny_models


@pytest.fixture(scope="module")
def node():
    return node_or_skip()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return export_tiny_models(tmp_path_factory.mktemp("js-models"), seed=5)


def ask_node(node: str, request: dict) -> dict:
    done = subprocess.run(
        [node, str(JS / "test" / "dump.mjs")], input=json.dumps(request), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def decode(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


@pytest.mark.parametrize("model_name, labels", [("generator.onnx", None), ("conditional.onnx", "two")])
def test_seed_7_gives_the_same_latents_and_images_in_python_and_node(node, models, model_name, labels):
    answer = ask_node(node, {"model": str(models / model_name), "task": "generate", "seed": 7, "n": 6, "labels": labels})
    model = GanzooModel(models / model_name)
    ours = latents(7, 0, 6, (8,))
    np.testing.assert_array_equal(decode(answer["latents"], np.float32).reshape(6, 8), ours)  # bit for bit
    feeds = {"z": ours}
    if labels is not None:
        feeds["label"] = np.full(6, 2, dtype=np.int64)
    raw = model.run_raw(**feeds)["image"]
    assert np.abs(decode(answer["raw"], np.float32).reshape(raw.shape) - raw).max() <= 1e-5
    images = model.generate(6, seed=7, labels=labels)
    levels = decode(answer["images"], np.uint8).reshape(images.shape).astype(int)
    assert np.abs(levels - images.astype(int)).max() <= 1  # rounding 1e-7 apart can flip a level at .5


@pytest.mark.parametrize("tile", [64, 16])  # one window, and overlapping tiles
def test_translation_pads_and_tiles_the_same_in_python_and_node(node, models, tile):
    image = np.random.default_rng(3).integers(0, 256, (29, 43, 3), dtype=np.uint8)
    answer = ask_node(node, {
        "model": str(models / "translator.onnx"), "task": "translate", "image": base64.b64encode(image.tobytes()).decode(),
        "height": 29, "width": 43, "channels": 3, "tile": tile,
    })
    model = GanzooModel(models / "translator.onnx")
    seen = []

    def run(batch):
        seen.append(batch.shape)
        return model.run_raw(image=batch)["translated"]

    expected = translate_image(from_uint8(image), run, 4, tile=tile, overlap=min(32, tile // 4))
    assert (len(seen) > 1) == (tile == 16)
    translated = decode(answer["translated"], np.float32).reshape(expected.shape)
    assert np.abs(translated - expected).max() <= 1e-5


def test_the_node_test_suite_passes(node):
    done = subprocess.run(["npm", "test"], cwd=JS, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
