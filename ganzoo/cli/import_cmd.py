"""`ganzoo import PLUGIN FILE --out RUN`: weights trained elsewhere -> a ganzoo run and ONNX files.

The plugin reads the file (``Plugin.import_weights``) and adjusts its config to the networks it
found; the run folder then holds that config and a step-0 checkpoint, so it loads, samples and
exports like a trained run. Roles the file does not provide keep their fresh initialisation.
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
    plugin: str = typer.Argument(..., help="Plugin that reads the file (see `ganzoo plugins list`)."),
    file: Path = typer.Argument(..., help="The weights file, e.g. latest_net_G_A.pth."),
    out: Path = typer.Option(..., "--out", help="Run folder to create."),
    options: list[str] = typer.Option(None, "--option", help="Plugin import options key=value, e.g. direction=BtoA."),
    sets: list[str] = typer.Option(None, "--set", help="Run settings, as for `ganzoo train`."),
    export: bool = typer.Option(True, "--export/--no-export", help="Also export ONNX files into RUN/exports."),
) -> None:
    """Turn weights trained elsewhere into a ganzoo run (and ONNX files) in one step."""
    from ganzoo.api import load_run
    from ganzoo.config import parse_assignments

    path = import_run(plugin, file, out, parse_assignments(options), parse_assignments(sets))
    typer.echo(f"imported {file} into {path}")
    if export:
        for written in load_run(path).export():
            typer.echo(f"wrote {written}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_weights)
