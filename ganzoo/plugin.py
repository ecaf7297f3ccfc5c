"""The plugin contract: what an architecture declares, and what the engine does with it.

A plugin is a class. The engine instantiates it with the resolved model config and a description of
the data, then asks it for:

- ``build()``: named roles, e.g. ``{"G": ..., "D": ...}`` or ``{"G_AB", "G_BA", "D_A", "D_B"}``;
- ``optimizers()``: which roles each optimizer updates, with lr, betas and an optional lr schedule;
- ``phases()``: the training phases (which optimizer steps, how often, with which loss function).
  Loss functions *return* losses; the engine owns backward, AMP, stepping, EMA, DDP and logging;
- ``stage(images_seen)``: optional, for networks that change during training (resolution, batch
  size; a new ``Stage.key`` makes the engine rebuild the optimizers);
- ``sample()`` / ``preview()``: images for users and for the sample grids written during training;
- ``exports()``: the networks to export to ONNX, with their inputs and metadata.

Roles are never held by the plugin: the engine passes them in (``nets``), DDP-wrapped while
training and as EMA copies in eval mode when sampling or exporting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import Tensor, nn

    from ganzoo.engine.adversary import StepContext

Nets = Mapping[str, "nn.Module"]
LossFn = Callable[[Nets, "Batch", "StepContext"], dict[str, "Tensor"]]


@dataclass
class Batch:
    """One batch of real data, on the training device: images in [-1, 1] NCHW, or (N, D) points."""

    images: Tensor  # domain A for unpaired data; (N, D) float points for kind "vectors"
    labels: Tensor | None = None  # int64 class indices, for labelled data
    images_b: Tensor | None = None  # domain B, for unpaired data

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class DataInfo:
    """What a plugin may know about its data; saved in the run so a run can be rebuilt without it.

    For kind "vectors" (e.g. the 2-D toy sets ring8 and grid25) every item is a point: ``channels``
    is its number of coordinates and ``size`` is 0.
    """

    channels: int
    size: int
    num_images: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    kind: Literal["images", "unpaired", "vectors"] = "images"
    num_images_b: int = 0
    name: str = ""
    batch_size: int = 0  # images per step over all processes, as configured (0: unknown)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["class_names"] = tuple(d.get("class_names", ()))
        return cls(**d)


@dataclass(frozen=True)
class OptimizerSpec:
    """An Adam-family optimizer over some roles. ``lr_lambda(step)`` scales lr per optimizer step."""

    roles: tuple[str, ...]
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    lr_lambda: Callable[[int], float] | None = None


@dataclass(frozen=True)
class Phase:
    """One update: compute ``loss`` and step ``optimizer``, on iterations where step % every == 0.

    ``kind`` tells the engine which switches apply: discriminator phases get weight clipping and
    the ``d_steps`` ratio; generator phases get the unrolled-GAN lookahead.
    """

    name: str
    optimizer: str
    loss: LossFn
    kind: Literal["discriminator", "generator"]
    every: int = 1


@dataclass(frozen=True)
class Stage:
    """Where a growing model is. A change of ``key`` rebuilds the optimizers (and DDP wrappers)."""

    key: Any = 0
    resolution: int | None = None  # data resolution the engine should deliver (None: native)
    batch_size: int | None = None  # overrides the configured batch size
    info: Mapping[str, float] = field(default_factory=dict)  # shown in progress and logs


@dataclass
class ExportSpec:
    """One ONNX model to write: a module, example inputs and what they mean."""

    name: str  # file stem suffix, e.g. "generator", "AtoB"
    module: nn.Module
    example_inputs: tuple[Tensor, ...]
    input_names: tuple[str, ...]
    input_roles: tuple[Literal["latent", "label", "image"], ...]
    dynamic_axes: dict[str, dict[int, str]]
    task: Literal["generate", "translate"]
    # direction, size_multiple, resolution go to their metadata fields; other keys to ganzoo.extra.*
    metadata: dict[str, Any] = field(default_factory=dict)
    parity_inputs: list[tuple[Tensor, ...]] = field(default_factory=list)


class Plugin:
    """Base class of every architecture. Subclasses set the class attributes and override methods."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    Config: ClassVar[type] = object  # a dataclass with defaults for every field
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # name -> overrides (model and train keys)
    default_preset: ClassVar[str | None] = None
    # Engine settings this architecture wants by default (e.g. {"loss": "lsgan"}); users still override.
    train_defaults: ClassVar[Mapping[str, Any]] = {}
    data_kind: ClassVar[Literal["images", "unpaired"]] = "images"
    accepts_vectors: ClassVar[bool] = False  # also trains on point data (DataInfo.kind "vectors")
    needs_labels: ClassVar[bool] = False
    generators: ClassVar[tuple[str, ...]] = ("G",)  # roles that get EMA copies and are exported
    discriminators: ClassVar[tuple[str, ...]] = ("D",)  # roles the D-side switches apply to

    def __init__(self, config: Any, data: DataInfo):
        self.config = config
        self.data = data

    # -- construction -------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, OptimizerSpec]:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def stage(self, images_seen: int) -> Stage:
        return Stage()

    # -- state the engine checkpoints besides roles and optimizers (e.g. an image pool) ---------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    # -- using a trained model ----------------------------------------------------------------
    def sample(
        self, nets: Nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]
    ) -> Tensor:
        """``n`` images in [-1, 1]; ``condition`` carries user options such as {"class": 7}."""
        raise NotImplementedError

    def grid_columns(self, n: int, condition: Mapping[str, Any]) -> int | None:
        """Columns of the grid ``ganzoo sample`` draws from ``sample()``; None: square."""
        return None

    def preview(self, nets: Nets, fixed: Any, images_seen: int) -> Tensor:
        """The image grid (C, H, W in [-1, 1]) written during training from fixed inputs."""
        raise NotImplementedError

    def preview_inputs(self, generator: torch.Generator, data_sample: Batch) -> Any:
        """Fixed inputs for ``preview``: made once per run from the run seed, so resumes match."""
        raise NotImplementedError

    def exports(self, nets: Nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        raise NotImplementedError

    def import_weights(self, path: str, options: Mapping[str, Any]) -> dict[str, nn.Module]:
        """Optional: roles built from weights trained elsewhere (``ganzoo import``)."""
        raise NotImplementedError(f"plugin '{self.name}' cannot import foreign weights")

    # -- reporting and benchmarking -------------------------------------------------------------
    def evaluate(self, nets: Nets, options: Mapping[str, Any]) -> dict[str, float]:
        """Optional plugin-specific scores (e.g. translation PSNR against an answer key)."""
        return {}

    def on_train_end(self, run_dir: Path) -> None:
        """Optional: called once on the main process when training stops (finished or
        interrupted), after the last samples and checkpoint; e.g. to build reports from them."""

    def reference_step(self, nets: Nets) -> Callable[[Batch], None] | None:
        """Optional: one training step written as a plain PyTorch loop over the same networks
        and losses, with its own optimizers. ``ganzoo bench`` times it side by side with the
        engine to measure the engine's overhead."""
        return None


def gaussian_latents(
    n: int, dim: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """N(0, 1) latents of shape (n, dim) on ``device``.

    With a seeded ``generator`` (a CPU one) the numbers are drawn on the CPU and moved, so a seed gives
    the same latents, hence the same samples, on every device; without one they are drawn on the device
    itself, which is what training wants.
    """
    import torch

    if generator is None:
        return torch.randn(n, dim, device=device)
    return torch.randn(n, dim, generator=generator).to(device)
