"""Resolving what a run is: plugin, preset and overrides -> typed model/train/data configs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import ganzoo
from ganzoo import config as cfgmod
from ganzoo.data.options import DataConfig
from ganzoo.engine.options import TrainConfig
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo, Plugin
from ganzoo.registry import get_plugin, get_record


@dataclass
class RunSpec:
    plugin: str
    model: Any
    train: TrainConfig
    data: DataConfig
    preset: str | None = None

    @property
    def plugin_cls(self) -> type[Plugin]:
        return get_plugin(self.plugin)

    def to_dict(self, data_info: DataInfo | None = None) -> dict[str, Any]:
        record = get_record(self.plugin)
        return {
            "ganzoo_version": ganzoo.__version__,
            "plugin": self.plugin,
            "plugin_version": self.plugin_cls.version,
            "plugin_package": f"{record.package} {record.package_version}",
            "preset": self.preset,
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
            "data_info": data_info.to_dict() if data_info else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        plugin_cls = get_plugin(d["plugin"])
        return cls(
            plugin=d["plugin"],
            model=cfgmod.build(plugin_cls.Config, d["model"], "model"),
            train=cfgmod.build(TrainConfig, d["train"], "train"),
            data=cfgmod.build(DataConfig, d["data"], "data"),
            preset=d.get("preset"),
        )


SECTIONS = {"train": TrainConfig, "data": DataConfig}


def resolve(plugin: str, overrides: dict[str, Any] | None = None, preset: str | None = None) -> RunSpec:
    """Defaults < plugin.train_defaults < preset < overrides; ``None`` overrides are ignored."""
    plugin_cls = get_plugin(plugin)
    sections = {"model": plugin_cls.Config, **SECTIONS}
    preset = preset or plugin_cls.default_preset
    layers = [cfgmod.split_overrides(plugin_cls.train_defaults, sections)]
    if preset is not None:
        if preset not in plugin_cls.presets:
            names = ", ".join(plugin_cls.presets) or "none"
            raise UserError(f"plugin '{plugin}' has no preset '{preset}': choose one of {names}")
        layers.append(cfgmod.split_overrides(plugin_cls.presets[preset], sections))
    layers.append(cfgmod.split_overrides(overrides or {}, sections))
    merged = {name: {} for name in sections}
    for layer in layers:
        if "steps" in layer["train"] and "epochs" not in layer["train"]:
            merged["train"].pop("epochs", None)  # a length in steps replaces an earlier one in epochs
        for name, values in layer.items():
            merged[name].update(values)
    spec = RunSpec(
        plugin=plugin,
        model=cfgmod.build(plugin_cls.Config, merged["model"], "model"),
        train=cfgmod.build(TrainConfig, merged["train"], "train"),
        data=cfgmod.build(DataConfig, merged["data"], "data"),
        preset=preset,
    )
    validate(spec)
    return spec


def validate(spec: RunSpec) -> None:
    t = spec.train
    for key in ("steps", "batch_size", "d_steps", "log_every", "sample_every", "checkpoint_every", "r1_interval"):
        if getattr(t, key) < 1:
            raise UserError(f"{key} must be at least 1, got {getattr(t, key)}")
    if spec.data.size < 4:
        raise UserError(f"size must be at least 4 pixels, got {spec.data.size}")
