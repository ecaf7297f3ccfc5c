"""Bring your own generator: any importable PyTorch class + a state dict -> a ganzoo ONNX file.

``ganzoo import my_pkg.models:ResnetGenerator latest_net_G.pth --task translate`` builds the class
with the ``--option`` arguments, loads the weights (``weights_only=True``: tensors, never pickled
code), measures the sizes a translator takes, and exports with a model card and a 1e-5 parity
check, so translators from other code bases run on ganzoo's runtime, tiling and web page.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

import ganzoo
from ganzoo.config import coerce
from ganzoo.errors import UserError
from ganzoo.export.probe import size_multiple, smallest_size
from ganzoo.export.trace import ExportReport, export_onnx
from ganzoo.exporting import DEFAULT_MAX_SIZE, describe
from ganzoo_export.metadata import InputSpec, ModelMetadata

FOREIGN_ATOL = 1e-5
EXAMPLE_SIDE = 64  # translators are traced at 64 px (rounded up to their size multiple)
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "generator", "netG", "G")


@dataclass(frozen=True)
class ForeignGenerator:
    """What `ganzoo import MODULE:CLASS WEIGHTS` was told."""

    target: str  # "module.path:ClassName"
    weights: Path
    task: Literal["translate", "generate"]
    options: Mapping[str, str] = field(default_factory=dict)  # constructor arguments, as typed
    channels: int = 3  # translators: image channels in and out
    latent_shape: tuple[int, ...] = ()  # generators: one latent without the batch, e.g. (100, 1, 1)
    class_names: tuple[str, ...] = ()  # conditional generators: forward(latent, label)
    direction: str | None = None
    card: Mapping[str, str] = field(default_factory=dict)  # data_name, data_license, description


def import_generator(foreign: ForeignGenerator, out: Path, atol: float = FOREIGN_ATOL) -> ExportReport:
    """Build, load and export ``foreign`` to ``out`` (a .onnx path)."""
    cls = import_class(foreign.target)
    module = construct(cls, foreign.options, foreign.target)
    load_weights(module, foreign.weights)
    module.eval()
    if foreign.task == "translate":
        return _export_translator(module, foreign, out, atol)
    if foreign.task == "generate":
        return _export_generator(module, foreign, out, atol)
    raise UserError(f"--task {foreign.task} is unknown: use translate or generate")


def import_class(target: str) -> type[nn.Module]:
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise UserError(f"{target!r} is not MODULE:CLASS, e.g. my_models.networks:ResnetGenerator")
    # As `python -m` does: modules in the current folder import without being installed.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            f"cannot import {module_name} ({exc}): run from the folder that holds it, or pip install its package"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UserError(f"{module_name} has no torch.nn.Module class named {class_name}")
    return cls


def construct(cls: type[nn.Module], options: Mapping[str, str], target: str) -> nn.Module:
    """``cls(**options)`` with each string converted to the type its parameter is annotated with."""
    parameters = inspect.signature(cls.__init__).parameters
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not resolve here: fall back to the defaults' types
        hints = {}
    arguments = {}
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is None and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            known = ", ".join(name for name in parameters if name != "self")
            raise UserError(f"{target} takes no argument '{key}': its arguments are {known or 'none'}")
        default = parameter.default if parameter is not None else inspect.Parameter.empty
        annotation = hints.get(key, type(default) if default not in (inspect.Parameter.empty, None) else None)
        arguments[key] = coerce(value, annotation, key) if annotation else _guess(value)
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise UserError(f"{target}(...) failed: {exc}; pass its arguments with --option key=value") from None


def _guess(value: str) -> Any:
    """An unannotated argument: an int, a float, a bool or the string itself."""
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def load_weights(module: nn.Module, path: Path) -> None:
    """A state dict (plain, or under a usual key such as "state_dict"), loaded strictly."""
    if not path.is_file():
        raise UserError(f"no weights file at {path}: give the .pth/.pt file holding the state dict")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or code-carrying files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in reason:
            reason = "it holds pickled Python objects, not just tensors: save model.state_dict() instead"
        raise UserError(f"cannot read {path} as weights ({reason})") from None
    state = _find_state_dict(loaded, path)
    # nn.DataParallel and DistributedDataParallel save every key under "module.".
    state = {key.removeprefix("module."): value for key, value in state.items()}
    fix = "pass the constructor arguments it was trained with (--option key=value)"
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ: torch lists each on its own line
        details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        first = details[0] if details else str(exc).splitlines()[0]
        raise UserError(f"{path.name} does not fit {type(module).__name__} as built ({first}); {fix}") from None
    if missing or unexpected:
        raise UserError(
            f"{path.name} does not fit {type(module).__name__} as built: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}; {fix}"
        )


def _find_state_dict(loaded: Any, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded
    if isinstance(loaded, Mapping):
        for key in STATE_DICT_KEYS:
            if key in loaded:
                return _find_state_dict(loaded[key], path)
    raise UserError(f"{path} holds no state dict of tensors (looked under {', '.join(STATE_DICT_KEYS)})")


def _card(foreign: ForeignGenerator, **fields: Any) -> ModelMetadata:
    module_name, _, class_name = foreign.target.partition(":")
    top = module_name.split(".")[0]
    try:
        version = importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        version = "unversioned"
    metadata = ModelMetadata(
        plugin=foreign.target,
        plugin_version=version,
        ganzoo_version=ganzoo.__version__,
        direction=foreign.direction,
        data_name=foreign.card.get("data_name") or f"unknown (weights {foreign.weights.name})",
        data_license=foreign.card.get("data_license") or "unknown",
        **fields,
    )
    origin = f"Imported into ganzoo {ganzoo.__version__} from {foreign.weights.name}; training data: {metadata.data_name}"
    metadata.description = foreign.card.get("description") or describe(
        metadata, f"{class_name} from {module_name}", origin
    )
    return metadata


def _export_translator(module: nn.Module, foreign: ForeignGenerator, out: Path, atol: float) -> ExportReport:
    channels = foreign.channels
    multiple = size_multiple(module, channels)
    smallest = smallest_size(module, channels, multiple)
    side = -(-max(EXAMPLE_SIDE, smallest) // multiple) * multiple
    generator = torch.Generator().manual_seed(0)
    image = lambda n, h, w: torch.rand(n, channels, h, w, generator=generator) * 2 - 1  # noqa: E731
    axes = {0: "batch", 2: "height", 3: "width"}
    metadata = _card(
        foreign,
        task="translate",
        inputs=[InputSpec("source", "image", ("batch", channels, "height", "width"))],
        channels=channels,
        size_multiple=multiple,
        min_size=smallest,
        max_size=DEFAULT_MAX_SIZE,
    )
    return export_onnx(
        module,
        (image(1, side, side),),
        out,
        input_names=["source"],
        dynamic_axes={"source": axes, "image": axes},
        metadata=metadata,
        atol=atol,
        parity_inputs=[(image(2, side + multiple, side),), (image(1, smallest, smallest + multiple),)],
    )


def _export_generator(module: nn.Module, foreign: ForeignGenerator, out: Path, atol: float) -> ExportReport:
    if not foreign.latent_shape:
        raise UserError("--task generate needs --latent-shape, e.g. --latent-shape 100 or 100,1,1")
    generator = torch.Generator().manual_seed(0)
    latent = lambda n: torch.randn(n, *foreign.latent_shape, generator=generator)  # noqa: E731
    classes = len(foreign.class_names)
    label = (lambda n: torch.arange(n) % classes) if classes else None
    inputs = lambda n: (latent(n), label(n)) if label else (latent(n),)  # noqa: E731
    names = ["latent", "label"] if label else ["latent"]
    specs = [InputSpec("latent", "latent", ("batch", *foreign.latent_shape))]
    if label:
        specs.append(InputSpec("label", "label", ("batch",)))
    try:
        with torch.no_grad():
            output = module(*inputs(2))
    except Exception as exc:
        raise UserError(
            f"{foreign.target} fails on latents of shape {(2, *foreign.latent_shape)}"
            f"{' and labels' if label else ''} ({exc}); check --latent-shape and --class-names"
        ) from None
    if not (isinstance(output, torch.Tensor) and output.dim() == 4):
        raise UserError(f"{foreign.target} returns {type(output).__name__}, not an NCHW image batch")
    metadata = _card(
        foreign,
        task="generate",
        inputs=specs,
        channels=int(output.shape[1]),
        latent_dim=int(torch.tensor(foreign.latent_shape).prod()),
        class_names=list(foreign.class_names) or None,
        height=int(output.shape[2]),
        width=int(output.shape[3]),
    )
    return export_onnx(
        module,
        inputs(2),
        out,
        input_names=names,
        dynamic_axes={name: {0: "batch"} for name in [*names, "image"]},
        metadata=metadata,
        atol=atol,
        parity_inputs=[inputs(1), inputs(5)],
    )
