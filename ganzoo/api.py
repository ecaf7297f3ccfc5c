"""The Python API: the same things the CLI does.

    import ganzoo
    result = ganzoo.train("dcgan", data="digits", steps=500, overrides={"loss": "hinge"})
    run = ganzoo.load_run(result.run_dir)
    images = run.sample(16, seed=0)                  # [-1, 1] NCHW
    paths = run.export()                             # ONNX files
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine import runstart
from ganzoo.engine.distributed import current as current_dist
from ganzoo.engine.rundir import RunDir, new_run_path
from ganzoo.engine.spec import RunSpec, resolve
from ganzoo.engine.trainer import Trainer, TrainResult, build_roles
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo, Plugin


def train(
    plugin: str,
    *,
    data: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    out: str | Path | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> TrainResult:
    """Train ``plugin`` (a name or ``package:name``) into ``out``; ``resume`` continues the run in that
    folder from its newest readable checkpoint (or from ``checkpoint``).

    The folder is locked while training: a second process writing into it gets one line naming this
    one. A folder whose run stopped before its first checkpoint starts again from step 0.
    """
    requested = {"dataset": data, "steps": steps, "batch_size": batch_size, **(overrides or {})}
    dist = current_dist()
    if resume is not None:
        if out is not None and Path(out) != Path(resume):
            raise UserError("--out names a new run folder, --resume an existing one: pass only --resume RUN")
        if preset is not None:
            raise UserError("--preset cannot change a run being resumed: drop --preset (the run keeps its settings)")
        run = RunDir(Path(resume))
        with runstart.writing(run, dist):
            saved = RunSpec.from_dict(run.read_config(), source=str(run.config_file))
            if plugin and plugin.rpartition(":")[2] != saved.plugin:
                raise UserError(f"{run.path} is a run of plugin '{saved.plugin}', not '{plugin}': drop the plugin name to resume it")
            start = dist.decided_by_main(lambda: runstart.starting_point(run, checkpoint, saved))
            if start is None:  # stopped before its first checkpoint: nothing to continue, any setting may change
                runstart.note(f"{run.path} holds no checkpoint yet: training it again from step 0")
                return Trainer(runstart.with_changes(saved, requested), run.path).fit()
            return Trainer(runstart.resumed_spec(saved, requested), run.path, resume_from=start).fit()
    spec = resolve(plugin, requested, preset)
    # Under torchrun every rank acts on rank 0's answers, taken before rank 0 writes the folder.
    path = dist.from_main(Path(out) if out is not None else new_run_path(Path("runs"), spec.plugin))
    run = RunDir(path)
    with runstart.writing(run, dist):
        if dist.from_main(run.config_file.exists()):
            if dist.from_main(bool(ckpt.list_checkpoints(run.checkpoints))):
                raise UserError(f"{path} already holds a run: pass --resume {path} to continue it, or choose another --out")
            runstart.note(f"{path} holds a run that stopped before its first checkpoint: starting it again")
            if dist.is_main:
                run.drop_stats_after(0)
        return Trainer(spec, path).fit()


@dataclass
class LoadedRun:
    """A trained run rebuilt from its folder: EMA generators (eval mode) and the plugin."""

    path: Path
    spec: RunSpec
    plugin: Plugin
    nets: dict[str, nn.Module]
    step: int
    images_seen: int

    @property
    def data_info(self) -> DataInfo:
        return self.plugin.data

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, **condition: Any) -> torch.Tensor:
        """``n`` images in [-1, 1] NCHW; ``condition`` holds plugin options such as ``class``."""
        if n < 1:
            raise UserError(f"cannot sample {n} images: ask for at least 1")
        generator = torch.Generator().manual_seed(seed)
        return self.plugin.sample(self.nets, n, generator=generator, condition=condition)

    def export(self, out_dir: str | Path | None = None, **options: Any) -> list[Path]:
        from ganzoo.exporting import export_run

        return export_run(self, Path(out_dir) if out_dir else self.path / "exports", options)


def load_run(path: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> LoadedRun:
    """A run's networks (EMA copies where kept) from its newest readable checkpoint, or ``checkpoint``."""
    run = RunDir(Path(path))
    config = run.read_config()
    spec = RunSpec.from_dict(config, source=str(run.config_file))
    info = DataInfo.from_dict(config["data_info"])
    plugin = spec.plugin_cls(spec.model, info)
    if checkpoint is not None:
        state = ckpt.load(Path(checkpoint))
    else:
        found = ckpt.newest_readable(run.checkpoints)
        if found.note():
            runstart.note(found.note())
        state = found.state
    if "config" in state:
        runstart.check_edits(state["config"], spec, run.config_file)
    recorded_version = state.get("plugin_version")
    if recorded_version and recorded_version != spec.plugin_cls.version:
        runstart.note(f"{run.path} was trained with {spec.plugin} {recorded_version}; "
                      f"{spec.plugin_cls.version} is installed")
    nets = build_roles(plugin, spec.train)
    for role, module in nets.items():
        source = state["ema"].get(role, state["nets"][role])
        try:
            module.load_state_dict(source)
        except RuntimeError as exc:
            raise UserError(f"checkpoint does not match plugin '{spec.plugin}' {spec.plugin_cls.version}: {str(exc).splitlines()[0]}") from None
        module.to(device).eval().requires_grad_(False)
    plugin.load_state_dict(state.get("plugin_state", {}))
    return LoadedRun(run.path, spec, plugin, nets, state["step"], state["images_seen"])
