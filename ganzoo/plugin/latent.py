"""``LatentGAN``: the shape shared by GANs whose generator maps noise (and optionally a class) to images.

G maps latents z ~ N(0, I) of size ``config.latent_dim`` (and, for plugins that accept labelled data,
a class index y) to images; D judges images (and labels). A subclass builds ``{"G": ..., "D": ...}``
and this class supplies the rest, so a plugin file holds only its paper's networks and losses:

- the schedule of Goodfellow et al. (2014), Algorithm 1 with k = 1: D on reals vs. G(z), then G
  against the updated D, both scored through the engine (``ctx``) so every loss and switch applies;
  G's step draws fresh latents, or with ``reuse_fakes`` scores the fakes D's step judged (as DCGAN's
  reference implementations do, which saves one pass of G per step);
- Adam for G and for D, from ``config.lr``, ``config.beta1``, ``config.beta2`` (and ``config.eps``
  where the config has it);
- sampling (by class index or name for conditional models), preview grids (one row per class for
  conditional models, the same noise down each column), and the ONNX export of G(z[, y]).

Override ``generate`` when G needs more than (z[, y]) (Progressive GAN passes a resolution), and the
loss functions when the method adds terms (an auxiliary classifier, a diversity term).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.errors import UserError
from ganzoo.plugin.contract import (
    Batch,
    DataInfo,
    ExportSpec,
    Nets,
    OptimizerSpec,
    Phase,
    Plugin,
    Stage,
    StepContext,
    device_of,
    gaussian_latents,
)

PREVIEW_COLUMNS = 8
PREVIEW_IMAGES = 64  # unconditional previews: an 8 x 8 grid
PREVIEW_MAX_ROWS = 16  # conditional previews of many classes show an evenly spaced subset
NAMES_SHOWN_IN_ERRORS = 20


class LatentGAN(Plugin):
    """Base class of latent-to-image GANs; see the module docstring for what it supplies."""

    # Sampling options besides "class" that ``sample``/``exports`` of a subclass understand.
    sample_options: ClassVar[tuple[str, ...]] = ()
    # G's step scores the fakes D's step made (D's phase then builds G's graph) instead of new ones.
    reuse_fakes: ClassVar[bool] = False

    def __init__(self, config: Any, data: DataInfo):
        super().__init__(config, data)
        if self.accepts.labels and data.num_classes < 1:
            raise UserError(
                f"{self.name} needs labelled data: use digits, class subfolders, or a labelled torchvision dataset"
            )

    @property
    def conditional(self) -> bool:
        """G and D take class labels (the plugin accepts labelled data and has classes)."""
        return self.accepts.labels and self.data.num_classes > 0

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # -- the networks' interface -----------------------------------------------------------------
    def latents(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        return gaussian_latents(n, self.latent_dim, device, generator)

    def generate(self, nets: Nets, z: Tensor, labels: Tensor | None = None, stage: Stage | None = None) -> Tensor:
        """G's images for latents ``z`` (and ``labels``); ``stage`` is None outside training."""
        return nets["G"](z, labels) if self.conditional else nets["G"](z)

    def discriminator(
        self, nets: Nets, labels: Tensor | None = None, stage: Stage | None = None
    ) -> Callable[[Tensor], Tensor]:
        """D as a function of images, with the labels (and anything of the stage) bound."""
        d = nets["D"]
        return (lambda x: d(x, labels)) if self.conditional else d

    # -- training --------------------------------------------------------------------------------
    def optimizers(self) -> dict[str, OptimizerSpec]:
        c = self.config
        betas = (c.beta1, c.beta2)
        eps = getattr(c, "eps", 1e-8)
        return {role: OptimizerSpec((role,), c.lr, betas, eps) for role in ("G", "D")}

    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", self.discriminator_loss, "discriminator", keep_graph=("G",) if self.reuse_fakes else ()),
            Phase("G", "G", self.generator_loss, "generator"),
        ]

    def fake(self, nets: Nets, batch: Batch, ctx: StepContext, labels: Tensor | None = None) -> Tensor:
        """G's images for fresh latents, one per real image (for the batch's labels unless given)."""
        labels = batch.labels if labels is None else labels
        return self.generate(nets, self.latents(len(batch), ctx.device), labels, ctx.stage)

    def real(self, batch: Batch, ctx: StepContext) -> Tensor:
        """The real images D sees (Progressive GAN blends resolutions here)."""
        return batch.images

    def discriminator_loss(self, nets: Nets, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        d = self.discriminator(nets, batch.labels, ctx.stage)
        fake = self.fake(nets, batch, ctx)
        if self.reuse_fakes:
            ctx.cache["fake"] = fake
        return ctx.discriminator_loss(d, self.real(batch, ctx), fake)

    def generator_loss(self, nets: Nets, batch: Batch, ctx: StepContext) -> dict[str, Tensor]:
        d = self.discriminator(nets, batch.labels, ctx.stage)
        fake = ctx.cache.pop("fake", None) if self.reuse_fakes else None
        if fake is None or not fake.requires_grad:  # D's phase did not run, or G was frozen in it
            fake = self.fake(nets, batch, ctx)
        return {"loss": ctx.generator_loss(d, fake)}

    # -- classes as users name them ---------------------------------------------------------------
    def class_index(self, value: Any) -> int:
        """A class given by name or index -> its index; anything else is a one-line UserError."""
        names, count = self.data.class_names, self.data.num_classes
        if isinstance(value, str) and value in names:
            return names.index(value)
        text = str(value).strip()
        if not isinstance(value, bool) and text.lstrip("-").isdigit() and 0 <= int(text) < count:
            return int(text)
        valid = f"an index in 0..{count - 1}"
        if names:
            shown = ", ".join(names[:NAMES_SHOWN_IN_ERRORS]) + (", ..." if len(names) > NAMES_SHOWN_IN_ERRORS else "")
            valid += f" or one of: {shown}"
        raise UserError(f"class {value!r} is not valid for this run: use {valid}")

    def requested_class(self, condition: Mapping[str, Any]) -> int | None:
        known = ("class",) if self.conditional else ()
        unknown = sorted(set(condition) - set(known) - set(self.sample_options))
        if unknown:
            takes = ", ".join(known + self.sample_options) or "none"
            hint = " (this model is unconditional)" if "class" in unknown and not self.conditional else ""
            raise UserError(f"{self.name} does not know the option(s) {', '.join(unknown)}{hint}: it takes {takes}")
        value = condition.get("class")
        return None if value is None else self.class_index(value)

    def columns_per_class(self, n: int) -> int:
        """Without a class, ``n`` is rounded up to whole rows: every class gets the same columns."""
        return max(1, -(-n // self.data.num_classes))

    # -- using the trained generator -----------------------------------------------------------
    def sample(self, nets: Nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]) -> Tensor:
        """``n`` images; conditional models: of the requested class, or with none one row per class
        sharing each column's z."""
        device = device_of(nets["G"])
        index = self.requested_class(condition)
        if not self.conditional:
            return self.generate(nets, self.latents(n, device, generator))
        if index is not None:
            labels = torch.full((n,), index, dtype=torch.long, device=device)
            return self.generate(nets, self.latents(n, device, generator), labels)
        columns = self.columns_per_class(n)
        z = self.latents(columns, device, generator).repeat(self.data.num_classes, 1)
        labels = torch.arange(self.data.num_classes, device=device).repeat_interleave(columns)
        return self.generate(nets, z, labels)

    def grid_columns(self, n: int, condition: Mapping[str, Any]) -> int | None:
        if self.conditional and self.requested_class(condition) is None:
            return self.columns_per_class(n)
        return None

    def preview(self, nets: Nets, *, examples: Batch, stage: Stage, generator: torch.Generator) -> Tensor:
        """Fixed latents through G at the current stage; conditional models: one row per class (an
        evenly spaced subset of many), the same noise down each column. Images smaller than the data
        (an early Progressive GAN stage) are enlarged so every grid of a run has one size."""
        from ganzoo.images import grid

        device = device_of(nets["G"])
        if self.conditional:
            rows = min(self.data.num_classes, PREVIEW_MAX_ROWS)
            classes = torch.linspace(0, self.data.num_classes - 1, rows).round().long().to(device)
            z = self.latents(PREVIEW_COLUMNS, device, generator).repeat(rows, 1)
            images = self.generate(nets, z, classes.repeat_interleave(PREVIEW_COLUMNS), stage)
        else:
            images = self.generate(nets, self.latents(PREVIEW_IMAGES, device, generator), None, stage)
        if images.dim() == 4 and images.shape[-1] < self.data.size:
            images = F.interpolate(images, size=(self.data.size, self.data.size), mode="nearest")
        return grid(images, nrow=PREVIEW_COLUMNS)

    def exports(self, nets: Nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        """G(z[, y]) as traced through ``generate`` outside training."""
        self.requested_class(options)
        return [self.generator_export(nets)]

    def generator_export(self, nets: Nets, name: str = "generator", metadata: Mapping[str, Any] | None = None,
                         **generate_kwargs: Any) -> ExportSpec:
        """One ONNX generator: latent (and label) in, image out, dynamic batch."""

        def inputs(n: int) -> tuple[Tensor, ...]:
            z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(n))
            return (z, torch.arange(n) % self.data.num_classes) if self.conditional else (z,)

        names = ("latent", "label") if self.conditional else ("latent",)
        return ExportSpec(
            name=name,
            module=GenerateModule(self, nets, generate_kwargs),
            example_inputs=inputs(2),
            input_names=names,
            input_roles=names,
            dynamic_axes={**{n: {0: "batch"} for n in names}, "image": {0: "batch"}},
            task="generate",
            metadata=dict(metadata or {}),
            parity_inputs=[inputs(1), inputs(self.data.num_classes + 3 if self.conditional else 7)],
        )


class GenerateModule(nn.Module):
    """``plugin.generate`` over the plugin's nets as one module, so it can be traced for ONNX."""

    def __init__(self, plugin: LatentGAN, nets: Nets, generate_kwargs: Mapping[str, Any]):
        super().__init__()
        self.nets = nn.ModuleDict(dict(nets))
        self._plugin = plugin  # not a module: kept out of the state dict
        self._kwargs = dict(generate_kwargs)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self._plugin.generate(self.nets, z, labels, **self._kwargs)
