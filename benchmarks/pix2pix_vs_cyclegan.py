"""pix2pix and CycleGAN on the same pairs: the built-in digit-pairs, scored against its answer key.

Both learn a digit's edges -> the digit drawn in style B from the same 4,800 training pairs, for the
same number of steps and images: pix2pix sees them as pairs, CycleGAN as two unpaired collections
(how the CycleGAN paper compares itself with pix2pix). Each uses its CPU preset (pix2pix
`digit-pairs`; CycleGAN `digit-styles`, pointed at digit-pairs), with one epoch by default, the
learning rate constant for half of it and then linearly down to zero. Prints PSNR and SSIM of A -> B
on the 200 held-out pairs, the identity baseline, wall time and images per second of each, and the
machine's load before and after (the figures are only comparable on an idle machine); optionally
writes the picture: rows of input, pix2pix, CycleGAN and the truth, translated from the exported
ONNX files by the deploy runtime.

    python benchmarks/pix2pix_vs_cyclegan.py --threads 1 --picture docs/images/pix2pix-vs-cyclegan.png
    python benchmarks/pix2pix_vs_cyclegan.py --steps 300        # a shorter run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganzoo.api import load_run, train

CONTENDERS = {"pix2pix": "digit-pairs", "cyclegan": "digit-styles"}  # plugin -> its CPU preset
PICTURE_DIGITS = 10
PICTURE_SCALE = 3


def machine_load() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"load average {os.getloadavg()[0]:.1f} on {cores} cores"


def train_and_score(plugin: str, steps: int, seed: int, out: Path) -> dict:
    overrides = {"dataset": "digit-pairs", "seed": seed, "steps": steps, "n_epochs": 0.5, "n_epochs_decay": 0.5,
                 "progress": False, "sample_every": steps, "checkpoint_every": steps}
    start = time.perf_counter()
    result = train(plugin, preset=CONTENDERS[plugin], out=out, overrides=overrides)
    seconds = time.perf_counter() - start
    run = load_run(out)
    scores = run.plugin.evaluate(run.nets, {"seed": seed, "direction": "AtoB"})
    return {"plugin": plugin, "steps": result.step, "images": result.images_seen, "seconds": seconds,
            "images_per_sec": result.images_seen / seconds, "run": out, **scores}


def make_picture(results: list[dict], path: Path) -> None:
    """Rows: the held-out inputs, each plugin's A -> B translations (ONNX runtime), the truth."""
    from ganzoo.data.digit_pairs import make_digit_pairs
    from ganzoo_export.images import make_grid, save_image
    from ganzoo_export.runtime import GanzooModel

    pairs = make_digit_pairs(load_run(results[0]["run"]).data_info.size)
    inputs, truth = pairs.test_a[:PICTURE_DIGITS], pairs.test_b[:PICTURE_DIGITS]
    rows = [inputs]
    for result in results:
        model_file = next(p for p in load_run(result["run"]).export() if p.stem.endswith("AtoB"))
        model = GanzooModel(model_file, providers=["CPUExecutionProvider"])
        rows.append(np.stack([model.translate(image) for image in inputs]))
    rows.append(truth)
    picture = make_grid(np.concatenate(rows), nrow=PICTURE_DIGITS)
    save_image(picture.repeat(PICTURE_SCALE, axis=0).repeat(PICTURE_SCALE, axis=1), path)
    print(f"wrote {path}: rows are input, {', '.join(r['plugin'] for r in results)}, truth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1200, help="training steps of each (1200 x 4 images: one epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="keep the two runs in this folder")
    parser.add_argument("--picture", type=Path, default=None, help="also write the side-by-side PNG here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        print(f"before: {machine_load()}; torch {torch.__version__}, {torch.get_num_threads()} threads, seed {args.seed}")
        results = [train_and_score(plugin, args.steps, args.seed, folder / plugin) for plugin in CONTENDERS]
        print(f"after: {machine_load()}")
        print(f"{'':10}{'steps':>7}{'images':>8}{'minutes':>9}{'images/s':>10}{'PSNR dB':>9}{'SSIM':>7}"
              f"{'identity PSNR':>15}{'identity SSIM':>15}")
        for r in results:
            print(f"{r['plugin']:10}{r['steps']:7d}{r['images']:8d}{r['seconds'] / 60:9.1f}{r['images_per_sec']:10.1f}"
                  f"{r['psnr_AtoB']:9.2f}{r['ssim_AtoB']:7.3f}{r['identity_psnr_AtoB']:15.2f}{r['identity_ssim_AtoB']:15.3f}")
        pix2pix, cyclegan = results
        print(f"pix2pix - CycleGAN: {pix2pix['psnr_AtoB'] - cyclegan['psnr_AtoB']:+.2f} dB PSNR, "
              f"{pix2pix['ssim_AtoB'] - cyclegan['ssim_AtoB']:+.3f} SSIM, "
              f"{pix2pix['seconds'] / cyclegan['seconds']:.2f}x CycleGAN's training time")
        if args.picture:
            make_picture(results, args.picture)


if __name__ == "__main__":
    main()
