"""`ganzoo bench`: training, inference and data-pipeline speed, as a table and as JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def bench(
    plugins: str = typer.Option(None, "--plugins", help="Comma-separated rows: PLUGIN or PLUGIN@BATCH_SIZE (default: every installed plugin)."),
    preset: str = typer.Option(None, "--preset", help="Preset for the plugins that have it (default: the CPU-sized one named after the built-in data: 'digits', 'digit-styles', 'digit-pairs')."),
    step: bool = typer.Option(True, "--step/--no-step", help="Time the engine's loop against the plain loop in one process."),
    steps: int = typer.Option(20, "--steps", help="Engine step: training steps per timed round (fewer: noisier ratios)."),
    rounds: int = typer.Option(7, "--rounds", help="Engine step: timed rounds of each loop; figures are medians."),
    warmup: int = typer.Option(2, "--warmup", help="Engine step: untimed training steps before the rounds."),
    as_run: bool = typer.Option(True, "--as-run/--no-as-run", help="Time `ganzoo train` and the plain loop as processes."),
    run_steps: int = typer.Option(200, "--run-steps", help="As run: training steps of each process."),
    run_rounds: int = typer.Option(3, "--run-rounds", help="As run: processes of each side; figures are medians."),
    parts: bool = typer.Option(True, "--parts/--no-parts", help="As run: one more process of each side, every part timed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(None, "--threads", help="PyTorch threads (default: PyTorch's own choice)."),
    sets: list[str] = typer.Option(None, "--set", help="Setting for every plugin, e.g. --set batch_size=32."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON to this file ('-': print them)."),
    inference: bool = typer.Option(True, "--inference/--no-inference", help="Time onnxruntime against eager PyTorch."),
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline", help="Time the streamed folder pipeline."),
) -> None:
    """Measure images/s of ganzoo against a plain PyTorch loop (as run and per engine step), onnxruntime
    against eager and the machine's peak, and the data pipeline."""
    from ganzoo.bench import BenchOptions, format_report, run_bench, to_json
    from ganzoo.config import parse_assignments
    from ganzoo.errors import UserError

    if min(steps, rounds, run_steps, run_rounds) < 1 or warmup < 0:
        raise UserError("--steps, --rounds, --run-steps and --run-rounds must be at least 1 and --warmup at least 0")
    options = BenchOptions(
        plugins=[p.strip() for p in plugins.split(",") if p.strip()] if plugins else None,
        preset=preset, step=step, steps=steps, rounds=rounds, warmup=warmup, device=device, threads=threads,
        as_run=as_run, run_steps=run_steps, run_rounds=run_rounds, parts=parts,
        overrides=parse_assignments(sets), inference=inference, pipeline=pipeline,
    )
    report = run_bench(options, log=lambda line: typer.echo(f"... {line}", err=True))
    report["command"] = "ganzoo " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "ganzoo bench"
    typer.echo(format_report(report))
    if json_out is not None and str(json_out) == "-":
        typer.echo(to_json(report))
    elif json_out is not None:
        from ganzoo.files import write_text

        write_text(json_out, to_json(report) + "\n")
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
