"""Peak resident memory of `ganzoo eval RUN -n N` on a 64x64 RGB run: does evaluation stream?

1. Writes a folder of 10,000 RGB 64x64 PNGs: every built-in digit drawn in both digit-styles
   styles (textured background, coloured strokes), so the reference set is 3-channel, the worst
   case for memory, and holds the 10,000 images `ganzoo eval` takes from a reference by default.
2. Trains DCGAN on that folder at size 64 (once; the run is reused when it exists).
3. For each sample count, runs `ganzoo eval RUN -n N` in a fresh process with an empty
   reference-statistics cache (so the real images are embedded too) and reports that process's
   peak RSS from os.wait4, and its wall time.

With `--synthetic SIZE` it skips the run and calls `ganzoo.metrics.evaluate.evaluate` on smooth
random RGB images of SIZE pixels instead (and 1,000 such uint8 images as the reference), to show
that memory does not follow the image size where no generator of that size can be trained here.

    python benchmarks/eval_memory.py [--workdir DIR] [--counts 1000,5000,20000] [--features digits]
                                     [--metrics fid,kid,pr,nn] [--steps 300] [--synthetic 256]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SIZE = 64


def write_rgb_folder(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    from ganzoo.data.digit_styles import centered_strokes, render_a, render_b
    from ganzoo.data.digits import load_digits

    if folder.is_dir() and len(list(folder.glob("*.png"))) == 10_000:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    strokes = centered_strokes(load_digits()[0], SIZE)
    for style, render in (("a", render_a), ("b", render_b)):
        for i, image in enumerate(render(strokes)):
            Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{style}{i:04d}.png")
    return folder


def train_run(folder: Path, run: Path, steps: int) -> Path:
    if (run / "config.json").is_file():
        return run
    settings = {"size": SIZE, "channels": 3, "ngf": 32, "ndf": 32, "batch_size": 32, "progress": "false"}
    command = [sys.executable, "-m", "ganzoo", "train", "dcgan", "--data", str(folder), "--steps", str(steps),
               "--out", str(run), *(arg for key, value in settings.items() for arg in ("--set", f"{key}={value}"))]
    subprocess.run(command, check=True)
    return run


def smooth_images(n: int, size: int, generator):
    """RGB images in [-1, 1]: 8x8 noise upsampled, so neighbouring pixels agree as in photos."""
    import torch
    import torch.nn.functional as F

    return F.interpolate(torch.rand(n, 3, 8, 8, generator=generator) * 2 - 1, size=size, mode="bilinear")


def evaluate_synthetic(size: int, count: int, features: str, metrics: str) -> None:
    """The child process of --synthetic: one evaluate() over `count` generated images."""
    import torch

    from ganzoo.data.image_batches import ImageBatches
    from ganzoo.metrics.evaluate import evaluate
    from ganzoo.reporting.run_eval import feature_network, parse_metrics

    generator = torch.Generator().manual_seed(1)
    # Made 100 at a time and held as uint8, as a dataset holds it: the float images of the whole
    # set would be the largest thing in this process.
    real = torch.cat([((smooth_images(100, size, generator) + 1) * 127.5).round().to(torch.uint8) for _ in range(10)])
    evaluate(lambda n, g: smooth_images(n, size, g), ImageBatches(real), list(parse_metrics(metrics)),
             feature_network(features, device="cpu"), count, reference=f"smooth noise {size}px")


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one process run to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all children's
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/eval-memory"), help="data, run and caches")
    parser.add_argument("--counts", default="1000,5000,20000", help="generated sample counts to measure")
    parser.add_argument("--features", default="digits", help="feature network (see ganzoo eval --features)")
    parser.add_argument("--metrics", default="fid,kid,pr,nn", help="metrics (see ganzoo eval --metric)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the 64 px run")
    parser.add_argument("--extra", default="", help="more `ganzoo eval` arguments, space-separated")
    parser.add_argument("--synthetic", type=int, default=None, help="image size of synthetic samples (no run)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return evaluate_synthetic(args.synthetic, args.child, args.features, args.metrics)
    cache = args.workdir / "cache"
    env = {**os.environ, "GANZOO_CACHE": str(cache)}  # ganzoo silences albumentations itself
    counts = [int(c) for c in args.counts.split(",")]
    print("| -n | features | metrics | peak RSS MB | wall s |\n|---|---|---|---|---|")
    if args.synthetic is None:
        run = train_run(write_rgb_folder(args.workdir / "rgb64"), args.workdir / "dcgan-rgb64", args.steps)
    for count in counts:
        shutil.rmtree(cache / "reference_stats", ignore_errors=True)  # embed the real images every time
        if args.synthetic is None:
            label = str(count)
            command = [sys.executable, "-m", "ganzoo", "eval", str(run), "-n", str(count), "--metric", args.metrics,
                       "--features", args.features, "--device", "cpu", *args.extra.split()]
        else:
            label = f"{count} ({args.synthetic} px, synthetic)"
            command = [sys.executable, __file__, "--synthetic", str(args.synthetic), "--child", str(count),
                       "--features", args.features, "--metrics", args.metrics]
        rss, wall = measure(command, env)
        print(f"| {label} | {args.features} | {args.metrics} | {rss:.0f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
