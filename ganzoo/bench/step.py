"""The "engine step" figure: the engine's loop alone against the plain loop, in one process.

The engine runs ``Trainer.fit`` with EMA, progress, logs, samples and checkpoints off (what is left
is its step and the loss check); the plain loop (``ganzoo_plugins.plain_loops``) trains deep copies
of the same networks from the same initial weights, drawing its own batches from the raw data.
After a warm-up the two run in interleaved rounds (engine, plain, plain, engine, ...) so both see
the same machine load; figures are medians over rounds, the ratio the median of per-round ratios.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganzoo.bench.common import (
    BUILTIN_DATA,
    PLAIN_LOOPS,
    BenchOptions,
    Row,
    bench_spec,
    plain_loop,
    set_threads,
    sync,
    trainer_settings,
    unmatched_switches,
)


def peak_memory_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def interleaved(sides: dict[str, Callable[[int], int]], steps: int, rounds: int, sync_device) -> dict[str, list[float]]:
    """Images/s of each side per round, in A B, B A order so that a drifting load weighs on both alike."""
    names = list(sides)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            sync_device()
            start = time.perf_counter()
            images = sides[name](steps)
            sync_device()
            speeds[name].append(images / (time.perf_counter() - start))
    return speeds


def bench_engine_step(row: Row | str, options: BenchOptions) -> dict[str, Any]:
    """One row of the engine-step figure; meant to run in a fresh process (see ``report.run_bench``)."""
    from ganzoo.engine.trainer import Trainer

    row = Row.parse(row) if isinstance(row, str) else row
    threads = set_threads(options.threads)
    spec = bench_spec(row, options)
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        trainer = Trainer(spec, Path(tmp) / "run")
        trainer.write_samples = lambda: None
        trainer.save_checkpoint = lambda: None
        trainer.plugin.on_train_end = lambda run_dir: None
        device = trainer.device
        stage = trainer.plugin.stage(trainer.images_seen)
        batch_size = stage.batch_size or trainer.cfg.batch_size
        loop = plain_loop(row.plugin)
        builtin = spec.data.dataset in BUILTIN_DATA.values()  # the plain loops read the built-in data only
        plain_step = None
        if loop is not None and builtin:
            s = trainer_settings(trainer)
            plain_nets = {role: copy.deepcopy(module) for role, module in trainer.nets.items()}
            if trainer.cfg.compile:
                for module in plain_nets.values():
                    module.compile()
            plain_step = loop.make(plain_nets, s, loop.raw_data(s))

        def engine(steps: int) -> int:
            before = trainer.images_seen
            trainer.total_steps = trainer.step + steps
            trainer.fit()
            return trainer.images_seen - before

        def plain(steps: int) -> int:
            for _ in range(steps):
                plain_step()
            return steps * batch_size

        start = time.perf_counter()
        engine(options.warmup)
        warmup_seconds = time.perf_counter() - start  # includes compiling with compile=true
        sides = {"engine": engine}
        if plain_step is not None:
            plain(options.warmup)
            sides["plain"] = plain
        speeds = interleaved(sides, options.steps, options.rounds, lambda: sync(device))
        ratios = [e / p for e, p in zip(speeds["engine"], speeds.get("plain", []))]
        result = {
            "plugin": row.plugin,
            "preset": spec.preset,
            "batch_size": batch_size,
            "size": stage.resolution or trainer.data_info.size,
            "device": str(device),
            "threads": threads,
            "ganzoo_images_per_sec": round(statistics.median(speeds["engine"]), 2),
            "plain_images_per_sec": round(statistics.median(speeds["plain"]), 2) if ratios else None,
            "ratio": round(statistics.median(ratios), 4) if ratios else None,
            "ratio_per_round": [round(r, 4) for r in ratios],
            "warmup_seconds": round(warmup_seconds, 2),
            "peak_memory_mb": round(peak_memory_mb(device), 1),
            "memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
        }
        if loop is None:
            result["note"] = f"no plain loop is registered for {row.plugin} (entry-point group {PLAIN_LOOPS})"
        elif not builtin:
            result["note"] = "the plain loops train on the built-in data only"
        elif missing := unmatched_switches(spec, loop):
            result["note"] = f"the plain loop does not implement {', '.join(missing)}"
    return result
