"""The Python API: the same things the CLI does.

    import ganzoo
    result = ganzoo.train("dcgan", data="digits", steps=500, overrides={"loss": "hinge"})
    run = ganzoo.load_run(result.run_dir)
    images = run.sample(16, seed=0)                  # [-1, 1] NCHW
    paths = run.export()                             # ONNX files
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.config import check_ranges, coerce, field_types
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.distributed import current as current_dist
from ganzoo.engine.options import TrainConfig
from ganzoo.engine.rundir import RunDir, new_run_path
from ganzoo.engine.spec import RunSpec, resolve
from ganzoo.engine.trainer import Trainer, TrainResult, build_roles
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo, Plugin

# Settings a resumed run may change: its length, bookkeeping, where it runs, and learning rates
# (a lower one after a NaN stop; the optimizers take the new value, and config.json records it).
RESUMABLE_CHANGES = frozenset({
    "steps", "epochs", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "progress",
    "device", "workers", "tensorboard", "g_lr", "d_lr",
})


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
    """Train ``plugin`` (a name or ``package:name``); ``resume`` continues the run in that folder from
    its last checkpoint (or from ``checkpoint``)."""
    requested = {"dataset": data, "steps": steps, "batch_size": batch_size, **(overrides or {})}
    if resume is not None:
        run = RunDir(Path(resume))
        saved = RunSpec.from_dict(run.read_config(), source=str(run.config_file))
        if plugin and plugin.rpartition(":")[2] != saved.plugin:
            raise UserError(f"{run.path} is a run of plugin '{saved.plugin}', not '{plugin}': drop the plugin name to resume it")
        if preset is not None:
            raise UserError("--preset cannot change a run being resumed: drop --preset (the run keeps its settings)")
        spec = resumed_spec(saved, requested)
        start = Path(checkpoint) if checkpoint is not None else ckpt.latest(run.checkpoints)
        trainer = Trainer(spec, run.path, resume_from=start)
    else:
        spec = resolve(plugin, requested, preset)
        # Under torchrun every rank acts on rank 0's answers, taken before rank 0 writes the folder.
        dist = current_dist()
        path = dist.from_main(Path(out) if out is not None else new_run_path(Path("runs"), spec.plugin))
        if dist.from_main((path / "config.json").exists()):
            raise UserError(f"{path} already holds a run: pass --resume {path} to continue it, or choose another --out")
        trainer = Trainer(spec, path)
    return trainer.fit()


def resumed_spec(saved: RunSpec, requested: Mapping[str, Any]) -> RunSpec:
    """The saved spec with the requested changes that a resumed run allows (others are refused)."""
    changes = {k.rpartition(".")[2]: v for k, v in requested.items() if v is not None}
    frozen = sorted(set(changes) - RESUMABLE_CHANGES)
    if frozen:
        raise UserError(
            f"cannot change {', '.join(frozen)} when resuming: a resumed run keeps its config "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change); start a new run instead"
        )
    if not changes:
        return saved
    types = field_types(TrainConfig)
    values = {key: coerce(value, types[key], key) for key, value in changes.items()}
    if "steps" in values and "epochs" not in values:  # an explicit length replaces a saved length in epochs
        values["epochs"] = None
    train = dataclasses.replace(saved.train, **values)
    check_ranges(train, "train")
    return dataclasses.replace(saved, train=train)


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
    run = RunDir(Path(path))
    config = run.read_config()
    spec = RunSpec.from_dict(config, source=str(run.config_file))
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
