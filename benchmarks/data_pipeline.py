"""Does the streamed folder pipeline keep up with training? DCGAN at 64x64 on this machine.

Measures, on a generated folder of 160x160 JPEGs:
1. what the pipeline delivers: images/s from StreamSource (DataLoader workers decode, resize and
   prefetch; the batch is converted and flipped in the training process), nothing else running;
2. what training consumes: images/s of DCGAN's paper preset (64x64, batch 128) with the folder in
   memory, and again with the folder streamed.
The pipeline must deliver at least twice what training consumes; with streaming on, training
should run as fast as from memory.

    python benchmarks/data_pipeline.py [--images 1024] [--steps 2] [--rounds 3] [--workers N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ganzoo.bench import BenchOptions, bench_engine_step, bench_pipeline, machine_info, write_photo_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="JPEGs in the generated folder")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (medians are reported)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the cores)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's)")
    args = parser.parse_args()

    delivered = bench_pipeline(BenchOptions(pipeline_images=args.images, pipeline_size=64), workers=args.workers, batch_size=128)
    with tempfile.TemporaryDirectory(prefix="ganzoo-pipeline-") as tmp:
        folder = str(write_photo_folder(Path(tmp) / "photos", args.images))
        consumed = {}
        for mode in ("memory", "streamed"):
            options = BenchOptions(
                preset="paper", steps=args.steps, rounds=args.rounds, warmup=1, threads=args.threads,
                overrides={"dataset": folder, "stream": mode == "streamed", "workers": args.workers},
            )
            consumed[mode] = bench_engine_step("dcgan", options)["ganzoo_images_per_sec"]
    figures = {
        "machine": machine_info("cpu"),
        "pipeline_images_per_sec": delivered["images_per_sec"],
        "workers": delivered["workers"],
        "training_threads": args.threads,
        "training_images_per_sec_from_memory": consumed["memory"],
        "training_images_per_sec_streamed": consumed["streamed"],
        "headroom": round(delivered["images_per_sec"] / consumed["memory"], 1),
    }
    print(json.dumps(figures, indent=2))
    print(
        f"pipeline {figures['pipeline_images_per_sec']:.0f} images/s with {figures['workers']} workers; "
        f"DCGAN 64x64 trains at {consumed['memory']:.1f} images/s from memory and {consumed['streamed']:.1f} streamed; "
        f"headroom {figures['headroom']}x (target >= 2x)"
    )


if __name__ == "__main__":
    main()
