"""The plugin contract: what an architecture declares, and what the engine does with it.

This module is the bottom layer of ganzoo: it imports nothing from the engine, the data layer or the
metrics, which all build on it. A plugin is a class; the engine instantiates it with the resolved
model config and a description of the data (``DataInfo``), then asks it for

- ``build()``: named roles, e.g. ``{"G": ..., "D": ...}`` or ``{"G_AB", "G_BA", "D_A", "D_B"}``;
- ``optimizers()``: which roles each optimizer updates, with lr, betas and an optional lr schedule;
- ``phases()``: the training phases (which optimizer steps, how often, with which loss function);
  loss functions *return* losses, and the engine owns backward, AMP, stepping, EMA, DDP and logging;
- ``sample()``: images for users.

Those four are required (abstract); everything else has a default: ``stage()`` for networks that
change during training, ``preview()`` for the grids written while training, ``exports()`` for ONNX,
``state_dict()`` for state besides the networks, and a few optional hooks. ``LatentGAN`` and
``TranslationGAN`` (beside this module) implement the common shapes, so most plugins only write
their networks and losses.

Roles are never held by the plugin: the engine passes them in (``nets``), DDP-wrapped while
training and as EMA copies in eval mode when sampling or exporting.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import Tensor, nn

Nets = Mapping[str, "nn.Module"]
DataKind = Literal["images", "vectors", "unpaired", "paired"]
DATA_KINDS: tuple[str, ...] = ("images", "vectors", "unpaired", "paired")


# -- data -----------------------------------------------------------------------------------------
@dataclass
class Batch:
    """One batch of real data on the training device: images in [-1, 1] NCHW, or (N, D) points.

    - kind "images": ``images`` (and ``labels`` for labelled data);
    - kind "vectors": ``images`` holds (N, D) float points;
    - kind "unpaired": ``images`` from domain A and ``images_b`` from domain B, drawn independently;
    - kind "paired": ``images`` (A) and ``images_b`` (B) where item i of each is the same pair, cropped
      and flipped together.

    ``index`` (and ``index_b``) are the items' positions in the dataset, for plugins and tests that
    need to know which items they got.
    """

    images: Tensor
    labels: Tensor | None = None  # int64 class indices, for labelled data
    images_b: Tensor | None = None  # domain B (unpaired or paired data)
    index: Tensor | None = None
    index_b: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class Accepts:
    """The data a plugin trains on: one or more kinds (see ``Batch``), and whether it needs labels.

        accepts = Accepts("images")                 # DCGAN
        accepts = Accepts("images", labels=True)    # a class-conditional GAN
        accepts = Accepts("unpaired")               # CycleGAN
        accepts = Accepts("paired")                 # pix2pix
        accepts = Accepts("images", "vectors")      # an MLP GAN that also models 2-D points
    """

    kinds: tuple[DataKind, ...]
    labels: bool = False

    def __init__(self, *kinds: DataKind, labels: bool = False):
        unknown = [k for k in kinds if k not in DATA_KINDS]
        if not kinds or unknown:
            raise ValueError(f"Accepts takes one or more of {', '.join(DATA_KINDS)}; got {kinds}")
        object.__setattr__(self, "kinds", tuple(kinds))
        object.__setattr__(self, "labels", labels)

    def describe(self) -> str:
        return " or ".join(self.kinds) + (", labelled" if self.labels else "")


@dataclass(frozen=True)
class DataInfo:
    """What a plugin may know about its data; saved in the run so a run can be rebuilt without it.

    For kind "vectors" (e.g. the 2-D toy sets ring8 and grid25) every item is a point: ``channels``
    is its number of coordinates and ``size`` is 0. For "unpaired" and "paired" data ``channels_b``
    is domain B's channel count (equal to ``channels`` unless the dataset says otherwise).
    """

    channels: int
    size: int
    num_images: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    kind: DataKind = "images"
    num_images_b: int = 0
    channels_b: int = 0
    name: str = ""
    licence: str = ""  # of the training data, where known (e.g. for model cards)
    batch_size: int = 0  # images per step over all processes, as configured (0: unknown)

    def __post_init__(self) -> None:
        if self.kind in ("unpaired", "paired") and not self.channels_b:
            object.__setattr__(self, "channels_b", self.channels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["class_names"] = tuple(d.get("class_names", ()))
        return cls(**d)


# -- optimization and training phases -------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerSpec:
    """An Adam optimizer over some roles. ``lr_lambda(step)`` scales lr per optimizer step."""

    roles: tuple[str, ...]
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    lr_lambda: Callable[[int], float] | None = None


@dataclass(frozen=True)
class Stage:
    """Where a model that changes during training is; the default is one stage for the whole run.

    A change of ``key`` makes the engine rebuild the optimizers (and DDP wrappers). ``resolution``
    and ``batch_size`` tell the engine what data to deliver (None: as configured). Plugins subclass
    it to carry their own typed fields (Progressive GAN adds the fade-in ``alpha``), which their loss
    functions read from ``ctx.stage``; ``info()`` says what progress and logs show.
    """

    key: Hashable = 0
    resolution: int | None = None
    batch_size: int | None = None

    def info(self) -> Mapping[str, float]:
        return {}


class StepContext(Protocol):
    """What a phase's loss function gets besides the nets and the batch (the engine implements it).

    Score discriminators through ``discriminator_loss`` and ``generator_loss``: they apply the
    configured adversarial loss and every stability switch (label smoothing, instance noise,
    DiffAugment/ADA, R1, gradient penalty, drift), so they work for every plugin. ``d`` is the
    discriminator, or a closure over it (and its class labels). ``condition``: for a discriminator
    that judges an image *given* another image (pix2pix's input), pass that image; ``d`` then sees
    ``torch.cat([condition, x], dim=1)``, augmented as one so the pair stays aligned.
    """

    step: int
    images_seen: int
    device: torch.device
    stage: Stage
    cache: dict[str, Any]  # shared by the phases of one step (e.g. fakes made in the G phase)

    def discriminator_loss(
        self, d: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, *, condition: Tensor | None = None
    ) -> dict[str, Tensor]:
        """D's loss on ``real`` vs. ``fake`` (detached here) plus penalties: {"loss", terms...}."""
        ...

    def generator_loss(
        self, d: Callable[[Tensor], Tensor], fake: Tensor, *, condition: Tensor | None = None
    ) -> Tensor:
        """G's adversarial loss for ``fake`` against ``d``."""
        ...


LossFn = Callable[[Nets, Batch, StepContext], dict[str, "Tensor"]]


@dataclass(frozen=True)
class Phase:
    """One update: compute ``loss`` and step ``optimizer``, on iterations where step % every == 0.

    ``kind`` tells the engine which switches apply: discriminator phases get weight clipping and
    the ``d_steps`` ratio; generator phases get the unrolled-GAN lookahead.

    The engine records gradients only for the roles ``optimizer`` updates. ``keep_graph`` names
    other roles whose graph the loss builds for a later phase of the same step, through
    ``ctx.cache``: CUT's D phase makes the step's translations with G's graph kept, and its G phase
    trains through them, so G runs forward once per step, as in the reference; DCGAN's D phase
    draws the fakes its G phase then scores. A phase never steps these roles, and D losses detach
    their fakes, so the graph waits unused until its own phase. The engine keeps it only on steps
    where a later phase that trains those roles is due.
    """

    name: str
    optimizer: str
    loss: LossFn
    kind: Literal["discriminator", "generator"]
    every: int = 1
    keep_graph: tuple[str, ...] = ()


# -- export ---------------------------------------------------------------------------------------
@dataclass
class ExportSpec:
    """One ONNX model to write: a module, example inputs and what they mean.

    ``metadata`` keys ``direction`` (AtoB/BtoA), ``size_multiple`` (image sides a translator takes
    must be multiples of it) and ``resolution`` become metadata fields of the file; any other key is
    stored as ``ganzoo.extra.<key>``. ``parity_inputs`` are extra input tuples (other batch sizes or
    image sizes) on which the export is checked against PyTorch.
    """

    name: str  # file stem suffix, e.g. "generator", "AtoB"
    module: nn.Module
    example_inputs: tuple[Tensor, ...]
    input_names: tuple[str, ...]
    input_roles: tuple[Literal["latent", "label", "image"], ...]
    dynamic_axes: dict[str, dict[int, str]]
    task: Literal["generate", "translate"]
    metadata: dict[str, Any] = field(default_factory=dict)
    parity_inputs: list[tuple[Tensor, ...]] = field(default_factory=list)


# -- the plugin -----------------------------------------------------------------------------------
@dataclass
class NoConfig:
    """The model config of a plugin that has no settings of its own."""


class Plugin(abc.ABC):
    """Base class of every architecture: set the class attributes, implement the four abstract
    methods, override the optional ones where the default does not fit."""

    name: ClassVar[str] = ""  # the registry name; must equal the entry-point name
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    Config: ClassVar[type] = NoConfig  # a dataclass with a default for every field
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # name -> overrides (model, train, data keys)
    default_preset: ClassVar[str | None] = None
    # Engine settings this architecture wants by default (e.g. {"loss": "lsgan"}); users still override.
    train_defaults: ClassVar[Mapping[str, Any]] = {}
    accepts: ClassVar[Accepts] = Accepts("images")
    generators: ClassVar[tuple[str, ...]] = ("G",)  # roles that get EMA copies
    discriminators: ClassVar[tuple[str, ...]] = ("D",)  # roles the D-side switches (spectral norm) apply to
    # Multi-GPU: True when some parameters take no part in some steps (e.g. blocks of other resolutions).
    ddp_find_unused_parameters: ClassVar[bool] = False

    def __init__(self, config: Any, data: DataInfo):
        self.config = config
        self.data = data

    # -- required -----------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self) -> dict[str, nn.Module]:
        """The networks, by role name; ``self.config`` and ``self.data`` say how to size them."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, OptimizerSpec]:
        """Optimizers by name; called again whenever ``stage().key`` changes."""

    @abc.abstractmethod
    def phases(self) -> list[Phase]:
        """The updates of one training step, in order."""

    @abc.abstractmethod
    def sample(self, nets: Nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]) -> Tensor:
        """``n`` images in [-1, 1] NCHW, drawn with ``generator`` (a seeded CPU generator, so a seed
        gives the same images on every device); ``condition`` carries user options ({"class": 7}).
        Refuse options you do not know with a ``UserError``."""

    # -- optional: training ---------------------------------------------------------------------
    def stage(self, images_seen: int) -> Stage:
        """Where training is after ``images_seen`` real images (a pure function of it, so resumes land
        on the same stage)."""
        return Stage()

    def on_train_start(self, examples: Batch) -> None:
        """Called once when a new run starts (not on resume) with a fixed batch of real examples
        (up to 16, made from the run seed); keep what you need in ``state_dict()``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """State the engine checkpoints besides roles and optimizers (e.g. an image pool): tensors and
        primitives only, since checkpoints are read with ``weights_only=True``."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    # -- optional: showing and deploying ---------------------------------------------------------
    def preview(self, nets: Nets, *, examples: Batch, stage: Stage, generator: torch.Generator) -> Tensor:
        """The grid (C, H, W in [-1, 1]) written during training. ``generator`` is freshly seeded with
        the run seed at every call, so the same latents show the same training progress."""
        from ganzoo.images import grid

        return grid(self.sample(nets, 64, generator=generator, condition={}), nrow=8)

    def grid_columns(self, n: int, condition: Mapping[str, Any]) -> int | None:
        """Columns of the grid ``ganzoo sample`` draws from ``sample()``; None: square."""
        return None

    def exports(self, nets: Nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        """The networks to export to ONNX (default: none)."""
        return []

    def import_weights(self, path: str, options: Mapping[str, Any]) -> dict[str, nn.Module]:
        """Roles built from weights trained elsewhere (``ganzoo import``); afterwards ``self.config``
        and ``self.data`` must describe the imported networks."""
        from ganzoo.errors import UserError

        raise UserError(f"plugin '{self.name}' cannot import weights trained elsewhere")

    def evaluate(self, nets: Nets, options: Mapping[str, Any]) -> dict[str, float]:
        """Plugin-specific scores for ``ganzoo eval`` (e.g. translation PSNR against an answer key)."""
        return {}

    def on_train_end(self, run_dir: Path) -> None:
        """Called once on the main process when training stops (finished or interrupted), after the
        last samples and checkpoint; e.g. to build reports from them."""
        return None


def missing_methods(cls: type) -> list[str]:
    """The abstract methods ``cls`` leaves unimplemented (empty for a complete plugin)."""
    return sorted(getattr(cls, "__abstractmethods__", ()))


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


def device_of(module: nn.Module) -> torch.device:
    """The device of a module's parameters."""
    return next(module.parameters()).device
