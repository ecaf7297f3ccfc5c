"""Mode collapse on 2-D mixtures: the vanilla MLP GAN, plain and with each stability switch.

    python benchmarks/mode_collapse.py                      # the run recorded in docs/benchmarks.md
    python benchmarks/mode_collapse.py --seeds 1 --steps 300   # a quick look

Trains the example plugin (examples/ganzoo-vanilla-gan, preset ``toy``) through ``ganzoo.api.train``
on ring8 (8 Gaussians on a circle) and grid25 (5 x 5 Gaussians), once plain and once per switch,
for several seeds, and scores samples of the trained G with ``ganzoo.metrics.mode_coverage.mode_coverage``
(the data comes from ``ganzoo.data.toys``): modes covered, and the share of high-quality samples (those
near a mode). Prints a markdown table
(mean ± std over seeds) and writes a scatter plot of seed 0. DiffAugment and ADA are not run:
they transform images (colour, translation, cutout), and points have no pixels.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ganzoo-vanilla-gan"
QUIET = {"progress": False, "log_every": 250, "sample_every": 10**9, "checkpoint_every": 10**9}
SAMPLES = 2500

# name, engine overrides (or a function of the run's base learning rate), multiplier of the steps
SETUPS: list[tuple[str, dict[str, Any] | Callable[[float], dict[str, Any]], int]] = [
    ("plain", {}, 1),
    ("instance noise σ=0.2", {"instance_noise": 0.2}, 1),
    ("label smoothing 0.1", {"label_smoothing": 0.1}, 1),
    ("R1 γ=1", {"r1_gamma": 1.0}, 1),
    ("WGAN-GP λ=10", {"loss": "wgan-gp"}, 1),
    ("spectral norm", {"spectral_norm": True}, 1),
    ("TTUR: G at lr / 4", lambda lr: {"g_lr": lr / 4, "d_lr": lr}, 1),
    ("3 D steps per G step", {"d_steps": 3}, 3),  # 3x the steps: as many G updates as the others
    ("unrolled GAN K=5", {"unrolled_steps": 5}, 1),
]
# Per-dataset budget: the grid's 25 narrow modes need more steps, and a larger learning rate to
# resolve them within a CPU budget (tuned on the plain setup only).
DATASETS: dict[str, dict[str, Any]] = {"ring8": {"steps": 2000}, "grid25": {"steps": 3000, "lr": 3e-3}}


def mixture(dataset: str):
    """Mode centres and std of a toy set: the defaults of ganzoo.data.toys, which draws the data."""
    from ganzoo.data import toys

    return (toys.ring_centers(), 0.02) if dataset == "ring8" else (toys.grid_centers(), 0.05)


def use_example_plugin() -> None:
    """Register the example plugin when it is not installed (it is a separate package)."""
    from ganzoo import registry

    if "vanilla" not in registry.list_plugins():
        sys.path.insert(0, str(EXAMPLE))
        from ganzoo_vanilla_gan import VanillaGAN

        registry.register(VanillaGAN)


def init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    use_example_plugin()


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from ganzoo.api import load_run, train
    from ganzoo.metrics.mode_coverage import mode_coverage

    started = time.perf_counter()
    overrides = {**QUIET, "seed": job["seed"], **job["overrides"]}
    result = train(
        "vanilla", data=job["dataset"], steps=job["steps"], out=job["out"], preset="toy", overrides=overrides
    )
    points = load_run(result.run_dir).sample(SAMPLES, seed=10_000 + job["seed"])
    score = mode_coverage(points, *mixture(job["dataset"]))
    return {
        **{k: job[k] for k in ("dataset", "setup", "seed")},
        "modes": score["modes_covered"],
        "num_modes": score["num_modes"],
        "hq": 100.0 * score["high_quality_share"],
        "seconds": time.perf_counter() - started,
        "points": points.numpy() if job["seed"] == 0 else None,
    }


def mean_std(values: list[float], digits: int) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    header = ["setup"]
    for dataset in DATASETS:
        total = next(r["num_modes"] for r in results if r["dataset"] == dataset)
        header += [f"{dataset}: modes (of {total})", f"{dataset}: high quality %"]
    header.append("s / run")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, _, _ in SETUPS:
        row = [name]
        for dataset in DATASETS:
            mine = [r for r in results if r["setup"] == name and r["dataset"] == dataset]
            row += [mean_std([r["modes"] for r in mine], 1), mean_std([r["hq"] for r in mine], 0)]
        row.append(f"{statistics.mean(r['seconds'] for r in results if r['setup'] == name):.0f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| DiffAugment / ADA | n/a: image augmentations | | | | |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ganzoo.data.toys import grid_of_gaussians, ring_of_gaussians

    make = {"ring8": ring_of_gaussians, "grid25": grid_of_gaussians}
    real = {name: make[name](SAMPLES, generator=torch.Generator().manual_seed(0)) for name in DATASETS}
    fig, axes = plt.subplots(len(DATASETS), len(SETUPS), figsize=(2.0 * len(SETUPS), 2.1 * len(DATASETS)))
    for row, dataset in enumerate(DATASETS):
        limit = 1.2 * float(real[dataset].abs().max())
        for col, (name, _, _) in enumerate(SETUPS):
            ax = axes[row, col]
            fake = next(
                r["points"] for r in results if (r["dataset"], r["setup"], r["seed"]) == (dataset, name, 0)
            )
            data = real[dataset]
            ax.scatter(data[:, 0], data[:, 1], s=3, c="#777777", linewidths=0, rasterized=True)
            ax.scatter(fake[:, 0], fake[:, 1], s=1, c="#d62728", linewidths=0, rasterized=True)
            ax.set_xlim(-limit, limit)
            ax.set_ylim(-limit, limit)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if col == 0:
                ax.set_ylabel(dataset, fontsize=9)
    fig.suptitle("grey: data, red: 2,500 samples of G (seed 0)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=64)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every step budget (0.1: a quick look)")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs, one thread each")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "mode-collapse.png")
    args = parser.parse_args()

    use_example_plugin()
    from ganzoo.registry import get_plugin

    preset_lr = get_plugin("vanilla").presets["toy"]["lr"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mode-collapse-") as tmp:
        jobs = [
            {
                "dataset": dataset,
                "setup": name,
                "overrides": {
                    **{k: v for k, v in budget.items() if k != "steps"},
                    **(overrides(budget.get("lr", preset_lr)) if callable(overrides) else overrides),
                },
                "steps": max(1, round(budget["steps"] * multiple * args.scale)),
                "seed": seed,
                "out": os.path.join(tmp, f"{dataset}-{index}-{seed}"),
            }
            for dataset, budget in DATASETS.items()
            for index, (name, overrides, multiple) in enumerate(SETUPS)
            for seed in range(args.seeds)
        ]
        jobs.sort(key=lambda j: "unrolled_steps" not in j["overrides"])  # longest first: even load
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers, initializer=init_worker) as pool:
            results = []
            for result in pool.imap_unordered(run_one, jobs):
                results.append(result)
                print(
                    f"{result['dataset']:<7} {result['setup']:<24} seed {result['seed']}: "
                    f"{result['modes']}/{result['num_modes']} modes, {result['hq']:.1f}% high quality, "
                    f"{result['seconds']:.0f} s",
                    flush=True,
                )
    elapsed = time.perf_counter() - started
    print()
    print(table(results))
    budgets = ", ".join(f"{name} {round(b['steps'] * args.scale)} steps" for name, b in DATASETS.items())
    print(f"\n{args.seeds} seeds; {budgets} per run; {args.workers} workers: {elapsed / 60:.1f} min")
    plot(results, args.plot)
    print(f"wrote {args.plot} ({args.plot.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
