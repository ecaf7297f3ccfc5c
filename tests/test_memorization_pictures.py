"""The memorization pictures: what they keep of the generated stream, and what the grid shows."""

import numpy as np
import torch
from PIL import Image

from ganzoo.data.image_batches import ImageBatches
from ganzoo.metrics.memorization import to_uint8_rgb
from ganzoo.metrics.streams import SampleBatch
from ganzoo.reporting import memorization as pictures
from ganzoo.reporting.memorization import PictureSamples, neighbour_grid, write_memorization_pictures


def images(n, seed=0, size=8, channels=1):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class Flat:
    name, weights_hash, resize = "flat", "none", "none"

    def __call__(self, x):
        return x.flatten(1)


def tile(grid: Image.Image, row: int, col: int, side: int) -> np.ndarray:
    """The pixels of one tile of a neighbour grid (tiles of ``side`` pixels)."""
    pad, gap = pictures.PAD, 4 * pictures.PAD
    left = pad + col * (side + pad) + (gap if col else 0)
    top = pictures.HEADER + pad + row * (side + pad)
    return np.asarray(grid)[top : top + side, left : left + side]


def test_picture_samples_keep_only_what_is_shown_and_plotted():
    kept = PictureSamples(rows=3, count=7, pixels=True)
    stream = images(15, seed=1)
    for start in range(0, 15, 5):
        kept.update(SampleBatch(stream[start : start + 5], Flat()))
    assert torch.equal(kept.images, stream[:3])
    assert np.array_equal(kept.vectors, stream[:7].flatten(1).numpy())
    by_features = PictureSamples(rows=2, count=4, pixels=False)
    batch = SampleBatch(stream[:5], Flat())
    by_features.update(batch)
    assert np.array_equal(by_features.vectors, batch.features[:4])
    assert by_features.kept[0].base is None  # a copy, not a view that would keep the whole batch alive


def test_grid_shows_each_sample_beside_its_nearest_training_images(tmp_path):
    train = images(60, channels=3)
    shown = train[[5, 9]]
    vectors = train.flatten(1).numpy()
    paths = write_memorization_pictures(
        shown, ImageBatches(train), vectors[[5, 9, 11]], vectors, "pixels", tmp_path, "m.", k=3, seed=0
    )
    assert paths["grid"] == tmp_path / "m.memorization.png" and paths["distances"].is_file()
    with Image.open(paths["grid"]) as grid:
        side = 8 * 6  # 8 px tiles are enlarged to at least 48
        for row, index in enumerate([5, 9]):
            expected = np.asarray(Image.fromarray(to_uint8_rgb(train[index : index + 1])[0]).resize((side, side), Image.NEAREST))
            assert np.array_equal(tile(grid, row, 0, side), expected)
            assert np.array_equal(tile(grid, row, 1, side), expected)  # the copy itself, at distance 0
            assert not np.array_equal(tile(grid, row, 2, side), expected)


def test_grid_of_grayscale_samples_is_rgb():
    gray = images(2)
    grid = np.asarray(neighbour_grid(gray[:1], gray[None, 1:2], np.zeros((1, 1))))
    assert grid.shape[-1] == 3
    assert np.array_equal(grid[..., 0], grid[..., 2])
