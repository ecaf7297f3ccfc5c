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

from ganzoo.files import atomic_write, save_image
from ganzoo.metrics.memorization import to_uint8_rgb
from ganzoo.metrics.neighbours import nearest

GRID_FILE = "memorization.png"
DISTANCES_FILE = "memorization_distances.png"
MIN_TILE = 48  # small images are enlarged (nearest neighbour) so a grid stays readable
HEADER = 16
LABEL_WIDTH = 150
TRAIN_QUERIES = 1000
PAD = 2


def write_memorization_pictures(
    generated: torch.Tensor,
    train: torch.Tensor,
    generated_vectors: np.ndarray,
    train_vectors: np.ndarray,
    space: str,
    out_dir: Path,
    prefix: str = "",
    rows: int = 8,
    k: int = 3,
    seed: int = 0,
) -> dict[str, Path]:
    """``*_vectors``: the images as compared, (N, D), e.g. features or flattened pixels, named by ``space``.

    The vectors come in ready-made because embedding a large training set is the slow part and
    the caller usually has them cached.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    distances, indices = nearest(generated_vectors[:rows], train_vectors, k=k)
    grid_path = out_dir / f"{prefix}{GRID_FILE}"
    save_image(neighbour_grid(generated[:rows], train[torch.as_tensor(indices)], distances), grid_path)
    hist_path = out_dir / f"{prefix}{DISTANCES_FILE}"
    plot_distances(*distance_samples(generated_vectors, train_vectors, seed), space, hist_path)
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


def distance_samples(generated: np.ndarray, train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(each generated vector's nearest training distance, each of up to 1,000 training vectors'
    distance to its nearest other training vector)."""
    gen_distances, _ = nearest(generated, train, k=1)
    queries = np.random.default_rng(seed).choice(len(train), min(TRAIN_QUERIES, len(train)), replace=False)
    train_distances, _ = nearest(train[queries], train, k=1, exclude=queries)
    return gen_distances[:, 0], train_distances[:, 0]


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
