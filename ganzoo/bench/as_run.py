"""The "train as run" figure: ``ganzoo train`` as a user runs it, against the plain loop as a process.

Each round starts ``python -m ganzoo train PLUGIN --preset P --steps N`` (the preset's settings:
progress display, stats lines, loss checks, EMA, sample grids and checkpoints at their intervals,
and one of each at the end) in a pseudo-terminal, so the progress display draws as in a user's
terminal, and ``python -m ganzoo_plugins.plain_loops PLUGIN --steps N`` in another; the two
alternate (A B, B A, ...) and the figures are medians over rounds.

The timed span of a process runs from its first step to its exit: the end-of-run grid and
checkpoint and the interpreter's exit are inside it, process start-up (interpreter, imports, data
loading, building the networks and the run folder) is not, and is reported apart. ganzoo's first
step is found from its first stats line (its time minus that interval's images over its images/s);
the plain loop reports its own. A round of N steps holds one grid and one checkpoint however short
it is, more than the preset's rate when N is below its intervals: that counts against ganzoo.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.bench.common import BenchOptions, Row, bench_spec, plain_loop, plain_settings
from ganzoo.errors import UserError

COLUMNS, LINES = 120, 40  # the terminal the progress display draws in


@dataclass
class Finished:
    started: float  # time.time() just before the process was started
    ended: float  # ... just after it exited
    cpu_seconds: float  # user + system time of the process (all its threads)
    output_bytes: int  # what it wrote to the terminal
    output_tail: str


def run_in_terminal(command: list[str], env: dict[str, str], cwd: Path) -> Finished:
    """Run ``command`` with a pseudo-terminal as its stdin, stdout and stderr; drain it meanwhile."""
    try:
        import fcntl
        import pty
        import struct
        import termios
    except ImportError:
        raise UserError("the as-run figure needs a POSIX pseudo-terminal: pass --no-as-run on this system") from None
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    received: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    started = time.time()
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd,
                               start_new_session=True)
    os.close(terminal)
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=5)
    os.close(controller)
    output = b"".join(received)
    tail = output[-2000:].decode("utf-8", "replace")
    if process.returncode != 0:
        last = [line for line in tail.replace("\r", "\n").splitlines() if line.strip()]
        raise RuntimeError(f"{' '.join(command[:6])} ... exited with {process.returncode}: {last[-1] if last else ''}")
    return Finished(started, ended, usage.ru_utime + usage.ru_stime, len(output), tail)


def child_env(options: BenchOptions) -> dict[str, str]:
    env = dict(os.environ, TERM=os.environ.get("TERM", "xterm-256color"))
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if options.threads:
        env["OMP_NUM_THREADS"] = str(options.threads)  # both sides: torch reads it at start
    return env


def ganzoo_command(spec, row: Row, options: BenchOptions, steps: int, run_dir: Path) -> list[str]:
    command = ["ganzoo", "train", spec.plugin, "--data", spec.data.dataset, "--steps", str(steps), "--out", str(run_dir)]
    if spec.preset:
        command += ["--preset", spec.preset]
    for key, value in {"device": options.device, **row.settings(options)}.items():
        command += ["--set", f"{key}={value}"]
    return command


def first_step_time(run_dir: Path, images_per_step: int, log_every: int) -> float:
    """When ganzoo's loop began, from its first stats line (logged after ``log_every`` steps)."""
    with open(run_dir / "stats.jsonl") as f:
        first = json.loads(f.readline())
    return first["time"] - min(first["step"], log_every) * images_per_step / first["images_per_sec"]


def bench_as_run(row: Row | str, options: BenchOptions) -> dict[str, Any]:
    """One row of the as-run figure: ``options.run_rounds`` processes of each side."""
    row = Row.parse(row) if isinstance(row, str) else row
    spec = bench_spec(row, options, as_run=True)
    loop = plain_loop(row.plugin)
    if loop is None or not hasattr(loop, "networks"):
        return {"plugin": row.plugin, "note": "no plain loop that trains a whole run is registered"}
    info = _data_info(spec)
    stage = spec.plugin_cls(spec.model, info).stage(0)
    if stage.resolution not in (None, spec.data.size):
        return {"plugin": row.plugin, "note": "the plain loop trains one resolution; the plugin's run grows"}
    batch_size = stage.batch_size or spec.train.batch_size
    settings = plain_settings(spec, info.channels, stage)
    steps = options.run_steps
    env = child_env(options)
    sides: dict[str, list[dict[str, float]]] = {"ganzoo": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        work = Path(tmp)

        def ganzoo_round(index: int) -> dict[str, float]:
            run_dir = work / f"run-{index}"
            command = [sys.executable, "-m", *ganzoo_command(spec, row, options, steps, run_dir)]
            done = run_in_terminal(command, env, work)
            first = first_step_time(run_dir, batch_size, spec.train.log_every)
            return {"startup": first - done.started, "span": done.ended - first, "cpu": done.cpu_seconds,
                    "output_bytes": done.output_bytes}

        def plain_round(index: int) -> dict[str, float]:
            report = work / f"plain-{index}.json"
            command = [sys.executable, "-m", "ganzoo_plugins.plain_loops", row.plugin, "--settings",
                       json.dumps(settings), "--steps", str(steps), "--report", str(report)]
            done = run_in_terminal(command, env, work)
            first = json.loads(report.read_text())["first_step"]
            return {"startup": first - done.started, "span": done.ended - first, "cpu": done.cpu_seconds,
                    "output_bytes": done.output_bytes}

        rounds = {"ganzoo": ganzoo_round, "plain": plain_round}
        for index in range(options.run_rounds):
            for name in ("ganzoo", "plain") if index % 2 == 0 else ("plain", "ganzoo"):
                sides[name].append(rounds[name](index))
    images = steps * batch_size
    median = lambda side, key: statistics.median(r[key] for r in sides[side])  # noqa: E731
    ratios = [p["span"] / g["span"] for g, p in zip(sides["ganzoo"], sides["plain"])]
    with_startup = [(p["span"] + p["startup"]) / (g["span"] + g["startup"]) for g, p in zip(sides["ganzoo"], sides["plain"])]
    return {
        "plugin": row.plugin,
        "preset": spec.preset,
        "batch_size": batch_size,
        "size": spec.data.size,
        "steps": steps,
        "rounds": options.run_rounds,
        "ganzoo_images_per_sec": round(images / median("ganzoo", "span"), 2),
        "plain_images_per_sec": round(images / median("plain", "span"), 2),
        "ratio": round(statistics.median(ratios), 4),
        "ratio_per_round": [round(r, 4) for r in ratios],
        "ratio_with_startup": round(statistics.median(with_startup), 4),
        "ganzoo_startup_seconds": round(median("ganzoo", "startup"), 2),
        "plain_startup_seconds": round(median("plain", "startup"), 2),
        "ganzoo_cpu_seconds": round(median("ganzoo", "cpu"), 2),
        "plain_cpu_seconds": round(median("plain", "cpu"), 2),
        "ganzoo_terminal_bytes": int(median("ganzoo", "output_bytes")),
        "ganzoo_command": " ".join(ganzoo_command(spec, row, options, steps, Path("RUN"))),
    }


def bench_parts(row: Row | str, options: BenchOptions) -> dict[str, Any]:
    """One process of each side with a timer on every part (``ganzoo.bench.parts``)."""
    from ganzoo.bench import parts

    row = Row.parse(row) if isinstance(row, str) else row
    spec = bench_spec(row, options, as_run=True)
    loop = plain_loop(row.plugin)
    info = _data_info(spec)
    stage = spec.plugin_cls(spec.model, info).stage(0)
    steps = options.run_steps
    env = child_env(options)
    result: dict[str, Any] = {"plugin": row.plugin, "batch_size": stage.batch_size or spec.train.batch_size}
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        work = Path(tmp)
        report = work / "ganzoo-parts.json"
        command = [sys.executable, "-c", "from ganzoo.bench.children import ganzoo_child; ganzoo_child()", str(report),
                   *ganzoo_command(spec, row, options, steps, work / "run")[1:]]
        done = run_in_terminal(command, env, work)
        result["ganzoo"] = parts.per_step(json.loads(report.read_text()), done.started)
        if loop is not None and hasattr(loop, "networks") and stage.resolution in (None, spec.data.size):
            report = work / "plain-parts.json"
            command = [sys.executable, "-c", "from ganzoo.bench.children import plain_child; plain_child()", str(report),
                       row.plugin, "--settings", json.dumps(plain_settings(spec, info.channels, stage)), "--steps", str(steps)]
            done = run_in_terminal(command, env, work)
            result["plain"] = parts.per_step(json.loads(report.read_text()), done.started)
    return result


def _data_info(spec):
    """What the plugin is told about its data (the first stage may depend on it)."""
    import dataclasses

    from ganzoo.data.catalog import open_data

    info = open_data(spec.data, spec.plugin_cls.accepts, seed=spec.train.seed).info
    return dataclasses.replace(info, batch_size=spec.train.batch_size)
