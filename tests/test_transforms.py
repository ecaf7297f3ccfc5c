"""albumentations' work: the shared decode pipeline, the paired one, and a user's own pipeline applied
per draw, the same for both images of a pair, and reproducible from (seed, epoch, item)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data.catalog import open_data
from ganzoo.data.options import DataConfig
from ganzoo.data.sources import BatchStream
from ganzoo.data.streamed import make_source
from ganzoo.data.transforms import A, UserPipeline, resize_center_crop, resize_center_crop_pair
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts
from translation_helpers import assert_resume_is_exact

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
QUIET = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100, "workers": 0}


def save_pipeline(path: Path, *transforms) -> Path:
    A.save(A.Compose(list(transforms)), str(path), data_format="yaml" if path.suffix == ".yaml" else "json")
    return path


def noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_albumentations_is_imported_and_silenced_in_one_place():
    sources = [p for root in ("ganzoo", "plugins", "export", "tests", "benchmarks") for p in (REPO / root).rglob("*.py")]
    imports = re.compile(r"^\s*(?:import|from)\s+albumentations\b", re.MULTILINE)
    importing = sorted(str(p.relative_to(REPO)) for p in sources if imports.search(p.read_text()))
    silencing = sorted(str(p.relative_to(REPO)) for p in sources if "NO_" + "ALBUMENTATIONS_UPDATE" in p.read_text())
    assert importing == silencing == ["ganzoo/data/transforms.py"]
    # ... and that one place works: no request for the latest version, even with the variable unset.
    code = (
        "import os, urllib.request\n"
        "os.environ.pop('NO_" + "ALBUMENTATIONS_UPDATE', None)\n"
        "calls = []\n"
        "urllib.request.build_opener = lambda *a, **k: calls.append(a)\n"
        "import ganzoo.data.transforms\n"
        "print(len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", out.stderr


def test_a_pair_goes_through_one_resize_and_crop():
    a, b = noise((30, 45, 3), 1), noise((30, 45, 3), 2)
    pair_a, pair_b = resize_center_crop_pair(a, b, 16)
    assert np.array_equal(pair_a, resize_center_crop(a, 16)) and np.array_equal(pair_b, resize_center_crop(b, 16))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_user_pipeline_is_reproducible_per_seed(tmp_path, suffix):
    path = save_pipeline(tmp_path / f"p{suffix}", A.HorizontalFlip(p=0.5), A.ColorJitter(p=1.0))
    pipeline = UserPipeline(path)
    image = noise((16, 16, 3))
    first = pipeline(image, seed=7)
    assert np.array_equal(first, UserPipeline(path)(image, seed=7))  # a fresh process would draw the same
    assert not np.array_equal(first, image)
    assert any(not np.array_equal(first, pipeline(image, seed=s)) for s in range(8, 12))


def test_a_user_pipeline_moves_both_images_of_a_pair_alike(tmp_path):
    path = save_pipeline(tmp_path / "p.json", A.RandomRotate90(p=1.0), A.Transpose(p=0.5), A.ColorJitter(p=1.0))
    pipeline = UserPipeline(path, split=3)
    image = noise((16, 16, 3))
    for seed in range(6):
        out = pipeline(np.concatenate([image, image], axis=2), seed)
        # Identical inputs stay identical only if A and B got the same rotation, transpose and colours.
        assert np.array_equal(out[..., :3], out[..., 3:]), seed
    alone = UserPipeline(path)(image, 5)
    assert np.array_equal(pipeline(np.concatenate([image, image], axis=2), 5)[..., :3], alone)


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ([A.RandomCrop(8, 8)], "must keep the size"),
        ([A.Normalize()], "not uint8"),
    ],
)
def test_a_pipeline_that_changes_size_or_type_fails_before_training(tmp_path, transforms, message):
    path = save_pipeline(tmp_path / "p.json", *transforms)
    with pytest.raises(UserError, match=message):
        open_data(DataConfig(dataset="digit-pairs", size=16, transform=str(path)), Accepts("paired"))


def test_unreadable_pipelines_are_one_line_errors(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"transform": {"__class_fullname__": "NoSuchTransform", "p": 1.0}}))
    (tmp_path / "p.txt").write_text("")
    for path, message in ((tmp_path / "bad.json", "cannot read"), (tmp_path / "p.txt", ".json or .yaml"),
                          (tmp_path / "absent.yaml", "not found")):
        with pytest.raises(UserError, match=message) as caught:
            UserPipeline(path)
        assert "\n" not in str(caught.value)


def test_in_memory_and_streamed_data_draw_the_same_transformed_batches_and_resume(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(noise((16, 16, 3), i)).save(folder / f"{i}.png")
    path = save_pipeline(tmp_path / "p.json", A.Rotate(limit=30, p=1.0), A.ColorJitter(p=1.0))

    def stream(streamed: bool) -> BatchStream:
        opened = open_data(DataConfig(dataset=str(folder), size=16, transform=str(path), stream=streamed), Accepts("images"))
        return BatchStream(make_source(opened.a, CPU, 1, False, 0, 1, None, 0, 4, opened.transform))

    plain = open_data(DataConfig(dataset=str(folder), size=16), Accepts("images"))
    untransformed = BatchStream(make_source(plain.a, CPU, 1, False, 0, 1, None, 0, 4))
    memory, streamed = stream(False), stream(True)
    first = memory.next(4)
    assert torch.equal(first.images, streamed.next(4).images)
    assert not torch.equal(first.images, untransformed.next(4).images)  # the pipeline did something
    saved = memory.state_dict()
    later = [memory.next(4).images for _ in range(2)]  # crosses into epoch 1: new parameters per item
    resumed = stream(False)
    resumed.load_state_dict(saved)
    for want in later:
        assert torch.equal(resumed.next(4).images, want)


def test_training_with_a_pipeline_resumes_exactly(tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for i in range(5):
        Image.fromarray(noise((36, 72, 3), i)).save(pairs / f"{i}.png")  # side-by-side AB images
    path = save_pipeline(tmp_path / "p.json", A.Affine(rotate=(-15, 15), p=1.0), A.RandomBrightnessContrast(p=1.0))
    settings = {**QUIET, "dataset": str(pairs), "transform": str(path), "size": 32, "load_size": 36, "hflip": True,
                "dropout": False}
    assert_resume_is_exact("pix2pix", settings, tmp_path)
