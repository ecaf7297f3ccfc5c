"""Resolving what a run is: plugin, preset and overrides -> typed model/train/data configs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ganzoo
from ganzoo import config as cfgmod
from ganzoo.data.options import DataConfig
from ganzoo.engine.options import TrainConfig
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo, Plugin
from ganzoo.registry import PluginRecord, get_plugin, get_record, records


@dataclass(frozen=True)
class RunSpec:
    """Everything a run is made of; built once (``resolve``, ``from_dict``) and never changed after."""

    plugin: str  # the registry name
    model: Any
    train: TrainConfig
    data: DataConfig
    preset: str | None = None
    provider: str | None = None  # the package providing the plugin (None: whichever provides the name)

    @property
    def plugin_cls(self) -> type[Plugin]:
        return get_plugin(self.plugin, self.provider)

    @property
    def record(self) -> PluginRecord:
        return get_record(self.plugin, self.provider)

    def to_dict(self, data_info: DataInfo | None = None) -> dict[str, Any]:
        record = self.record
        return {
            "ganzoo_version": ganzoo.__version__,
            "plugin": self.plugin,
            "plugin_version": self.plugin_cls.version,
            "plugin_provider": record.package,
            "plugin_package": f"{record.package} {record.package_version}",
            "preset": self.preset,
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
            "data_info": data_info.to_dict() if data_info else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config.json") -> RunSpec:
        """The spec a run folder recorded; its plugin must come from the package that trained it."""
        missing = [key for key in ("plugin", "model", "train", "data") if key not in d]
        if missing:
            raise UserError(f"{source} lacks {', '.join(missing)}: it is not a ganzoo run config (or was edited)")
        provider = d.get("plugin_provider")
        try:
            record = get_record(d["plugin"], provider)
        except UserError:
            if provider is None:
                raise
            installed = [r.qualified_name for r in records() if r.name == d["plugin"]]
            raise UserError(
                f"{source} was trained with plugin '{d['plugin']}' from {provider}, which is not installed here"
                + (f" (installed: {', '.join(installed)})" if installed else "")
                + f": install {provider} to use this run"
            ) from None
        plugin_cls = record.load()
        return cls(
            plugin=d["plugin"],
            model=cfgmod.build(plugin_cls.Config, d["model"], f"model in {source}"),
            train=cfgmod.build(TrainConfig, d["train"], f"train in {source}"),
            data=cfgmod.build(DataConfig, d["data"], f"data in {source}"),
            preset=d.get("preset"),
            provider=record.package,
        )


SECTIONS = {"train": TrainConfig, "data": DataConfig}


def resolve(plugin: str, overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> RunSpec:
    """Defaults < plugin.train_defaults < preset < overrides; ``None`` overrides are ignored.

    ``plugin`` is a registry name or a qualified ``package:name``."""
    record = get_record(plugin)
    plugin_cls = record.load()
    sections = {"model": plugin_cls.Config, **SECTIONS}
    preset = preset or plugin_cls.default_preset
    layers = [cfgmod.split_overrides(plugin_cls.train_defaults, sections)]
    if preset is not None:
        if preset not in plugin_cls.presets:
            names = ", ".join(plugin_cls.presets) or "none"
            raise UserError(f"plugin '{record.name}' has no preset '{preset}': choose one of {names}")
        layers.append(cfgmod.split_overrides(plugin_cls.presets[preset], sections))
    layers.append(cfgmod.split_overrides(overrides or {}, sections))
    merged = {name: {} for name in sections}
    for layer in layers:
        if "steps" in layer["train"] and "epochs" not in layer["train"]:
            merged["train"].pop("epochs", None)  # a length in steps replaces an earlier one in epochs
        for name, values in layer.items():
            merged[name].update(values)
    return RunSpec(
        plugin=record.name,
        model=cfgmod.build(plugin_cls.Config, merged["model"], "model"),
        train=cfgmod.build(TrainConfig, merged["train"], "train"),
        data=cfgmod.build(DataConfig, merged["data"], "data"),
        preset=preset,
        provider=record.package,
    )
