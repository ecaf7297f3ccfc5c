"""`ganzoo export RUN`, and the deploy side: `ganzoo generate|info|web MODEL.onnx`.

The deploy commands run the torch-free runtime (``ganzoo_export``), exactly as `ganzoo-run` does.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ganzoo.errors import UserError


def export(
    run: Path = typer.Argument(..., help="A run folder."),
    out: Path = typer.Option(None, "--out", help="Output folder (default RUN/exports)."),
    options: list[str] = typer.Option(
        None,
        "--option",
        help="key=value: precision=fp32|fp16|int8, data_license=..., data_name=..., description=..., "
        "or a plugin export option (e.g. resolution=16).",
    ),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A specific checkpoint file instead of the latest."),
) -> None:
    """Export the run's EMA generator(s) to self-contained ONNX files with a model card, checked for parity."""
    from ganzoo.api import load_run
    from ganzoo.config import parse_assignments

    paths = load_run(run, checkpoint).export(out, **parse_assignments(options))
    for path in paths:
        typer.echo(f"wrote {path}")


def _model_file(model: Path) -> Path:
    if not model.is_file():
        raise UserError(f"no model file at {model}: pass a .onnx file written by `ganzoo export` or `ganzoo import`")
    return model


def generate(
    model: Path = typer.Argument(..., help="An ONNX file exported by ganzoo."),
    n: int = typer.Option(64, "-n", "--num", help="How many images."),
    seed: int = typer.Option(0, "--seed", help="Seed for the latents: the same images in Python, Node and the browser."),
    out: Path = typer.Option(Path("grid.png"), "--out", help="A grid .png, or a folder for single images."),
    class_: str = typer.Option(None, "--class", help="Conditional models: a class index or name."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per onnxruntime call."),
    providers: str = typer.Option(
        None, "--providers", help="Comma-separated onnxruntime providers (default: CUDA if usable, else CPU)."
    ),
) -> None:
    """Generate images from an exported model with onnxruntime (no PyTorch needed)."""
    from ganzoo_export.commands import generate_to, providers_from
    from ganzoo_export.runtime import GanzooModel

    session = GanzooModel(_model_file(model), providers=providers_from(providers))
    typer.echo(generate_to(session, n, seed, class_, out, batch_size))


def info(
    model: Path = typer.Argument(..., help="An ONNX file exported by ganzoo."),
    as_json: bool = typer.Option(False, "--json", help="The raw ganzoo.* metadata as JSON."),
) -> None:
    """Print the model card inside an ONNX file: how to use the model and what it is."""
    from ganzoo_export.commands import describe

    typer.echo(describe(_model_file(model), as_json=as_json))


def web(
    model: Path = typer.Argument(..., help="An ONNX file exported by ganzoo."),
    out: Path = typer.Option(..., "--out", help="Folder for the page (created; files in it are replaced)."),
    onnxruntime_web: Path = typer.Option(
        None, "--onnxruntime-web", help="A local onnxruntime-web package (or its dist/ folder) to copy the runtime from."
    ),
) -> None:
    """Write a static web page that runs the model in the browser (no server code)."""
    from ganzoo_export.web import write_site

    typer.echo(write_site(_model_file(model), out, onnxruntime_web))


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("generate")(generate)
    app.command("info")(info)
    app.command("web")(web)
