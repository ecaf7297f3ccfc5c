"""`ganzoo import`: weights trained elsewhere -> ganzoo files.

- ``ganzoo import PLUGIN FILE --out RUN``: the plugin reads the file (``Plugin.import_weights``) and
  adjusts its config to the networks it found; the run folder then holds that config and a step-0
  checkpoint, so it loads, samples and exports like a trained run. Roles the file does not provide
  keep their fresh initialisation.
- ``ganzoo import MODULE:CLASS FILE --task translate|generate``: any importable PyTorch generator
  class and its state dict -> one parity-checked ONNX file with a model card (ganzoo.export.foreign).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from ganzoo.errors import UserError


def import_run(plugin: str, file: Path, out: Path, options: Mapping[str, Any], overrides: Mapping[str, Any]) -> Path:
    """Write a run folder at ``out`` holding the networks ``plugin`` imports from ``file``."""
    import dataclasses

    from ganzoo.engine import checkpoint as ckpt
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.spec import resolve
    from ganzoo.engine.trainer import build_roles
    from ganzoo.plugin import DataInfo

    run = RunDir(out)
    if run.config_file.exists():
        raise UserError(f"{out} already holds a run: choose another --out")
    spec = resolve(plugin, dict(overrides))
    info = DataInfo(
        channels=spec.data.channels or 3,
        size=spec.data.size,
        kind=spec.plugin_cls.accepts.kinds[0],
        name=f"imported from {file.name}",
    )
    instance = spec.plugin_cls(spec.model, info)
    imported = instance.import_weights(str(file), options)
    nets = build_roles(instance, spec.train)
    for role, module in imported.items():
        # Strict: what build() makes from the adjusted config is what load_run will make later.
        nets[role].load_state_dict(module.state_dict())
    spec = dataclasses.replace(spec, model=instance.config)
    config = spec.to_dict(instance.data)
    state = {
        "format": 1,
        "plugin": spec.plugin,
        "plugin_provider": spec.record.package,
        "plugin_version": spec.plugin_cls.version,
        "config": config,
        "step": 0,
        "images_seen": 0,
        "nets": {role: module.state_dict() for role, module in nets.items()},
        "ema": {},
        "plugin_state": instance.state_dict(),
        "imported_from": str(file),
    }
    run.write_config(config)
    ckpt.save_atomic(state, ckpt.checkpoint_path(run.checkpoints, 0))
    return run.path


def import_weights(
    source: str = typer.Argument(
        ..., help="A plugin that reads the file (`ganzoo plugins list`), or MODULE:CLASS of any PyTorch generator."
    ),
    file: Path = typer.Argument(..., help="The weights file, e.g. latest_net_G_A.pth (a state dict)."),
    out: Path = typer.Option(None, "--out", help="PLUGIN: run folder to create. MODULE:CLASS: the .onnx file to write."),
    options: list[str] = typer.Option(
        None, "--option", help="PLUGIN: import options (direction=BtoA). MODULE:CLASS: constructor arguments key=value."
    ),
    sets: list[str] = typer.Option(None, "--set", help="PLUGIN: run settings, as for `ganzoo train`."),
    export: bool = typer.Option(True, "--export/--no-export", help="PLUGIN: also export ONNX files into RUN/exports."),
    task: str = typer.Option(None, "--task", help="MODULE:CLASS: translate or generate."),
    channels: int = typer.Option(3, "--channels", help="MODULE:CLASS translators: image channels."),
    latent_shape: str = typer.Option(None, "--latent-shape", help="MODULE:CLASS generators: e.g. 100 or 100,1,1."),
    class_names: str = typer.Option(None, "--class-names", help="Conditional generators: comma-separated names."),
    direction: str = typer.Option(None, "--direction", help="MODULE:CLASS translators: e.g. AtoB or photo2monet."),
    data_name: str = typer.Option(None, "--data-name", help="Model card: the training data's name."),
    data_license: str = typer.Option(None, "--data-license", help="Model card: the training data's licence."),
    description: str = typer.Option(None, "--description", help="Model card: one paragraph on the model."),
) -> None:
    """Turn weights trained elsewhere into a ganzoo run (PLUGIN) or straight into an ONNX file (MODULE:CLASS)."""
    from ganzoo.config import parse_assignments

    if ":" in source:
        card = {"data_name": data_name, "data_license": data_license, "description": description}
        path = import_foreign(source, file, out, task, parse_assignments(options), channels, latent_shape,
                              class_names, direction, {k: v for k, v in card.items() if v})
        typer.echo(f"wrote {path}")
        return
    from ganzoo.api import load_run

    if out is None:
        raise UserError(f"importing with plugin '{source}' writes a run folder: pass --out RUN")
    path = import_run(source, file, out, parse_assignments(options), parse_assignments(sets))
    typer.echo(f"imported {file} into {path}")
    if export:
        for written in load_run(path).export():
            typer.echo(f"wrote {written}")


def import_foreign(
    target: str, file: Path, out: Path | None, task: str | None, options: Mapping[str, str], channels: int,
    latent_shape: str | None, class_names: str | None, direction: str | None, card: Mapping[str, str],
) -> Path:
    from ganzoo.export.foreign import ForeignGenerator, import_generator

    if task not in ("translate", "generate"):
        raise UserError("importing MODULE:CLASS needs --task translate or --task generate")
    try:
        shape = tuple(int(part) for part in latent_shape.split(",")) if latent_shape else ()
    except ValueError:
        raise UserError(f"--latent-shape {latent_shape!r} is not comma-separated integers, e.g. 100,1,1") from None
    names = tuple(name.strip() for name in class_names.split(",")) if class_names else ()
    foreign = ForeignGenerator(target, file, task, options, channels, shape, names, direction, card)
    path = out or Path(f"{target.rpartition(':')[2]}-{task}.onnx")
    if path.suffix.lower() != ".onnx":
        raise UserError(f"--out {path} must name the .onnx file to write")
    return import_generator(foreign, path).path


def register(app: typer.Typer) -> None:
    app.command("import")(import_weights)
