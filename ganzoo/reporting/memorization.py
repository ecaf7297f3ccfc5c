"""Pictures of the memorization check: does the generator copy its training images?

    memorization.png            each generated sample, then its nearest training images with distances
    memorization_distances.png  generated-to-nearest-training distances against the typical distance
                                from a training image to its nearest other training image
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganzoo.data.image_batches import ImageBatches
from ganzoo.files import atomic_write, save_image
from ganzoo.metrics.memorization import to_uint8_rgb, train_nearest_distances
from ganzoo.metrics.neighbours import nearest
from ganzoo.metrics.streams import SampleBatch

GRID_FILE = "memorization.png"
DISTANCES_FILE = "memorization_distances.png"
MIN_TILE = 48  # small images are enlarged (nearest neighbour) so a grid stays readable
HEADER = 16
LABEL_WIDTH = 150
PAD = 2


class PictureSamples:
    """What the pictures need of the generated stream, and nothing more: the first ``rows`` images
    (shown in the grid) and the vectors (features, or flattened pixels) of the first ``count``."""

    def __init__(self, rows: int, count: int, pixels: bool):
        self.rows, self.count, self.pixels = rows, count, pixels
        self.shown: list[torch.Tensor] = []
        self.kept: list[np.ndarray] = []

    def update(self, batch: SampleBatch) -> None:
        missing = self.rows - sum(len(images) for images in self.shown)
        if missing > 0:
            self.shown.append(batch.images[:missing].clone())
        missing = self.count - sum(len(rows) for rows in self.kept)
        if missing > 0:
            rows = batch.images[:missing].flatten(1).numpy() if self.pixels else batch.features[:missing]
            self.kept.append(rows.copy())  # a copy: a view would keep the whole batch alive

    @property
    def images(self) -> torch.Tensor:
        return torch.cat(self.shown)

    @property
    def vectors(self) -> np.ndarray:
        return np.concatenate(self.kept)


def write_memorization_pictures(
    shown: torch.Tensor,
    train: ImageBatches,
    generated_vectors: np.ndarray,
    train_vectors: np.ndarray,
    space: str,
    out_dir: Path,
    prefix: str = "",
    k: int = 3,
    seed: int = 0,
) -> dict[str, Path]:
    """``shown``: the generated images of the grid, whose vectors are the first rows of
    ``generated_vectors``. ``*_vectors``: the images as compared, (N, D), e.g. features or
    flattened pixels, named by ``space``; only the ``k`` neighbours of each shown image are read
    from ``train``.

    The vectors come in ready-made because embedding a large training set is the slow part and
    the caller usually has them cached.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = len(shown)
    distances, indices = nearest(generated_vectors[:rows], train_vectors, k=k)
    neighbours = train.take(torch.as_tensor(indices)).reshape(rows, k, *train.image_shape)
    grid_path = out_dir / f"{prefix}{GRID_FILE}"
    save_image(neighbour_grid(shown, neighbours, distances), grid_path)
    hist_path = out_dir / f"{prefix}{DISTANCES_FILE}"
    generated_distances = nearest(generated_vectors, train_vectors, k=1)[0][:, 0]
    plot_distances(generated_distances, train_nearest_distances(train_vectors, seed), space, hist_path)
    return {"grid": grid_path, "distances": hist_path}


def neighbour_grid(samples: torch.Tensor, neighbours: torch.Tensor, distances: np.ndarray) -> Image.Image:
    """One row per sample: the sample, a gap, its neighbours (N, k, C, H, W) nearest first, and
    their distances; small images are enlarged so the grid stays readable."""
    rows, k = neighbours.shape[:2]
    height, width = samples.shape[-2:]
    scale = max(1, math.ceil(MIN_TILE / height))
    tile_h, tile_w, gap = height * scale, width * scale, 4 * PAD
    left_of = lambda col: PAD + col * (tile_w + PAD) + (gap if col else 0)  # noqa: E731
    grid_width = left_of(k) + tile_w + PAD
    canvas = Image.new("RGB", (grid_width + LABEL_WIDTH, HEADER + PAD + rows * (tile_h + PAD)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, 2), "sample", fill="black")
    draw.text((left_of(1), 2), "nearest training images", fill="black")
    draw.text((grid_width + 4, 2), "distances", fill="black")
    for row in range(rows):
        top = HEADER + PAD + row * (tile_h + PAD)
        tiles = [samples[row], *neighbours[row]]
        for col, tile in enumerate(to_uint8_rgb(torch.stack(tiles))):
            canvas.paste(Image.fromarray(tile).resize((tile_w, tile_h), Image.NEAREST), (left_of(col), top))
        text = "  ".join(f"{v:.3g}" for v in distances[row])
        draw.text((grid_width + 4, top + max(0, tile_h // 2 - 6)), text, fill="black")
    return canvas


def plot_distances(generated: np.ndarray, train: np.ndarray, space: str, out: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=100, layout="constrained")
    ax = figure.subplots()
    bins = np.linspace(0, max(generated.max(), train.max()) * 1.05 or 1.0, 41)
    ax.hist(train, bins=bins, density=True, alpha=0.55, label=f"training image to nearest other training image ({len(train)})")
    ax.hist(generated, bins=bins, density=True, alpha=0.55, label=f"generated sample to nearest training image ({len(generated)})")
    ax.axvline(float(np.median(train)), color="C0", linestyle="--", linewidth=1)
    ax.axvline(float(np.median(generated)), color="C1", linestyle="--", linewidth=1)
    ax.set_xlabel(f"Euclidean distance ({space}); dashed: medians")
    ax.set_ylabel("density")
    ax.set_title("nearest-neighbour distances: near 0 means copies of training images", fontsize=10)
    ax.legend(fontsize=8)
    with atomic_write(out) as file:
        figure.savefig(file, format="png")
    return out
