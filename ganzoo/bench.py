"""`ganzoo bench`: training, inference and data-pipeline speed on this machine, in one report.

Training: for each plugin, the engine's own loop (``Trainer.fit``) against the plain loop registered
for it in the ``ganzoo.plain_loops`` entry-point group, a hand-written PyTorch loop over fresh copies
of the same networks (same initial weights), the same batches and the same number of steps. After a warm-up the two run in
interleaved rounds (engine, plain, plain, engine, engine, plain, ...) so both see the same machine
load; the figures are medians over rounds and the ratio is the median of the per-round ratios. Each plugin
runs in its own process, which gives its peak memory and keeps allocators apart. EMA is off (the
plain loops keep no average); writing samples and checkpoints is left out of the timed rounds.

Inference: the DCGAN generator exported by ``ganzoo export`` and run by onnxruntime
(``GanzooModel.run_raw``) against the same generator in PyTorch eager mode, numpy in and out.

Data pipeline: a generated folder of photos-sized images streamed at 64x64 by ``StreamSource``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import ganzoo


@dataclass
class BenchOptions:
    plugins: Sequence[str] | None = None  # None: every installed plugin
    preset: str | None = None  # where a plugin has it; None: the built-in dataset of its data kind (BUILTIN_DATA)
    steps: int = 20  # training steps per timed round; at 5 the per-round ratios spread by +-10% here
    rounds: int = 7  # timed rounds of each loop
    warmup: int = 2  # untimed steps of each loop first
    device: str = "auto"
    threads: int | None = None  # torch threads; None: torch's default (the physical cores)
    overrides: dict[str, Any] = field(default_factory=dict)  # settings for every plugin, e.g. batch_size
    inference: bool = True
    inference_batches: tuple[int, ...] = (1, 64)
    inference_seconds: float = 0.3  # per timed round of each runtime
    pipeline: bool = True
    pipeline_images: int = 512
    pipeline_size: int = 64


# -- shared helpers ------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _set_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def machine_info(device_name: str = "auto") -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cuda = torch.cuda.is_available() and device_name != "cpu"
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": cpu,
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "ganzoo": ganzoo.__version__,
        "load_average": _load_average(),
    }


def _load_average() -> float | None:
    """The 1-minute load average: above the core count, other work shares the CPU and timings are noisy."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


# -- training: engine against the plain loop ----------------------------------------------------
BUILTIN_DATA = {"images": "digits", "unpaired": "digit-styles", "paired": "digit-pairs"}  # the built-in dataset of each data kind
PLAIN_LOOPS = "ganzoo.plain_loops"  # entry-point group: plugin name -> make(nets, config) -> step(batch)


def plain_loop(plugin: str) -> Callable | None:
    """The plain-loop factory registered for ``plugin`` (None when it has none)."""
    from importlib.metadata import entry_points

    bare = plugin.rpartition(":")[2]
    for ep in entry_points(group=PLAIN_LOOPS):
        if ep.name == bare:
            return ep.load()
    return None


def _bench_spec(plugin: str, options: BenchOptions):
    from ganzoo.engine.spec import resolve
    from ganzoo.registry import get_plugin

    plugin_cls = get_plugin(plugin)
    builtin = next((BUILTIN_DATA[k] for k in plugin_cls.accepts.kinds if k in BUILTIN_DATA), "digits")
    # The CPU-sized default: the preset named after the built-in dataset of the plugin's kind.
    wanted = options.preset or builtin
    preset = wanted if wanted in plugin_cls.presets else None
    quiet = {"progress": False, "log_every": 10**9, "sample_every": 10**9, "checkpoint_every": 10**9}
    settings = {"ema_half_life": 0, "device": options.device, **options.overrides, **quiet}
    spec = resolve(plugin, settings, preset)
    if "dataset" not in options.overrides and spec.data.dataset == "digits":
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, dataset=builtin))
    return spec


def _peak_memory_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def bench_training(plugin: str, options: BenchOptions) -> dict[str, Any]:
    """One plugin's row; meant to run in a fresh process (see ``run_bench``)."""
    import contextlib

    import torch

    from ganzoo.engine.trainer import Trainer

    threads = _set_threads(options.threads)
    spec = _bench_spec(plugin, options)
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        trainer = Trainer(spec, Path(tmp) / "run")
        # The timed loop is the engine's own; only its file writes are left out.
        trainer.write_samples = lambda: None
        trainer.save_checkpoint = lambda: None
        trainer.plugin.on_train_end = lambda run_dir: None
        plain_nets = {role: copy.deepcopy(module) for role, module in trainer.nets.items()}
        if trainer.cfg.compile:
            for module in plain_nets.values():
                module.compile()
        make_plain = plain_loop(plugin)
        plain_step = make_plain(plain_nets, spec.model) if make_plain is not None else None
        plain_stream = copy.deepcopy(trainer.stream)
        device = trainer.device

        def plain_images(steps: int) -> int:
            stage = trainer.plugin.stage(trainer.images_seen)
            batch_size = stage.batch_size or trainer.cfg.batch_size
            autocast = (torch.autocast(device.type, dtype=trainer.optim.amp_dtype) if trainer.optim.amp_dtype
                        else contextlib.nullcontext())
            for _ in range(steps):
                batch = plain_stream.next(batch_size, stage.resolution)
                if device.type == "cuda" and trainer.cfg.channels_last:
                    batch.images = batch.images.contiguous(memory_format=torch.channels_last)
                with autocast:
                    plain_step(batch)
            return steps * batch_size

        def engine_images(steps: int) -> int:
            before = trainer.images_seen
            trainer.total_steps = trainer.step + steps
            trainer.fit()
            return trainer.images_seen - before

        def timed(run: Callable[[int], int], steps: int) -> float:
            _sync(device)
            start = time.perf_counter()
            images = run(steps)
            _sync(device)
            return images / (time.perf_counter() - start)

        start = time.perf_counter()
        engine_images(options.warmup)
        warmup_seconds = time.perf_counter() - start  # includes compiling with compile=true
        if plain_step is not None:
            plain_images(options.warmup)
        engine, plain = [], []
        for round_index in range(options.rounds):
            # A B, then B A: a load that drifts during a round pair weighs on both sides alike.
            if plain_step is not None and round_index % 2:
                plain.append(timed(plain_images, options.steps))
            engine.append(timed(engine_images, options.steps))
            if plain_step is not None and not round_index % 2:
                plain.append(timed(plain_images, options.steps))
        stage = trainer.plugin.stage(trainer.images_seen)
        row = {
            "plugin": plugin,
            "preset": spec.preset,
            "batch_size": stage.batch_size or trainer.cfg.batch_size,
            "size": stage.resolution or trainer.data_info.size,
            "device": str(device),
            "threads": threads,
            "ganzoo_images_per_sec": round(statistics.median(engine), 2),
            "plain_images_per_sec": round(statistics.median(plain), 2) if plain else None,
            "ratio": round(statistics.median(e / p for e, p in zip(engine, plain)), 4) if plain else None,
            "ratio_per_round": [round(e / p, 4) for e, p in zip(engine, plain)],
            "warmup_seconds": round(warmup_seconds, 2),
            "peak_memory_mb": round(_peak_memory_mb(device), 1),
            "memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
        }
        if plain_step is None:
            row["note"] = f"no plain loop is registered for {plugin} (entry-point group {PLAIN_LOOPS})"
    return row


# -- inference: onnxruntime against eager PyTorch ------------------------------------------------
def _dcgan_generator(options: BenchOptions, out_dir: Path):
    """The DCGAN generator of the benchmark preset, as a module and as an exported ONNX file."""
    from ganzoo.api import LoadedRun
    from ganzoo.plugin import DataInfo

    spec = _bench_spec("dcgan", options)
    channels = spec.data.channels or (1 if spec.data.dataset == "digits" else 3)
    plugin = spec.plugin_cls(spec.model, DataInfo(channels=channels, size=spec.data.size))
    nets = plugin.build()
    for module in nets.values():
        module.eval().requires_grad_(False)
    run = LoadedRun(out_dir, spec, plugin, nets, 0, 0)
    (path,) = run.export(out_dir)
    return nets["G"], path, spec


def bench_inference(options: BenchOptions) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    from ganzoo.engine.distributed import DistInfo
    from ganzoo.engine.trainer import resolve_device
    from ganzoo_export.runtime import CPU, CUDA, GanzooModel

    threads = _set_threads(options.threads)
    device = resolve_device(options.device, DistInfo())
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        generator, path, spec = _dcgan_generator(options, Path(tmp))
        generator = generator.to(device)
        # The same number of CPU threads on both sides.
        model = GanzooModel(path, providers=[CUDA, CPU] if device.type == "cuda" else [CPU], threads=threads)
        latent_dim = spec.model.latent_dim

        def eager(z: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return generator(torch.from_numpy(z).to(device)).cpu().numpy()

        def onnx(z: np.ndarray) -> np.ndarray:
            return model.run_raw(latent=z)["image"]

        for batch in options.inference_batches:
            z = np.random.default_rng(batch).standard_normal((batch, latent_dim), dtype=np.float32)
            calls = {}
            for name, run in (("eager", eager), ("onnx", onnx)):
                run(z)  # warm-up; then size the rounds to about inference_seconds each
                start = time.perf_counter()
                run(z)
                calls[name] = max(3, int(options.inference_seconds / max(time.perf_counter() - start, 1e-6)))
            times: dict[str, list[float]] = {"eager": [], "onnx": []}
            for _ in range(options.rounds):
                for name, run in (("eager", eager), ("onnx", onnx)):
                    start = time.perf_counter()
                    for _ in range(calls[name]):
                        run(z)
                    times[name].append((time.perf_counter() - start) / calls[name])
            eager_ms, onnx_ms = (statistics.median(times[k]) * 1e3 for k in ("eager", "onnx"))
            rows.append({
                "model": f"dcgan generator ({spec.preset or 'default'} config, {spec.data.size}x{spec.data.size})",
                "batch": batch,
                "eager_ms": round(eager_ms, 3),
                "onnxruntime_ms": round(onnx_ms, 3),
                "speedup": round(eager_ms / onnx_ms, 2),
                "providers": model.providers,
                "threads": threads,
            })
    return rows


# -- data pipeline -------------------------------------------------------------------------------
def write_photo_folder(folder: Path, count: int, side: int = 160, seed: int = 0) -> Path:
    """``count`` JPEGs of ``side`` pixels: smooth colour fields with noise, so they compress like photos."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    for i in range(count):
        colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        mix = (ramp[:, None, None] + ramp[None, :, None]) / 2
        image = colours[0] * (1 - mix) + colours[1] * mix + rng.normal(0, 12, (side, side, 3))
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
    return folder


def bench_pipeline(options: BenchOptions, workers: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Images/s that a streamed folder delivers at ``pipeline_size``, decoded and resized by workers."""
    import torch

    from ganzoo.data.options import DataConfig
    from ganzoo.data.streamed import default_workers, make_source, open_folder

    workers = default_workers() if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        folder = write_photo_folder(Path(tmp) / "photos", options.pipeline_images)
        data = open_folder(folder, options.pipeline_size, 3, DataConfig(stream=True))
        source = make_source(data, torch.device("cpu"), 0, False, 0, 1, None, workers, batch_size)
        source.next(batch_size)  # workers started and the first batches decoded
        batches = max(2, options.pipeline_images // batch_size)
        start = time.perf_counter()
        for _ in range(batches):
            source.next(batch_size)
        elapsed = time.perf_counter() - start
        source.close()
    return {
        "images_per_sec": round(batches * batch_size / elapsed, 1),
        "size": options.pipeline_size,
        "workers": workers,
        "source_images": f"{options.pipeline_images} JPEGs of 160x160",
    }


# -- the whole report ----------------------------------------------------------------------------
def run_bench(options: BenchOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    from ganzoo.registry import list_plugins

    plugins = list(options.plugins) if options.plugins else list_plugins()
    report: dict[str, Any] = {
        "machine": machine_info(options.device),
        "settings": {k: v for k, v in dataclasses.asdict(options).items() if k != "plugins"},
        "command": None,
        "training": [],
    }
    spawn = get_context("spawn")
    for plugin in plugins:
        log(f"training: {plugin}")
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                report["training"].append(pool.submit(bench_training, plugin, options).result())
        except Exception as exc:  # one plugin's failure must not lose the other figures
            report["training"].append({"plugin": plugin, "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"})
    if options.inference:
        log("inference: onnxruntime vs eager")
        report["inference"] = bench_inference(options)
    if options.pipeline:
        log("data pipeline")
        report["data_pipeline"] = bench_pipeline(options)
    report["machine"]["load_average_after"] = _load_average()
    return report


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _busy(machine: dict[str, Any]) -> bool:
    loads = [machine.get(k) for k in ("load_average", "load_average_after")]
    return any(load is not None and load > (machine.get("cpu_cores") or 1) for load in loads)


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    parts = [
        f"machine: {m['cpu']} ({m['cpu_cores']} cores){', ' + m['gpu'] if m['gpu'] else ''}; "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, ganzoo {m['ganzoo']}",
        f"load average: {m.get('load_average')} before, {m.get('load_average_after')} after"
        + (" (busier than the cores: timings are noisy)" if _busy(m) else ""),
        "",
        "training (images/s, median of rounds; ratio = ganzoo / plain loop)",
    ]
    rows = []
    for r in report["training"]:
        if "error" in r:
            rows.append([r["plugin"], None, None, None, None, None, None, r["error"]])
        else:
            rows.append([r["plugin"], r["preset"], f"{r['batch_size']} @ {r['size']}px", r["ganzoo_images_per_sec"],
                         r["plain_images_per_sec"], r["ratio"], r["peak_memory_mb"], r.get("note", "")])
    parts.append(_table(["plugin", "preset", "batch", "ganzoo", "plain", "ratio", "peak MB", "note"], rows))
    if report.get("inference"):
        parts += ["", "inference (ms per batch, median; speedup = eager / onnxruntime)"]
        parts.append(_table(
            ["model", "batch", "eager ms", "onnxruntime ms", "speedup"],
            [[r["model"], r["batch"], r["eager_ms"], r["onnxruntime_ms"], r["speedup"]] for r in report["inference"]],
        ))
    if report.get("data_pipeline"):
        p = report["data_pipeline"]
        parts += ["", f"data pipeline: {p['images_per_sec']:,.1f} images/s streamed at {p['size']}x{p['size']} "
                      f"with {p['workers']} workers ({p['source_images']})"]
    return "\n".join(parts)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
