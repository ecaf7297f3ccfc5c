"""The whole ``ganzoo bench`` report: every figure, as tables and as JSON."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from ganzoo.bench.as_run import bench_as_run, bench_parts
from ganzoo.bench.common import BenchOptions, Row, load_average, machine_info
from ganzoo.bench.inference import bench_inference
from ganzoo.bench.parts import ORDER, OTHER_THREAD
from ganzoo.bench.pipeline import bench_pipeline
from ganzoo.bench.step import bench_engine_step


def error_row(row: Row, exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip()
    return {"plugin": str(row.plugin), "batch_size": row.batch_size,
            "error": f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"}


def in_fresh_process(fn: Callable, row: Row, options: BenchOptions) -> dict[str, Any]:
    """``fn(row, options)`` in its own process: its peak memory, and allocators kept apart."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, row, options).result()


def run_bench(options: BenchOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    from ganzoo.registry import list_plugins

    started = time.perf_counter()
    rows = [Row.parse(p) for p in options.plugins] if options.plugins else [Row(p) for p in list_plugins()]
    report: dict[str, Any] = {
        "machine": machine_info(options.device),
        "settings": {k: v for k, v in dataclasses.asdict(options).items() if k != "plugins"},
        "rows": [f"{r.plugin}@{r.batch_size}" if r.batch_size else r.plugin for r in rows],
        "command": None,
        "training": [],
        "as_run": [],
        "parts": [],
    }
    stages = [("training", in_fresh_process, bench_engine_step, options.step),
              ("as_run", lambda fn, row, opts: fn(row, opts), bench_as_run, options.as_run),
              ("parts", lambda fn, row, opts: fn(row, opts), bench_parts, options.as_run and options.parts)]
    for row in rows:
        for key, runner, fn, wanted in stages:
            if not wanted:
                continue
            log(f"{key.replace('_', ' ')}: {row.plugin}{f' @ batch {row.batch_size}' if row.batch_size else ''}")
            try:
                report[key].append(runner(fn, row, options))
            except Exception as exc:  # one row's failure must not lose the other figures
                report[key].append(error_row(row, exc))
    if options.inference:
        log("inference: onnxruntime vs eager, and vs this machine's matrix-multiply peak")
        report["inference"] = bench_inference(options)
    if options.pipeline:
        log("data pipeline")
        report["data_pipeline"] = bench_pipeline(options)
    report["machine"]["load_average_after"] = load_average()
    report["seconds"] = round(time.perf_counter() - started, 1)
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


def _name(r: dict[str, Any]) -> str:
    return r["plugin"]


def _batch(r: dict[str, Any]) -> str:
    return f"{r['batch_size']} @ {r['size']}px" if r.get("size") else str(r.get("batch_size") or "")


def format_training(report: dict[str, Any]) -> list[str]:
    parts = []
    if report.get("as_run"):
        first = next((r for r in report["as_run"] if "steps" in r), None)
        how = f"{first['steps']} steps per process, median of {first['rounds']} rounds" if first else ""
        parts += ["", f"train as run: `ganzoo train` (preset settings, in a terminal) vs the plain loop, as processes ({how})",
                  "images/s over the span from the first step to the process's exit; start-up (imports, data, building) apart"]
        rows = []
        for r in report["as_run"]:
            if "ratio" not in r:
                rows.append([_name(r), _batch(r), None, None, None, None, None, None, None, None, r.get("error") or r.get("note")])
                continue
            rows.append([_name(r), _batch(r), r["ganzoo_images_per_sec"], r["plain_images_per_sec"], r["ratio"],
                         r["ratio_with_startup"], r["ganzoo_startup_seconds"], r["plain_startup_seconds"],
                         r["ganzoo_cpu_seconds"], r["plain_cpu_seconds"], ""])
        parts.append(_table(["plugin", "batch", "ganzoo", "plain", "ratio", "incl. start-up", "start-up s",
                             "plain start-up s", "CPU s", "plain CPU s", "note"], rows))
    if not report.get("training"):
        return parts
    parts += ["", "engine step: the engine's loop (EMA, progress, logs, samples, checkpoints off) vs the plain loop, "
                  "in one process; images/s, medians of interleaved rounds"]
    rows = []
    for r in report["training"]:
        if "error" in r:
            rows.append([_name(r), None, r.get("batch_size"), None, None, None, None, r["error"]])
        else:
            rows.append([_name(r), r["preset"], _batch(r), r["ganzoo_images_per_sec"], r["plain_images_per_sec"],
                         r["ratio"], r["peak_memory_mb"], r.get("note", "")])
    parts.append(_table(["plugin", "preset", "batch", "ganzoo", "plain", "ratio", "peak MB", "note"], rows))
    return parts


def format_parts(report: dict[str, Any]) -> list[str]:
    parts = []
    for r in report.get("parts", []):
        if "ganzoo" not in r:
            parts += ["", f"where the time goes, {r['plugin']}: {r.get('error', 'n/a')}"]
            continue
        ours, plain = r["ganzoo"], r.get("plain", {})
        names = list(ORDER) + sorted(k for k in ours if k.endswith(OTHER_THREAD))
        rows = [[name, ours.get(name), plain.get(name) if plain else None] for name in names]
        rows.append(["span (ms per step)", ours["span"], plain.get("span") if plain else None])
        if "page faults" in ours:
            rows.append(["page faults per step", round(ours["page faults"]), round(plain["page faults"]) if "page faults" in plain else None])
        for key in ("start-up: imports and the rest", "start-up: data loading", "start-up: building"):
            rows.append([key + " (s)", ours[key], plain.get(key) if plain else None])
        parts += ["", f"where the time goes: {r['plugin']} at batch {r['batch_size']}, ms per step "
                      "(one process each, every part timed; parts exclude what they call)"]
        parts.append(_table(["part", "ganzoo", "plain"], rows))
    return parts


def format_inference(inference: dict[str, Any]) -> list[str]:
    parts = ["", f"inference (ms per batch, median; speedup = eager / onnxruntime); the generator does "
                 f"{inference['flops_per_image'] / 1e6:,.1f} MFLOP per image"]
    parts.append(_table(
        ["model", "batch", "eager ms", "onnxruntime ms", "speedup", "onnxruntime GFLOP/s"],
        [[r["model"], r["batch"], r["eager_ms"], r["onnxruntime_ms"], r["speedup"], r["onnxruntime_gflops"]]
         for r in inference["rows"]],
    ))
    sweep = inference.get("threads_sweep") or []
    if sweep:
        batches = [k for k in sweep[0] if k.startswith("batch_")]
        rows = []
        for entry in sweep:
            cells = [entry["threads"], entry["matmul_peak_gflops"]]
            for key in batches:
                cells += [entry[key], f"{100 * entry[key] / entry['matmul_peak_gflops']:.1f}%"]
            rows.append(cells)
        headers = ["onnxruntime threads", "matmul peak GFLOP/s"]
        for key in batches:
            batch = key.split("_")[1]
            headers += [f"batch {batch} GFLOP/s", "of peak"]
        parts += ["", "onnxruntime against this machine's float32 matrix-multiply peak (torch.mm, same threads)"]
        parts.append(_table(headers, rows))
        machine_peak = max(e["matmul_peak_gflops"] for e in sweep)
        for key in batches:
            best = max(sweep, key=lambda e: e[key])
            parts.append(f"batch {key.split('_')[1]}: closest to the peak with {best['threads']} thread(s): "
                         f"{best[key]:.1f} GFLOP/s, {100 * best[key] / machine_peak:.1f}% of {machine_peak:.1f}")
    return parts


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    parts = [
        f"machine: {m['cpu']} ({m['cpu_cores']} cores){', ' + m['gpu'] if m['gpu'] else ''}; "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, ganzoo {m['ganzoo']}",
        f"load average: {m.get('load_average')} before, {m.get('load_average_after')} after"
        + (" (busier than the cores: timings are noisy)" if _busy(m) else "")
        + (f"; took {report['seconds']:,.0f} s" if report.get("seconds") is not None else ""),
    ]
    parts += format_training(report)
    parts += format_parts(report)
    if report.get("inference"):
        parts += format_inference(report["inference"])
    if report.get("data_pipeline"):
        p = report["data_pipeline"]
        parts += ["", f"data pipeline: {p['images_per_sec']:,.1f} images/s streamed at {p['size']}x{p['size']} "
                      f"with {p['workers']} workers ({p['source_images']})"]
    return "\n".join(parts)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
