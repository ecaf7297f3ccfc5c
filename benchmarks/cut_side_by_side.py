"""CycleGAN, CUT and FastCUT side by side on an answer-key task, at equal wall time, over seeds.

The budget is CycleGAN's: its preset's steps (600 on digit-styles). A calibration times a few steps
of each contender, interleaved, and gives CUT and FastCUT the steps that take CycleGAN's budget
the same wall time; each run's learning rate is constant for its first half and decays linearly
to zero over its second, as the presets do. Then every run (contenders x seeds) trains in
interleaved slices of about equal time, so whatever else loads the machine weighs on all alike;
each run's wall time is the sum of its own slices, and that, not the calibration, is what the
table reports: when the load changes between the calibration and the runs, the methods' relative
speeds change with it and the wall times drift apart (the figures in docs/plugins/cut.md were
calibrated at load 3.5 and trained at 11-12: CUT and FastCUT got 0.63-0.88x CycleGAN's time).
Scores: A -> B PSNR/SSIM on the held-out images against their true B (CycleGAN's B -> A is not
compared: CUT has no such direction). Peak memory: a fresh process per contender training a few
steps (CUDA: the maximum allocated; CPU: the process's peak resident size, which includes PyTorch
itself and the data, and the part of it that training adds to what the process held before its
first step).

    python benchmarks/cut_side_by_side.py --threads 1
    python benchmarks/cut_side_by_side.py --budget-steps 40 --seeds 0          # a quick look
    python benchmarks/cut_side_by_side.py --threads 1 --picture docs/images/cut-side-by-side.png

``--dataset digit-pairs`` runs the same contest on the paired task (edges -> styled digit), trained
unpaired: the engine reads its training pairs as two independently shuffled domains (and says so in
one warning), and the held-out pairs are the answer key. The contenders keep their digit-styles
presets (size 32, no flips) on both tasks; only the data changes.

    python benchmarks/cut_side_by_side.py --threads 1 --dataset digit-pairs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

CONTENDERS = {  # name -> (plugin, preset); presets are the CPU-sized digit-styles ones
    "CycleGAN": ("cyclegan", "digit-styles"),
    "CUT": ("cut", "digit-styles"),
    "FastCUT": ("cut", "digit-styles-fastcut"),
}
QUIET = {"progress": False, "log_every": 10**9, "sample_every": 10**9, "checkpoint_every": 10**9}
CALIBRATION_STEPS = 8
SLICE_SECONDS = 20.0  # each run's share of one interleaving round
PICTURE_DIGITS = 8
PICTURE_SCALE = 3


def digit_styles_key(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out test digits as (style A, style B) uint8 NHWC: the split the run with ``seed`` held out."""
    from ganzoo.data.digit_styles import make_digit_styles
    from ganzoo_plugins.answer_keys import TRAINING_TEST_COUNT

    styles = make_digit_styles(size=size, seed=seed, test_count=TRAINING_TEST_COUNT)
    return styles.test_a, styles.test_b


def digit_pairs_key(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The 200 held-out digit-pairs as (edges, styled digit) uint8 NHWC; the split is fixed (``seed``
    plays no part). Trained unpaired, the contenders see the training pairs' two sides as two
    independently shuffled domains, and the held-out pairs only here."""
    from ganzoo.data.digit_pairs import make_digit_pairs

    pairs = make_digit_pairs(size)
    return pairs.test_a, pairs.test_b


ANSWER_KEYS: dict[str, Callable[[int, int], tuple[np.ndarray, np.ndarray]]] = {
    "digit-styles": digit_styles_key,
    "digit-pairs": digit_pairs_key,
}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass
class Run:
    contender: str
    seed: int
    trainer: object
    steps: int
    seconds: float = 0.0
    load: list[float] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.trainer.step >= self.steps

    def train(self, steps: int) -> None:
        steps = min(steps, self.steps - self.trainer.step)
        start = time.perf_counter()
        for _ in range(steps):
            self.trainer.train_step()
        self.seconds += time.perf_counter() - start
        self.load.append(load_average())


def make_trainer(contender: str, seed: int, dataset: str, device: str, run_dir: Path,
                 steps: int | None = None, epoch_images: int = 0):
    """A run of ``contender``; with ``steps``, its schedule (half constant, half decay, as the presets)
    is stretched over them, ``epoch_images`` being the images of one epoch."""
    from ganzoo.engine.spec import resolve
    from ganzoo.engine.trainer import Trainer

    plugin, preset = CONTENDERS[contender]
    settings = {**QUIET, "seed": seed, "dataset": dataset, "device": device}
    if steps is not None:
        epochs = steps * resolve(plugin, settings, preset=preset).train.batch_size / epoch_images
        settings.update(steps=steps, n_epochs=epochs / 2, n_epochs_decay=epochs / 2)
    return Trainer(resolve(plugin, settings, preset=preset), run_dir)


def calibrate(dataset: str, device: str, tmp: Path) -> dict[str, object]:
    """Seconds per step of each contender (median of rounds of a few steps, interleaved), and from
    the same runs: images per epoch and CycleGAN's preset steps."""
    trainers = {name: make_trainer(name, 1000, dataset, device, tmp / f"calibrate-{name}") for name in CONTENDERS}
    for trainer in trainers.values():
        trainer.train_step()  # warm-up
    timings: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(3):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(CALIBRATION_STEPS):
                trainer.train_step()
            timings[name].append((time.perf_counter() - start) / CALIBRATION_STEPS)
    return {
        "seconds_per_step": {name: statistics.median(values) for name, values in timings.items()},
        "epoch_images": trainers["CycleGAN"].stream.epoch_length(),
        "preset_steps": trainers["CycleGAN"].total_steps,
    }


def peak_memory_mb(contender: str, dataset: str, device: str) -> dict[str, float]:
    """Meant for a fresh process: the peak memory of training a few steps, and how much of it the
    training adds to what the process held before its first step (data, networks, PyTorch)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(contender, 0, dataset, device, Path(tmp) / "run")
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
            before = torch.cuda.memory_allocated(trainer.device)
        else:
            before = resident_kb("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak resident size (VmHWM)
        for _ in range(3):
            trainer.train_step()
        if trainer.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(trainer.device)
            return {"peak": peak / 2**20, "training": (peak - before) / 2**20}
        peak = resident_kb("VmHWM")
        return {"peak": peak / 1024, "training": (peak - before) / 1024}


def resident_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status, in kB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def translate(trainer, images: np.ndarray) -> torch.Tensor:
    from ganzoo_plugins.answer_keys import as_batch, translate_all

    nets = trainer.inference_nets()
    return translate_all(nets[trainer.plugin.translators["AtoB"]].eval(), as_batch(images))


def score(run: Run, dataset: str) -> dict[str, float]:
    from ganzoo.metrics.translation import translation_scores
    from ganzoo_plugins.answer_keys import as_batch

    test_a, test_b = ANSWER_KEYS[dataset](run.trainer.data_info.size, run.seed)
    return translation_scores(translate(run.trainer, test_a), as_batch(test_b))


def write_picture(runs: list[Run], dataset: str, path: Path) -> None:
    """Rows: held-out inputs, CycleGAN, CUT, FastCUT, the true B rendering (first seed's runs)."""
    from ganzoo.plugin.translation import to_uint8
    from ganzoo_export.images import make_grid, save_image

    first = {run.contender: run for run in runs if run.seed == runs[0].seed}
    test_a, test_b = ANSWER_KEYS[dataset](first["CUT"].trainer.data_info.size, runs[0].seed)
    rows = [test_a[:PICTURE_DIGITS]]
    for name in CONTENDERS:
        rows.append(to_uint8(translate(first[name].trainer, test_a[:PICTURE_DIGITS])).permute(0, 2, 3, 1).numpy())
    rows.append(test_b[:PICTURE_DIGITS])
    picture = make_grid(np.concatenate(rows), nrow=PICTURE_DIGITS)
    save_image(picture.repeat(PICTURE_SCALE, axis=0).repeat(PICTURE_SCALE, axis=1), path)
    print(f"wrote {path}")


def mean_and_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values)


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for name in CONTENDERS:
        mine = [r for r in rows if r["contender"] == name]
        table.append({"contender": name, "steps": mine[0]["steps"], "seeds": len(mine),
                      **{key: mean_and_sd([r[key] for r in mine]) for key in ("psnr", "ssim", "seconds", "images_per_sec")},
                      "peak_memory_mb": mine[0]["peak_memory_mb"]})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digit-styles", choices=sorted(ANSWER_KEYS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-steps", type=int, default=None,
                        help="CycleGAN's steps, which set the wall-time budget (default: its preset's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--picture", type=Path, default=None, help="also write input/CycleGAN/CUT/FastCUT/truth rows")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs); torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calibration = calibrate(args.dataset, args.device, tmp)
        seconds_per_step = calibration["seconds_per_step"]
        wall = (args.budget_steps or calibration["preset_steps"]) * seconds_per_step["CycleGAN"]
        steps = {name: max(1, round(wall / s)) for name, s in seconds_per_step.items()}
        print("calibrated s/step: " + ", ".join(f"{n} {s:.3f}" for n, s in seconds_per_step.items())
              + f"; budget {wall:.0f} s per run -> steps " + ", ".join(f"{n} {s}" for n, s in steps.items()))

        runs = [
            Run(name, seed, make_trainer(name, seed, args.dataset, args.device, tmp / f"{name}-{seed}", steps[name],
                                         calibration["epoch_images"]), steps[name])
            for seed in args.seeds for name in CONTENDERS
        ]
        while not all(run.done for run in runs):
            for run in runs:
                if not run.done:
                    run.train(max(1, round(SLICE_SECONDS / seconds_per_step[run.contender])))
            print(f"  {sum(r.trainer.step for r in runs)} / {sum(r.steps for r in runs)} steps, "
                  f"load {load_average()}", flush=True)
        print(f"load average after training: {load_average()}")

        memory = {}
        for name in CONTENDERS:  # a fresh process each: a process's peak cannot be reset
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                memory[name] = pool.submit(peak_memory_mb, name, args.dataset, args.device).result()
        rows = []
        for run in runs:
            rows.append({"contender": run.contender, "seed": run.seed, "steps": run.steps, **score(run, args.dataset),
                         "seconds": run.seconds, "images_per_sec": run.trainer.images_seen / run.seconds,
                         "load_mean": statistics.mean(run.load), "peak_memory_mb": memory[run.contender]})
        if args.picture:
            write_picture(runs, args.dataset, args.picture)

    loads = [row["load_mean"] for row in rows]
    print(f"load average at the end: {load_average()}; while training: {min(loads):.1f}-{max(loads):.1f} (run means)")
    print(f"\n{args.dataset}, A -> B against the answer key, {len(args.seeds)} seeds (mean +- sd)\n")
    print("| method | steps | wall s per run | images/s | PSNR dB | SSIM | peak memory MB (training's part) |")
    print("|---|---|---|---|---|---|---|")
    for t in summarise(rows):
        print(f"| {t['contender']} | {t['steps']} | {t['seconds'][0]:.0f} +- {t['seconds'][1]:.0f} "
              f"| {t['images_per_sec'][0]:.1f} | {t['psnr'][0]:.2f} +- {t['psnr'][1]:.2f} "
              f"| {t['ssim'][0]:.3f} +- {t['ssim'][1]:.3f} "
              f"| {t['peak_memory_mb']['peak']:.0f} ({t['peak_memory_mb']['training']:.0f}) |")
    for row in rows:
        print(f"  {row['contender']:9} seed {row['seed']}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
              f"in {row['seconds']:.0f} s ({row['images_per_sec']:.1f} images/s, load {row['load_mean']:.1f})")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, **calibration, "steps": steps, "runs": rows},
                                        indent=2) + "\n")

if __name__ == "__main__":
    main()
