"""A contract check any plugin can run in its own test suite.

    from ganzoo.testing import check_plugin

    def test_my_plugin_honours_the_contract(tmp_path):
        check_plugin("myplugin", tmp_path)

It trains two steps through the real engine (using the plugin's ``tiny`` preset when it has one),
then checks: every logged loss is finite; a checkpoint holds every role and resuming continues
from it; sampling returns finite images of the data's shape in [-1, 1]; sampling twice with a
seed is reproducible; and every ONNX export passes its parity check and runs in onnxruntime.
Failures raise ``AssertionError`` with what was expected.

Arguments besides the plugin (a registered name, ``package:name``, or a ``Plugin`` subclass, which
is registered for the check) and the folder to work in:

- ``data``: the dataset to train on (``--data``); default: the preset's or the engine's (digits);
- ``overrides``: settings as for ``--set`` (model, train and data keys), on top of small defaults
  (batch size 4, a log line, sample grid and checkpoint at every step);
- ``condition``: sampling options passed to ``sample()`` (e.g. ``{"class": "three"}``);
- ``export``: False skips the ONNX check (for plugins that export nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganzoo import registry
from ganzoo.plugin import Plugin

TINY_DEFAULTS = {"batch_size": 4, "progress": False, "log_every": 1, "sample_every": 1, "checkpoint_every": 1}


@dataclass
class ContractReport:
    run_dir: Path
    losses: dict[str, float]
    sample_shape: tuple[int, ...]
    exports: list[Path] = field(default_factory=list)


def _plugin_name(plugin: str | type[Plugin]) -> str:
    if isinstance(plugin, str):
        return plugin
    if plugin.name not in registry.list_plugins() or registry.get_record(plugin.name).cls is not plugin:
        registry.register(plugin, replace=True)
    return plugin.name


def check_plugin(
    plugin: str | type[Plugin],
    tmp_path: Path,
    *,
    data: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    condition: Mapping[str, Any] | None = None,
    export: bool = True,
) -> ContractReport:
    from ganzoo.api import load_run, train
    from ganzoo.engine import checkpoint as ckpt

    name = _plugin_name(plugin)
    cls = registry.get_plugin(name)
    preset = "tiny" if "tiny" in cls.presets else None
    settings = {**TINY_DEFAULTS, **(overrides or {})}
    run_dir = Path(tmp_path) / f"contract-{name}"

    result = train(name, data=data, steps=2, out=run_dir, preset=preset, overrides=settings)
    stats = [line for line in (run_dir / "stats.jsonl").read_text().splitlines() if line]
    assert len(stats) == 2, f"expected one stats line per step, got {len(stats)}"
    import json

    last = json.loads(stats[-1])
    losses = {k: v for k, v in last.items() if k.endswith("/loss")}
    assert losses, "no phase logged a 'loss' term"
    for key, value in losses.items():
        assert math.isfinite(value), f"{key} is not finite after two steps: {value}"

    state = ckpt.load(result.last_checkpoint)
    model_config, data_info = _run_config(run_dir)
    roles = set(cls(model_config, data_info).build())
    assert set(state["nets"]) == roles, f"checkpoint roles {sorted(state['nets'])} != built roles {sorted(roles)}"
    assert state["step"] == 2, f"checkpoint step {state['step']} != 2"
    resumed = train(name, steps=3, resume=run_dir)
    assert resumed.step == 3 and resumed.images_seen > result.images_seen, "resume did not continue the run"

    run = load_run(run_dir)
    first = run.sample(3, seed=7, **(condition or {}))
    again = run.sample(3, seed=7, **(condition or {}))
    info = run.data_info
    assert first.dim() == 4 and first.shape[0] == 3, f"sample() must return N,C,H,W with N=3, got {tuple(first.shape)}"
    assert first.shape[1] == info.channels, f"sample channels {first.shape[1]} != data channels {info.channels}"
    assert torch.isfinite(first).all(), "samples contain NaN or inf"
    assert first.min() >= -1.0 - 1e-5 and first.max() <= 1.0 + 1e-5, (
        f"samples must lie in [-1, 1], got [{first.min():.3f}, {first.max():.3f}]"
    )
    assert torch.equal(first, again), "sampling twice with one seed gave different images"

    exports = run.export() if export else []
    for path in exports:
        _check_onnx_runs(path, info.channels)
    return ContractReport(run_dir, losses, tuple(first.shape), exports)


def _run_config(run_dir: Path):
    """The model config and data description the run recorded (a preset's sizes, not the defaults)."""
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.spec import RunSpec
    from ganzoo.plugin import DataInfo

    recorded = RunDir(run_dir).read_config()
    return RunSpec.from_dict(recorded).model, DataInfo.from_dict(recorded["data_info"])


def _check_onnx_runs(path: Path, channels: int) -> None:
    import numpy as np

    from ganzoo_export.runtime import GanzooModel

    model = GanzooModel(path, providers=["CPUExecutionProvider"])
    meta = model.metadata
    if meta.task == "generate":
        labels = [0, 0] if meta.num_classes else None
        images = model.generate(2, seed=0, labels=labels)
    else:
        multiple = meta.size_multiple or 1
        images = model.translate(np.zeros((multiple * 5, multiple * 6, channels), np.uint8))[None]
    assert images.dtype == np.uint8 and images.shape[-1] == channels, (
        f"{path.name}: runtime returned {images.dtype} {images.shape}, expected uint8 with {channels} channels"
    )
