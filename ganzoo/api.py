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

from ganzoo.config import coerce, field_types
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.distributed import current as current_dist
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.rundir import RunDir, new_run_path
from ganzoo.engine.spec import RunSpec, resolve
from ganzoo.engine.trainer import Trainer, TrainResult, build_roles, check_resume_overrides
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
) -> TrainResult:
    """Train ``plugin``; ``resume`` continues the run in that folder from its last checkpoint."""
    requested = {"dataset": data, "steps": steps, "batch_size": batch_size, **(overrides or {})}
    if resume is not None:
        run = RunDir(Path(resume))
        spec = RunSpec.from_dict(run.read_config())
        check_resume_overrides(spec, requested)
        if steps is not None:  # an explicit length replaces a saved length in epochs
            spec.train.epochs = None
        train_types = field_types(TrainConfig)
        for key, value in requested.items():
            if value is not None:
                bare = key.rpartition(".")[2]
                setattr(spec.train, bare, coerce(value, train_types[bare], bare))
        trainer = Trainer(spec, run.path, resume=True)
    else:
        spec = resolve(plugin, requested, preset)
        # Under torchrun every rank acts on rank 0's answers, taken before rank 0 writes the folder.
        dist = current_dist()
        path = dist.from_main(Path(out) if out is not None else new_run_path(Path("runs"), plugin))
        if dist.from_main((path / "config.json").exists()):
            raise UserError(f"{path} already holds a run: pass --resume {path} to continue it, or choose another --out")
        trainer = Trainer(spec, path)
    return trainer.fit()


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
        generator = torch.Generator().manual_seed(seed)
        return self.plugin.sample(self.nets, n, generator=generator, condition=condition)

    def export(self, out_dir: str | Path | None = None, **options: Any) -> list[Path]:
        from ganzoo.exporting import export_run

        return export_run(self, Path(out_dir) if out_dir else self.path / "exports", options)


def load_run(path: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> LoadedRun:
    run = RunDir(Path(path))
    config = run.read_config()
    spec = RunSpec.from_dict(config)
    info = DataInfo.from_dict(config["data_info"])
    plugin = spec.plugin_cls(spec.model, info)
    state = ckpt.load(Path(checkpoint) if checkpoint else ckpt.latest(run.checkpoints))
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
