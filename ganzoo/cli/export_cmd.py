"""`ganzoo export RUN` and `ganzoo generate MODEL.onnx`."""

from __future__ import annotations

from pathlib import Path

import typer


def export(
    run: Path = typer.Argument(..., help="A run folder."),
    out: Path = typer.Option(None, "--out", help="Output folder (default RUN/exports)."),
    options: list[str] = typer.Option(None, "--option", help="Plugin export options key=value, e.g. resolution=16."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A specific checkpoint file instead of the latest."),
) -> None:
    """Export the run's EMA generator(s) to self-contained ONNX files, checked for parity."""
    from ganzoo.api import load_run
    from ganzoo.config import parse_assignments

    paths = load_run(run, checkpoint).export(out, **parse_assignments(options))
    for path in paths:
        typer.echo(f"wrote {path}")


def generate(
    model: Path = typer.Argument(..., help="An ONNX file exported by ganzoo."),
    n: int = typer.Option(64, "-n", "--num", help="How many images."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the latents."),
    out: Path = typer.Option(Path("grid.png"), "--out", help="A grid .png, or a folder for single images."),
    class_: str = typer.Option(None, "--class", help="Conditional models: a class index or name."),
    providers: str = typer.Option(None, "--providers", help="Comma-separated onnxruntime providers (default: CUDA if usable, else CPU)."),
) -> None:
    """Generate images from an exported model with onnxruntime (no PyTorch needed)."""
    import math

    from ganzoo.files import save_image
    from ganzoo_export.images import make_grid
    from ganzoo_export.runtime import GanzooModel

    if not model.is_file():
        from ganzoo.errors import UserError

        raise UserError(f"no model file at {model}: pass a .onnx file written by `ganzoo export`")
    session = GanzooModel(model, providers=providers.split(",") if providers else None)
    labels = None
    if class_ is not None:
        labels = [int(class_) if class_.lstrip("-").isdigit() else class_] * n
    images = session.generate(n, seed=seed, labels=labels)
    if out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        save_image(make_grid(images, nrow=max(1, math.ceil(math.sqrt(n)))), out)
        typer.echo(f"wrote {out} ({n} images, providers {', '.join(session.providers)})")
    else:
        for i, image in enumerate(images):
            save_image(image, out / f"{i:04d}.png")
        typer.echo(f"wrote {n} images to {out}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("generate")(generate)
