"""What every part of ``ganzoo bench`` shares: its options, the machine, the spec a row trains, and
the plain loop registered for a plugin with the settings it takes."""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import ganzoo


@dataclass
class BenchOptions:
    plugins: Sequence[str] | None = None  # None: every installed plugin; "dcgan@64" sets a row's batch size
    preset: str | None = None  # where a plugin has it; None: the built-in dataset of its data kind (BUILTIN_DATA)
    step: bool = True  # time the engine's loop against the plain loop in one process
    steps: int = 20  # engine-step figure: training steps per timed round; at 5 rounds spread by +-10% here
    rounds: int = 7  # engine-step figure: timed rounds of each loop
    warmup: int = 2  # engine-step figure: untimed steps of each loop first
    as_run: bool = True  # time `ganzoo train` and the plain loop as processes
    run_steps: int = 200  # steps of each process in the as-run figure
    run_rounds: int = 3  # processes of each side in the as-run figure
    parts: bool = True  # one more process of each side with a timer on every part
    device: str = "auto"
    threads: int | None = None  # torch threads; None: torch's default (the physical cores)
    overrides: dict[str, Any] = field(default_factory=dict)  # settings for every plugin, e.g. batch_size
    inference: bool = True
    inference_batches: tuple[int, ...] = (1, 64)
    inference_seconds: float = 0.3  # per timed round of each runtime
    pipeline: bool = True
    pipeline_images: int = 512
    pipeline_size: int = 64


@dataclass(frozen=True)
class Row:
    """One line of the training tables: a plugin, and a batch size where the row sets one."""

    plugin: str
    batch_size: int | None = None

    @classmethod
    def parse(cls, text: str) -> Row:
        name, _, batch = text.strip().partition("@")
        if batch and not batch.isdigit():
            from ganzoo.errors import UserError

            raise UserError(f"{text!r}: write a row as PLUGIN or PLUGIN@BATCH_SIZE, e.g. dcgan@64")
        return cls(name, int(batch) if batch else None)

    def settings(self, options: BenchOptions) -> dict[str, Any]:
        return {**options.overrides, **({"batch_size": self.batch_size} if self.batch_size else {})}


def set_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_average() -> float | None:
    """The 1-minute load average: above the core count, other work shares the CPU and timings are noisy."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_info(device_name: str = "auto") -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cuda = torch.cuda.is_available() and device_name != "cpu"
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": cpu,
        "cpu_cores": cpu_cores(),
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "ganzoo": ganzoo.__version__,
        "load_average": load_average(),
    }


BUILTIN_DATA = {"images": "digits", "unpaired": "digit-styles", "paired": "digit-pairs"}  # the built-in dataset of each data kind
PLAIN_LOOPS = "ganzoo.plain_loops"  # entry-point group: plugin name -> module (see ganzoo_plugins.plain_loops)


def plain_loop(plugin: str) -> ModuleType | None:
    """The plain-loop module registered for ``plugin`` (None when it has none)."""
    from importlib.metadata import entry_points

    bare = plugin.rpartition(":")[2]
    for ep in entry_points(group=PLAIN_LOOPS):
        if ep.name == bare:
            return ep.load()
    return None


def preset_for(plugin: str, options: BenchOptions) -> tuple[str | None, str]:
    """(the preset a row uses, the built-in dataset of the plugin's data kind)."""
    from ganzoo.registry import get_plugin

    plugin_cls = get_plugin(plugin)
    builtin = next((BUILTIN_DATA[k] for k in plugin_cls.accepts.kinds if k in BUILTIN_DATA), "digits")
    wanted = options.preset or builtin  # the CPU-sized default: the preset named after the built-in data
    return (wanted if wanted in plugin_cls.presets else None), builtin


def bench_spec(row: Row, options: BenchOptions, as_run: bool = False):
    """The spec a row trains: the preset with the row's settings; for the engine-step figure also
    without EMA, progress, logs, samples and checkpoints, which that figure leaves out."""
    from ganzoo.engine.spec import resolve

    preset, builtin = preset_for(row.plugin, options)
    settings = {"device": options.device, **row.settings(options)}
    if not as_run:
        settings.update({"ema_half_life": 0, "progress": False, "log_every": 10**9, "sample_every": 10**9,
                         "checkpoint_every": 10**9})
    spec = resolve(row.plugin, settings, preset)
    if "dataset" not in options.overrides and spec.data.dataset == "digits" and builtin != "digits":
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, dataset=builtin))
    return spec


def plain_settings(spec, channels: int, stage=None) -> dict[str, Any]:
    """The settings a plain loop takes (``ganzoo_plugins.plain_loops``), as the spec's run has them."""
    train = spec.train
    return {
        **dataclasses.asdict(spec.model),
        "batch_size": (stage.batch_size if stage is not None else None) or train.batch_size,
        "resolution": stage.resolution if stage is not None else None,
        "size": spec.data.size,
        "channels": channels,
        "seed": train.seed,
        "g_lr": train.g_lr,
        "d_lr": train.d_lr,
        "r1_gamma": train.r1_gamma,
        "r1_interval": train.r1_interval,
        "hflip": train.hflip,
    }


def trainer_settings(trainer) -> SimpleNamespace:
    """``plain_settings`` of a ``Trainer``'s run at its current stage, as a plain loop takes them."""
    stage = trainer.plugin.stage(trainer.images_seen)
    return SimpleNamespace(**plain_settings(trainer.spec, trainer.data_info.channels, stage))


def trainer_epoch_steps(trainer) -> float:
    """Steps in one epoch of a ``Trainer``'s data, max(|A|, |B|) images (as the translation
    references count an epoch), for plain loops whose learning rate follows epochs."""
    info = trainer.data_info
    return max(info.num_images, info.num_images_b or 0, 1) / max(trainer.spec.train.batch_size, 1)


def unmatched_switches(spec, loop: ModuleType | None = None) -> list[str]:
    """Engine settings of the spec that the plain loop (``loop``'s ``IMPLEMENTS`` lists what it does
    too) does not implement: its figures then differ in more than the engine."""
    from ganzoo.engine.options import TrainConfig

    defaults = TrainConfig()
    plugin_defaults = dict(getattr(spec.plugin_cls, "train_defaults", {}) or {})
    switches = ("loss", "d_steps", "gp_weight", "r1_gamma", "drift", "clip_weights", "spectral_norm",
                "label_smoothing", "instance_noise", "diffaugment", "ada_target", "unrolled_steps")
    implemented = getattr(loop, "IMPLEMENTS", ())
    return [k for k in switches if k not in implemented
            and getattr(spec.train, k) != plugin_defaults.get(k, getattr(defaults, k))]
