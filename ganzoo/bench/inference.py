"""Inference: the DCGAN generator in onnxruntime, against eager PyTorch and against the machine.

The generator of the benchmark preset is exported by ``ganzoo export``'s code path and run by
``GanzooModel.run_raw`` (numpy in and out), and in eager PyTorch under ``torch.inference_mode()``.
Beside the eager-vs-onnxruntime ratio, the physical figure: the generator's floating-point
operations per image (its convolutions, counted by ``torch.utils.flop_counter``), the GFLOP/s
onnxruntime achieves at each batch size and intra-op thread count (the runtime's ``threads``
argument), and this machine's float32 matrix-multiply peak (a large ``torch.mm``, best of several
runs) at the same thread count: what a convolution-bound network could reach at most.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganzoo.bench.common import BenchOptions, Row, bench_spec, cpu_cores, set_threads

MATMUL_SIDE = 2048  # 17 GFLOP per product: long enough to time, small enough for a few repeats


def dcgan_generator(options: BenchOptions, out_dir: Path):
    """The DCGAN generator of the benchmark preset, as a module and as an exported ONNX file."""
    from ganzoo.api import LoadedRun
    from ganzoo.plugin import DataInfo

    spec = bench_spec(Row("dcgan"), options)
    channels = spec.data.channels or (1 if spec.data.dataset == "digits" else 3)
    plugin = spec.plugin_cls(spec.model, DataInfo(channels=channels, size=spec.data.size))
    nets = plugin.build()
    for module in nets.values():
        module.eval().requires_grad_(False)
    run = LoadedRun(out_dir, spec, plugin, nets, 0, 0)
    (path,) = run.export(out_dir)
    return nets["G"], path, spec


def flops_per_image(generator, latent_dim: int) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        generator(torch.zeros(1, latent_dim))
    return int(counter.get_total_flops())


def matmul_peak_gflops(threads: int, repeats: int = 5) -> float:
    """Float32 GFLOP/s of a square ``torch.mm`` on ``threads`` threads, best of ``repeats``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(MATMUL_SIDE, MATMUL_SIDE), torch.randn(MATMUL_SIDE, MATMUL_SIDE)
        torch.mm(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * MATMUL_SIDE**3 / best / 1e9


def median_call_seconds(run: Callable[[], Any], seconds: float, rounds: int) -> float:
    run()  # warm-up; then size each round to about ``seconds``
    start = time.perf_counter()
    run()
    calls = max(3, int(seconds / max(time.perf_counter() - start, 1e-6)))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def bench_inference(options: BenchOptions) -> dict[str, Any]:
    """Eager against onnxruntime at each batch size, and onnxruntime's GFLOP/s per thread count."""
    import numpy as np
    import torch

    from ganzoo.engine.distributed import DistInfo
    from ganzoo.engine.trainer import resolve_device
    from ganzoo_export.runtime import CPU, CUDA, GanzooModel

    threads = set_threads(options.threads)
    device = resolve_device(options.device, DistInfo())
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        generator, path, spec = dcgan_generator(options, Path(tmp))
        latent_dim = spec.model.latent_dim
        flops = flops_per_image(generator, latent_dim)
        generator = generator.to(device)
        model = GanzooModel(path, providers=[CUDA, CPU] if device.type == "cuda" else [CPU], threads=threads)
        latents = {b: np.random.default_rng(b).standard_normal((b, latent_dim), dtype=np.float32)
                   for b in options.inference_batches}

        def eager(z: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return generator(torch.from_numpy(z).to(device)).cpu().numpy()

        rows = []
        for batch, z in latents.items():
            # Interleaved rounds: eager, onnxruntime, eager, ... so that load weighs on both alike.
            eager_s, onnx_s = [], []
            for _ in range(options.rounds):
                eager_s.append(median_call_seconds(lambda z=z: eager(z), options.inference_seconds, 1))
                onnx_s.append(median_call_seconds(lambda z=z: model.run_raw(latent=z), options.inference_seconds, 1))
            eager_ms, onnx_ms = statistics.median(eager_s) * 1e3, statistics.median(onnx_s) * 1e3
            rows.append({
                "model": f"dcgan generator ({spec.preset or 'default'} config, {spec.data.size}x{spec.data.size})",
                "batch": batch,
                "eager_ms": round(eager_ms, 3),
                "onnxruntime_ms": round(onnx_ms, 3),
                "speedup": round(eager_ms / onnx_ms, 2),
                "onnxruntime_gflops": round(flops * batch / onnx_ms / 1e6, 2),
                "providers": model.providers,
                "threads": threads,
            })
        sweep = []
        if device.type == "cpu":
            for count in range(1, cpu_cores() + 1):
                runtime = GanzooModel(path, providers=[CPU], threads=count)
                entry: dict[str, Any] = {"threads": count, "matmul_peak_gflops": round(matmul_peak_gflops(count), 1)}
                for batch, z in latents.items():
                    seconds = median_call_seconds(lambda z=z, m=runtime: m.run_raw(latent=z), options.inference_seconds, 3)
                    entry[f"batch_{batch}_gflops"] = round(flops * batch / seconds / 1e9, 2)
                sweep.append(entry)
    return {"flops_per_image": flops, "rows": rows, "threads_sweep": sweep}
