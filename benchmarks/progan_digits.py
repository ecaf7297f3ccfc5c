"""Progressive GAN on the built-in digits with the CPU preset: cost, time, quality, export parity.

    python benchmarks/progan_digits.py [--out runs/progan-digits-bench] [--docs]

Prints, in order:
1. the preset's cost in units of the DCGAN digits preset (the quickstart): plain-PyTorch steps of
   both plugins (their plain loops, ganzoo_plugins.plain_loops) timed interleaved per resolution, so shared load hits both
   alike, then weighted by the steps the growth schedule spends at each resolution;
2. after training `ganzoo train progan` (preset "digits") from scratch: wall time until the 32x32
   fade-in starts and until the schedule ends, with the thread count and load average;
3. the digit classifier's view of 1,000 EMA samples (classes covered, confident share, histogram);
4. the largest PyTorch/onnxruntime difference of the exported 32x32 and 16x16 generators.
--docs also writes the pictures in docs/images/ (growth strip and a short growth GIF).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ganzoo.api import load_run, train  # noqa: E402
from ganzoo.bench import plain_loop, plain_settings  # noqa: E402
from ganzoo.engine.spec import resolve  # noqa: E402
from ganzoo.metrics.classifier import digit_quality  # noqa: E402
from ganzoo.plugin import Batch, DataInfo  # noqa: E402
from ganzoo_plugins.progan import growth_schedule  # noqa: E402
from ganzoo_plugins.progan.growth_report import write_growth_report  # noqa: E402

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
DOCS_GIF_FRAMES = 9  # keeps the GIF in docs under 200 KB


def random_batch(size: int, resolution: int) -> Batch:
    return Batch(torch.rand(size, 1, resolution, resolution) * 2 - 1)


def seconds_per_step(step: Callable[[Batch], None], batch: Batch, repeats: int = 3) -> float:
    step(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step(batch)
    return (time.perf_counter() - start) / repeats


def plain_step(name: str, spec, plugin) -> Callable[[Batch], None]:
    """One iteration of the plugin's hand-written plain loop (ganzoo_plugins.plain_loops) on a batch."""
    update = plain_loop(name).updater(plugin.build(), SimpleNamespace(**plain_settings(spec, plugin.data.channels)))
    return lambda batch: update(batch.images)


def cost_in_dcgan_presets(rounds: int = 3) -> tuple[float, float]:
    """(cost until the 32x32 fade-in starts, cost of the whole schedule) in DCGAN presets."""
    info = DataInfo(channels=1, size=32)
    specs = {name: resolve(name, preset="digits") for name in ("dcgan", "progan")}
    plugins = {name: spec.plugin_cls(spec.model, info) for name, spec in specs.items()}
    steps = {name: plain_step(name, specs[name], plugins[name]) for name in plugins}
    dcgan_batch = random_batch(specs["dcgan"].train.batch_size, 32)
    schedule = growth_schedule(specs["progan"].model, 32, specs["progan"].train.batch_size)
    ratio = {}
    for resolution in schedule.resolutions():
        batch = random_batch(schedule.batch_size_at(resolution), resolution)
        ratios = []
        for _ in range(rounds):
            dcgan = seconds_per_step(steps["dcgan"], dcgan_batch)
            ratios.append(seconds_per_step(steps["progan"], batch) / dcgan)
        ratio[resolution] = statistics.median(ratios)
    growing = total = 0.0
    images = 0
    while images < schedule.total_images():
        stage = schedule.stage_at(images)
        total += ratio[stage.resolution]
        growing += ratio[stage.resolution] if stage.resolution < 32 else 0.0
        images += stage.batch_size
    dcgan_steps = specs["dcgan"].train.steps
    return growing / dcgan_steps, total / dcgan_steps


def seconds_until(stats: list[dict], start: float, resolution: int) -> float | None:
    reached = [r["time"] for r in stats if r.get("stage/res") == resolution]
    return round(reached[0] - start, 1) if reached else None


def onnx_error(path: Path, expected: torch.Tensor, z: torch.Tensor) -> float:
    from ganzoo_export.runtime import GanzooModel

    model = GanzooModel(path, providers=["CPUExecutionProvider"])
    (out,) = model.run_raw(latent=z.numpy()).values()
    return float(np.abs(out - expected.numpy()).max())


def write_docs_pictures(run_dir: Path, schedule) -> None:
    report = write_growth_report(run_dir, schedule, max_frames=DOCS_GIF_FRAMES, frame_ms=400)
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copy(report.strip, DOCS_IMAGES / "progan-growth.png")
    shutil.copy(report.gif, DOCS_IMAGES / "progan-growth.gif")
    write_growth_report(run_dir, schedule)  # the run keeps its full GIF
    for name in ("progan-growth.png", "progan-growth.gif"):
        print(f"wrote docs/images/{name} ({(DOCS_IMAGES / name).stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/progan-digits-bench"))
    parser.add_argument("--docs", action="store_true", help="write the docs pictures from this run")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)

    growing, whole = cost_in_dcgan_presets()
    print(f"cost in DCGAN digits presets: {growing:.2f} to the 32x32 fade-in, {whole:.2f} in all")

    load, start = os.getloadavg()[0], time.time()
    result = train("progan", data="digits", out=args.out, overrides={"progress": False})
    total = time.time() - start
    stats = [json.loads(line) for line in (args.out / "stats.jsonl").read_text().splitlines()]
    print(
        f"threads {torch.get_num_threads()}, load average {load:.1f} -> {os.getloadavg()[0]:.1f}, "
        f"steps {result.step}, images {result.images_seen}"
    )
    print(
        f"32x32 fade-in starts after {seconds_until(stats, start, 32)} s; "
        f"schedule done in {total:.1f} s"
    )

    run = load_run(args.out)
    quality = digit_quality(run.sample(1000, seed=1))
    print(
        f"digit classifier on 1000 EMA samples: classes covered {quality['classes_covered']}, "
        f"confident share {quality['confident_share']:.3f}, "
        f"mean confidence {quality['mean_confidence']:.3f}, "
        f"histogram {quality['class_histogram']}"
    )

    z = torch.randn(64, run.plugin.config.latent_dim, generator=torch.Generator().manual_seed(2))
    for path, resolution in zip(run.export(resolution=16), (32, 16)):
        with torch.no_grad():
            expected = run.nets["G"](z, resolution, 1.0).clamp(-1, 1)
        error = onnx_error(path, expected, z)
        print(f"{path.name}: max |PyTorch - onnxruntime| {error:.2e} over 64 latents")

    if args.docs:
        write_docs_pictures(args.out, run.plugin.schedule)


if __name__ == "__main__":
    main()
