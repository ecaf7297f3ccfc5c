"""`ganzoo sample RUN`: images from a trained run (EMA generator, eval mode)."""

from __future__ import annotations

from pathlib import Path

import typer


def sample(
    run: Path = typer.Argument(..., help="A run folder."),
    n: int = typer.Option(64, "-n", "--num", help="How many images."),
    seed: int = typer.Option(0, "--seed", help="Random seed for the latents."),
    out: Path = typer.Option(None, "--out", help="grid.png (default RUN/samples/sample-SEED.png), or a folder for single images."),
    class_: str = typer.Option(None, "--class", help="Conditional models: a class index or name."),
    sets: list[str] = typer.Option(None, "--option", help="Plugin-specific sampling options key=value."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A specific checkpoint file instead of the latest."),
) -> None:
    """Sample a grid (or single images) from a trained run."""
    from ganzoo.api import load_run
    from ganzoo.config import parse_assignments
    from ganzoo.errors import UserError
    from ganzoo.images import grid, save_png

    if n < 1:
        raise UserError(f"-n {n} is out of range: ask for 1 or more images")
    loaded = load_run(run, checkpoint)
    condition = parse_assignments(sets)
    if class_ is not None:
        if not (loaded.spec.plugin_cls.accepts.labels and loaded.data_info.num_classes):
            raise UserError(
                f"{run} is an unconditional '{loaded.spec.plugin}' run: it draws no classes, so leave out --class"
            )
        condition["class"] = class_
    images = loaded.sample(n, seed, **condition)
    if images.dim() == 2:  # point data (e.g. ring8): coordinates as CSV, one sample per row
        import numpy as np

        from ganzoo.files import atomic_write

        target = out or loaded.path / "samples" / f"sample-seed{seed}.csv"
        with atomic_write(target) as file:
            np.savetxt(file, images.cpu().numpy(), delimiter=",", fmt="%.6f")
        typer.echo(f"wrote {len(images)} points to {target}")
        return
    target = out or loaded.path / "samples" / f"sample-seed{seed}.png"
    if target.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        save_png(grid(images, nrow=loaded.plugin.grid_columns(n, condition)), target)
        typer.echo(f"wrote {target}")
    else:
        for i, image in enumerate(images):
            save_png(image, target / f"{i:04d}.png")
        typer.echo(f"wrote {len(images)} images to {target}")


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
