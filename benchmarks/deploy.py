"""Deploy figures: fp32 / fp16 / int8 files (size, speed, quality) and onnxruntime's CPU threads.

    python benchmarks/deploy.py --generator RUN --translator RUN     # runs you trained
    python benchmarks/deploy.py                                      # trains both first (cgan digits,
                                                                     # cyclegan digit-styles presets)

Every speed figure is a median over interleaved rounds (A B C A B C ...), so machine load hits all
variants alike; ratios are against fp32 (precision) or one thread (threads) from the same run.
Generator quality: FID with the digit classifier's features (`ganzoo eval`, 1,000 samples) and
PSNR of each file's images against the fp32 file's for the same seeds. Translator quality: PSNR
against the digit-styles answer key (the true rendering in the other style) and against fp32.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganzoo.api import load_run, train
from ganzoo_export import GanzooModel
from ganzoo_export.runtime import physical_cores

PRECISIONS = ("fp32", "fp16", "int8")


def timed(calls: dict[str, Callable[[], object]], rounds: int, seconds: float) -> dict[str, float]:
    """Median milliseconds per call of each callable, measured in interleaved rounds."""
    repeats = {}
    for name, call in calls.items():
        call()  # warm-up
        start = time.perf_counter()
        call()
        repeats[name] = max(3, int(seconds / max(time.perf_counter() - start, 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(repeats[name]):
                call()
            samples[name].append((time.perf_counter() - start) / repeats[name] * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def speed_cell(ms: dict[str, float], name: str, baseline: str) -> str:
    """Milliseconds and the speed-up over ``baseline`` measured in the same rounds."""
    return f"{ms[name]:.3g} ({ms[baseline] / ms[name]:.2f}x)"


def size_cell(path: Path, fp32: Path) -> str:
    return f"{path.stat().st_size / 1024:.0f} ({path.stat().st_size / fp32.stat().st_size:.2f})"


def export_all(run_dir: Path, out: Path) -> dict[str, list[Path]]:
    run = load_run(run_dir)
    return {precision: run.export(out / precision, precision=precision) for precision in PRECISIONS}


def generator_table(files: dict[str, Path], rounds: int, seconds: float) -> list[str]:
    from ganzoo.reporting.run_eval import evaluate_path

    models = {p: GanzooModel(path) for p, path in files.items()}
    reference = models["fp32"].generate(256, seed=1)
    rows = ["| file | size KB | batch 1 ms | batch 64 ms | FID (digits) | PSNR vs fp32 dB |", "|---|---|---|---|---|---|"]
    speed = {
        batch: timed({p: (lambda m=m, b=batch: m.generate(b, seed=0, batch_size=b)) for p, m in models.items()},
                     rounds, seconds)
        for batch in (1, 64)
    }
    for precision, path in files.items():
        fid = evaluate_path(path, "fid", data="digits", num_samples=1000, seed=0)["metrics"]["fid"]
        quality = psnr(models[precision].generate(256, seed=1), reference)
        rows.append(
            f"| {precision} | {size_cell(path, files['fp32'])} | {speed_cell(speed[1], precision, 'fp32')} "
            f"| {speed_cell(speed[64], precision, 'fp32')} | {fid:.2f} | {quality:.1f} |"
        )
    return rows


def translator_table(files: dict[str, Path], seed: int, rounds: int, seconds: float) -> list[str]:
    from ganzoo.data.digit_styles import make_digit_styles

    models = {p: GanzooModel(path) for p, path in files.items()}
    size = models["fp32"].metadata.training_size or 32
    styles = make_digit_styles(size=size, seed=seed)
    sources, answers = styles.test_a[:200], styles.test_b[:200]
    outputs = {p: np.stack([m.translate(image) for image in sources]) for p, m in models.items()}
    large = np.kron(sources[0], np.ones((8, 8, 1), np.uint8))  # one 256x256 image
    speed = {
        "small": timed({p: (lambda m=m: m.translate(sources[0])) for p, m in models.items()}, rounds, seconds),
        "large": timed({p: (lambda m=m: m.translate(large)) for p, m in models.items()}, rounds, seconds),
    }
    rows = [f"| file | size KB | {size} px ms | 256 px ms | PSNR vs answer key dB | PSNR vs fp32 dB |",
            "|---|---|---|---|---|---|"]
    for precision, path in files.items():
        rows.append(
            f"| {precision} | {size_cell(path, files['fp32'])} | {speed_cell(speed['small'], precision, 'fp32')} "
            f"| {speed_cell(speed['large'], precision, 'fp32')} | {psnr(outputs[precision], answers):.2f} "
            f"| {psnr(outputs[precision], outputs['fp32']):.1f} |"
        )
    return rows


def threads_table(translator: Path, work: Path, rounds: int, seconds: float) -> list[str]:
    """Intra-op threads for DCGAN's digits generator (32 px; untrained: speed does not depend on
    the weights) and the translator, side by side in interleaved rounds."""
    from ganzoo.bench import BenchOptions, _dcgan_generator

    _, generator, _ = _dcgan_generator(BenchOptions(preset="digits"), work)
    counts = sorted({1, 2, physical_cores()})
    rows = ["| model, input | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} ms" for t in counts) + " |",
            "|---|" + "---|" * len(counts)]
    gens = {t: GanzooModel(generator, threads=t) for t in counts}
    trans = {t: GanzooModel(translator, threads=t) for t in counts}
    size = trans[1].metadata.training_size or 32
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    large = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    cases = {
        "DCGAN digits generator (32 px), batch 1": {t: (lambda m=m: m.generate(1, seed=0)) for t, m in gens.items()},
        "DCGAN digits generator (32 px), batch 64": {t: (lambda m=m: m.generate(64, seed=0)) for t, m in gens.items()},
        f"translator, one {size} px image": {t: (lambda m=m: m.translate(image)) for t, m in trans.items()},
        "translator, one 256 px image": {t: (lambda m=m: m.translate(large)) for t, m in trans.items()},
    }
    for label, calls in cases.items():
        ms = timed({str(t): call for t, call in calls.items()}, rounds, seconds)
        rows.append(f"| {label} | " + " | ".join(speed_cell(ms, str(t), "1") for t in counts) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", type=Path, help="a digits generator run (default: train cgan, digits preset)")
    parser.add_argument("--translator", type=Path, help="a digit-styles CycleGAN run (default: train its preset)")
    parser.add_argument("--tables", default="generator,translator,threads", help="which tables to print")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="about how long each timed round runs")
    args = parser.parse_args()
    tables = set(args.tables.split(","))
    with tempfile.TemporaryDirectory(prefix="ganzoo-deploy-bench-") as tmp:
        work = Path(tmp)
        if "generator" in tables:
            run = args.generator or train("cgan", data="digits", out=work / "cgan").run_dir
            files = {p: paths[0] for p, paths in export_all(run, work / "g").items()}
            print(f"## generator ({run})\n")
            print("\n".join(generator_table(files, args.rounds, args.seconds)))
        if tables & {"translator", "threads"}:
            run = args.translator or train("cyclegan", preset="digit-styles", out=work / "cyclegan").run_dir
            exported = export_all(run, work / "t")
            files = {p: next(f for f in paths if f.stem.endswith(("AtoB", "AtoB-" + p))) for p, paths in exported.items()}
            if "translator" in tables:
                print(f"\n## translator A->B ({run})\n")
                print("\n".join(translator_table(files, load_run(run).spec.train.seed, args.rounds, args.seconds)))
            if "threads" in tables:
                print(f"\n## onnxruntime intra-op threads (fp32; {physical_cores()} physical cores; speed-up over 1 thread)\n")
                print("\n".join(threads_table(files["fp32"], work / "threads", args.rounds, args.seconds)))


if __name__ == "__main__":
    main()
