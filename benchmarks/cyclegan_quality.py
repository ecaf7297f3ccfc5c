"""CycleGAN on the built-in digit-styles: train the CPU preset, then score against the answer key.

Every held-out test digit is rendered in both styles, so A->B and B->A translations can be
compared with the true rendering (PSNR, SSIM). The identity baseline scores the untranslated
input against the same target: what a translator that does nothing would get.

    python benchmarks/cyclegan_quality.py                  # the digit-styles preset's full budget
    python benchmarks/cyclegan_quality.py --steps 200      # a shorter run
    python benchmarks/cyclegan_quality.py --picture docs/images/cyclegan-before-after.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganzoo.api import load_run, train

PICTURE_DIGITS = 8
PICTURE_SCALE = 2


def make_picture(run_dir: Path, seed: int, path: Path) -> None:
    """Rows of held-out digits: style A, A->B by `ganzoo translate`, style B (the true rendering
    of the same digits, and the B->A input), B->A by `ganzoo translate`."""
    from ganzoo.data.digit_styles import make_digit_styles
    from ganzoo_export.images import load_image_exif, make_grid, save_image

    run = load_run(run_dir)
    models = {p.stem.rsplit("-", 1)[1]: p for p in run.export()}
    styles = make_digit_styles(size=run.data_info.size, seed=seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for direction, source in (("AtoB", styles.test_a), ("BtoA", styles.test_b)):
            inputs, outputs = Path(tmp) / direction, Path(tmp) / f"{direction}-out"
            inputs.mkdir()
            for i in range(PICTURE_DIGITS):
                save_image(source[i], inputs / f"{i}.png")
            command = [sys.executable, "-m", "ganzoo", "translate", str(models[direction]), str(inputs),
                       "--direction", direction, "--out", str(outputs)]
            subprocess.run(command, check=True)
            translated = [load_image_exif(outputs / f"{i}.png", channels=3) for i in range(PICTURE_DIGITS)]
            rows += [source[:PICTURE_DIGITS], np.stack(translated)]
    picture = make_grid(np.concatenate(rows), nrow=PICTURE_DIGITS)
    picture = picture.repeat(PICTURE_SCALE, axis=0).repeat(PICTURE_SCALE, axis=1)
    save_image(picture, path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--picture", type=Path, default=None, help="also write a before/after PNG here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.out or Path(tmp) / "cyclegan-digit-styles"
        start = time.perf_counter()
        result = train("cyclegan", preset="digit-styles", steps=args.steps, out=run_dir, overrides={"seed": args.seed})
        minutes = (time.perf_counter() - start) / 60
        run = load_run(run_dir)
        scores = run.plugin.evaluate(run.nets, {"seed": args.seed})

        print(f"CycleGAN, digit-styles preset: {result.step} steps ({result.images_seen} images per domain), "
              f"{minutes:.1f} min on {torch.get_num_threads()} CPU threads, seed {args.seed}")
        print(f"{'':8}{'PSNR dB':>10}{'SSIM':>8}{'identity PSNR':>16}{'identity SSIM':>16}")
        for direction in ("AtoB", "BtoA"):
            print(f"{direction:8}{scores[f'psnr_{direction}']:10.2f}{scores[f'ssim_{direction}']:8.3f}"
                  f"{scores[f'identity_psnr_{direction}']:16.2f}{scores[f'identity_ssim_{direction}']:16.3f}")
        if args.picture:
            make_picture(run_dir, args.seed, args.picture)


if __name__ == "__main__":
    main()
