"""Does the conditional GAN draw the digit it is asked for?

Trains `cgan` with its default preset on the built-in digits (or evaluates an existing run), then
asks the EMA generator for SAMPLES images of every class and lets the digit classifier of
`ganzoo.metrics.classifier` judge them. Prints the classifier's held-out accuracy, the share of
samples classified as the requested class (overall and per class), the classes produced and the
training budget (steps, images, wall-clock time, threads).

    python benchmarks/cgan_quality.py                      # default preset, fresh run
    python benchmarks/cgan_quality.py --steps 600 --set conditioning=concat
    python benchmarks/cgan_quality.py --run runs/cgan-... --all-checkpoints
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

TARGET_SHARE = 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="evaluate this run folder instead of training one")
    parser.add_argument("--out", type=Path, help="run folder to train into (default: a temporary folder)")
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override key=value")
    parser.add_argument("--samples", type=int, default=100, help="samples per class")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed")
    parser.add_argument("--all-checkpoints", action="store_true", help="evaluate every kept checkpoint, not only the last")
    return parser.parse_args()


def train_run(args: argparse.Namespace, out: Path) -> Path:
    from ganzoo.api import train
    from ganzoo.config import parse_assignments

    overrides = {"progress": False, "dataset": "digits", "device": "cpu", **parse_assignments(args.sets)}
    start, cpu_start = time.perf_counter(), time.process_time()
    result = train("cgan", steps=args.steps, out=out, overrides=overrides)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU time is reported too: on a shared machine wall-clock time measures the neighbours.
    print(
        f"trained {result.step} steps ({result.images_seen} images) in {seconds:.0f} s wall-clock, "
        f"{cpu_seconds:.0f} CPU-seconds, on {args.threads} torch thread(s)"
    )
    return result.run_dir


@torch.no_grad()
def evaluate(run_dir: Path, checkpoint: Path | None, samples: int, seed: int, features) -> dict:
    from ganzoo.api import load_run
    from ganzoo.metrics.classifier import digit_quality

    run = load_run(run_dir, checkpoint)
    classes = range(run.data_info.num_classes)
    images = torch.cat([run.sample(samples, seed=seed + k, **{"class": k}) for k in classes])
    requested = torch.arange(len(classes)).repeat_interleave(samples)
    overall = digit_quality(images, requested, features=features)
    per_class = [
        digit_quality(images[requested == k], requested[requested == k], features=features)["requested_class_share"]
        for k in classes
    ]
    return {"step": run.step, "images_seen": run.images_seen, "overall": overall, "per_class": per_class}


def report(result: dict) -> None:
    overall, per_class = result["overall"], result["per_class"]
    share = overall["requested_class_share"]
    every_class = overall["classes_covered"] == len(per_class) and min(per_class) > 0
    verdict = "PASS" if share >= TARGET_SHARE and every_class else "FAIL"
    print(
        f"step {result['step']:>5} ({result['images_seen']} images): "
        f"{share:.1%} classified as requested ({verdict}: target {TARGET_SHARE:.0%}, every class produced), "
        f"classes produced {overall['classes_covered']}/{len(per_class)}, "
        f"worst class {min(per_class):.1%}, mean confidence {overall['mean_confidence']:.3f}"
    )
    print("  per class: " + ", ".join(f"{k}:{s:.0%}" for k, s in enumerate(per_class)))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from ganzoo.engine import checkpoint as ckpt
    from ganzoo.metrics.classifier import DigitFeatures

    features = DigitFeatures()
    print(f"digit classifier {features.name}: held-out accuracy {features.held_out_accuracy:.1%} (500 real digits)")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train_run(args, args.out or Path(tmp) / "cgan")
        points = ckpt.list_checkpoints(run_dir / "checkpoints") if args.all_checkpoints else [None]
        for checkpoint in points:
            report(evaluate(run_dir, checkpoint, args.samples, args.seed, features))


if __name__ == "__main__":
    main()
