"""DCGAN on the built-in digits: does the quickstart budget give recognizable, varied digits?

Trains the `digits` preset (the quickstart's run) and judges 1,000 samples of the EMA generator with
a small CNN trained on the real digits (ganzoo.metrics.classifier): classes covered, the share of
samples the classifier is confident about (max softmax >= 0.9), and the class balance. The same
numbers for 1,000 real digits are the ceiling.

    python benchmarks/dcgan_quality.py [--steps N] [--out DIR]
    python benchmarks/dcgan_quality.py --run ganzoo-quickstart/dcgan-digits   # judge a finished run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ganzoo.api import load_run, train
from ganzoo.data.catalog import digits_imageset
from ganzoo.metrics.classifier import DigitFeatures, digit_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="override the preset's length")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--run", type=Path, default=None, help="judge this finished run instead of training one")
    args = parser.parse_args()

    train_seconds = None
    if args.run is None:
        out = args.out or Path(tempfile.mkdtemp()) / "dcgan-digits"
        start = time.perf_counter()
        train("dcgan", data="digits", preset="digits", steps=args.steps, out=out, overrides={"progress": False})
        train_seconds = round(time.perf_counter() - start, 1)
    else:
        out = args.run

    judge = DigitFeatures()
    run = load_run(out)
    fake = torch.cat([run.sample(250, seed=s) for s in range(args.samples // 250)])
    real = digits_imageset(32, 1).to_float()[torch.randperm(5000, generator=torch.Generator().manual_seed(0))[: args.samples]]
    scores = {"generated": digit_quality(fake, features=judge), "real": digit_quality(real, features=judge)}
    for name in scores:
        hist = torch.tensor(scores[name]["class_histogram"], dtype=torch.float)
        scores[name]["smallest_class_share"] = float(hist.min() / hist.sum())
    report = {
        "run": str(out),
        "steps": run.step,
        "images_seen": run.images_seen,
        "train_seconds": train_seconds,
        "threads": torch.get_num_threads(),
        "classifier_held_out_accuracy": judge.held_out_accuracy,
        **scores,
    }
    print(json.dumps(report, indent=2))
    print(
        f"\nDCGAN digits: {run.step} steps (trained here in {train_seconds} s); classes covered "
        f"{scores['generated']['classes_covered']}/10; confident share {scores['generated']['confident_share']:.3f} "
        f"(real digits {scores['real']['confident_share']:.3f}); smallest class share "
        f"{scores['generated']['smallest_class_share']:.3f} (uniform 0.100)"
    )


if __name__ == "__main__":
    main()
