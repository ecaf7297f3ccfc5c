"""The data pipeline: images/s that a streamed folder delivers, decoded and resized by workers."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ganzoo.bench.common import BenchOptions


def write_photo_folder(folder: Path, count: int, side: int = 160, seed: int = 0) -> Path:
    """``count`` JPEGs of ``side`` pixels: smooth colour fields with noise, so they compress like photos."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    for i in range(count):
        colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        mix = (ramp[:, None, None] + ramp[None, :, None]) / 2
        image = colours[0] * (1 - mix) + colours[1] * mix + rng.normal(0, 12, (side, side, 3))
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
    return folder


def bench_pipeline(options: BenchOptions, workers: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Images/s that a streamed folder delivers at ``pipeline_size``, decoded and resized by workers."""
    import torch

    from ganzoo.data.options import DataConfig
    from ganzoo.data.streamed import default_workers, make_source, open_folder

    workers = default_workers() if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        folder = write_photo_folder(Path(tmp) / "photos", options.pipeline_images)
        data = open_folder(folder, options.pipeline_size, 3, DataConfig(stream=True))
        source = make_source(data, torch.device("cpu"), 0, False, 0, 1, None, workers, batch_size)
        source.next(batch_size)  # workers started and the first batches decoded
        batches = max(2, options.pipeline_images // batch_size)
        start = time.perf_counter()
        for _ in range(batches):
            source.next(batch_size)
        elapsed = time.perf_counter() - start
        source.close()
    return {
        "images_per_sec": round(batches * batch_size / elapsed, 1),
        "size": options.pipeline_size,
        "workers": workers,
        "source_images": f"{options.pipeline_images} JPEGs of 160x160",
    }
