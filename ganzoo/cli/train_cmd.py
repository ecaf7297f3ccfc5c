"""`ganzoo train PLUGIN`."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    plugin: str = typer.Argument(None, help="Plugin name (see `ganzoo plugins list`); omit with --resume."),
    data: str = typer.Option(
        None, "--data", help="digits, digit-styles, digit-pairs, mnist, fashion-mnist, cifar10, or a folder."
    ),
    data_b: str = typer.Option(
        None, "--data-b", help="Second folder: domain B of unpaired data, or B of pairs matched by file name."
    ),
    steps: int = typer.Option(None, "--steps", help="Training iterations (each draws one real batch)."),
    epochs: float = typer.Option(None, "--epochs", help="Length in passes over the data, instead of --steps."),
    batch_size: int = typer.Option(None, "--batch-size", help="Real images per step."),
    out: Path = typer.Option(None, "--out", help="Run folder (default runs/PLUGIN-TIMESTAMP)."),
    preset: str = typer.Option(None, "--preset", help="A named preset of the plugin (see `ganzoo plugins info`)."),
    sets: list[str] = typer.Option(None, "--set", help="Override any setting: --set loss=hinge --set ngf=32."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its newest readable checkpoint."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="With --resume: continue from this checkpoint file instead."),
    strict: bool = typer.Option(None, "--strict/--no-strict", help="Fail on unreadable images instead of skipping them."),
    download: bool = typer.Option(None, "--download", help="Allow torchvision datasets to download."),
    nproc: int = typer.Option(None, "--nproc", help="Train on N processes/GPUs (launches torchrun)."),
) -> None:
    """Train a plugin; prints where the run folder is."""
    from ganzoo.config import parse_assignments
    from ganzoo.errors import UserError

    overrides = parse_assignments(sets)
    overrides.update({"dataset_b": data_b, "strict": strict, "download": download})
    if nproc and nproc > 1:
        from ganzoo.cli.launch import relaunch_with_torchrun

        raise typer.Exit(relaunch_with_torchrun(nproc))
    if plugin is None and resume is None:
        raise UserError("name a plugin to train (see `ganzoo plugins list`) or pass --resume RUN")
    if steps is not None and epochs is not None:
        raise UserError("--steps and --epochs both set the length: pass one of them")
    if checkpoint is not None and resume is None:
        raise UserError("--checkpoint picks where a resumed run continues: pass --resume RUN with it")
    if epochs is not None:
        overrides["epochs"] = epochs
    from ganzoo.api import train as run_train

    result = run_train(
        plugin or "", data=data, steps=steps, batch_size=batch_size, out=out, preset=preset,
        overrides=overrides, resume=resume, checkpoint=checkpoint,
    )
    from ganzoo.engine.distributed import current, shutdown

    dist = current()
    shutdown()
    if not dist.is_main:  # under torchrun, rank 0 reports for every rank
        return
    state = "interrupted" if result.interrupted else "finished"
    typer.echo(f"{state} at step {result.step} ({result.images_seen} images): {result.run_dir}")
    if result.last_checkpoint:
        typer.echo(f"  last checkpoint: {result.last_checkpoint}")
    if result.interrupted:
        same_size = f" --nproc {dist.world_size}" if dist.world_size > 1 else ""  # exact resume needs it
        typer.echo(f"  continue with: ganzoo train --resume {result.run_dir}{same_size}")
        raise typer.Exit(130)  # as shells expect of a command stopped by Ctrl-C


def register(app: typer.Typer) -> None:
    app.command("train")(train)
