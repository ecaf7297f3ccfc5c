"""``TranslationGAN``: the shape shared by image-to-image translation GANs.

A translator is a generator that maps a whole image of domain A to domain B (or back), fully
convolutional, so it runs at any image size that is a multiple of its ``size_multiple``. A subclass
names its translators (``translators``: direction -> generator role), builds its networks and writes
its losses; this class supplies

- a gallery of real examples of each domain kept with the run (``on_train_start``), so that
  ``ganzoo sample RUN`` can show translations without data (option ``direction=AtoB|BtoA``);
- preview grids: one row per example, each real input beside its translation;
- ONNX exports: one translator per direction, dynamic batch, height and width, with the size
  multiple in its metadata, so ``ganzoo translate``, the runtime and the web page work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganzoo.errors import UserError
from ganzoo.plugin.contract import Accepts, Batch, DataInfo, ExportSpec, Nets, Plugin, Stage, device_of

EXPORT_SIDE = 32  # example image side for ONNX export (rounded up to the size multiple)
PREVIEW_ROWS = 4


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float NCHW -> uint8 NCHW; exact for images that came from uint8."""
    return images.detach().cpu().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def from_uint8(images: Tensor) -> Tensor:
    return images.to(torch.float32).div_(127.5).sub_(1.0)


class TranslationGAN(Plugin):
    """Base class of image-to-image plugins; see the module docstring for what it supplies."""

    accepts = Accepts("unpaired")
    translators: ClassVar[Mapping[str, str]] = {"AtoB": "G"}  # direction -> generator role

    def __init__(self, config: Any, data: DataInfo):
        super().__init__(config, data)
        self.gallery: dict[str, Tensor] = {}  # a few real uint8 images per domain, kept with the run
        self.directions: tuple[str, ...] = tuple(self.translators)  # those with trained weights

    def size_multiple(self, net: nn.Module) -> int:
        """What a translator's input height and width must be multiples of (1: any size)."""
        return 1

    def translate(self, nets: Nets, images: Tensor, direction: str) -> Tensor:
        return nets[self.translators[direction]](images)

    def channels_in(self, direction: str) -> int:
        return self.data.channels if direction == "AtoB" else self.data.channels_b or self.data.channels

    # -- state besides the networks ---------------------------------------------------------------
    def on_train_start(self, examples: Batch) -> None:
        self.gallery = {"A": to_uint8(examples.images)}
        if examples.images_b is not None:
            self.gallery["B"] = to_uint8(examples.images_b)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {f"gallery_{d}": images for d, images in self.gallery.items()}
        state["directions"] = list(self.directions)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.gallery = {d: state[f"gallery_{d}"] for d in ("A", "B") if f"gallery_{d}" in state}
        self.directions = tuple(state.get("directions", self.translators))

    # -- using the trained translators ---------------------------------------------------------
    def requested_direction(self, options: Mapping[str, Any]) -> str:
        unknown = sorted(set(options) - {"direction"})
        if unknown:
            raise UserError(f"{self.name} does not know the option(s) {', '.join(unknown)}: it takes direction")
        direction = str(options.get("direction", self.directions[0]))
        if direction not in self.directions:
            raise UserError(f"direction={direction!r} is not one this run translates: use {' or '.join(self.directions)}")
        return direction

    def sample(self, nets: Nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]) -> Tensor:
        """Translations of ``n`` example images kept with the run."""
        direction = self.requested_direction(condition)
        source = self.gallery.get(direction[0])
        if source is None:
            raise UserError(
                "this run keeps no images to translate (it was imported): "
                f"translate your own with `ganzoo translate RUN IMAGE... --direction {direction}`"
            )
        picked = source[torch.randint(len(source), (n,), generator=generator)]
        net = nets[self.translators[direction]]
        return self.translate(nets, from_uint8(picked).to(device_of(net)), direction)

    def preview(self, nets: Nets, *, examples: Batch, stage: Stage, generator: torch.Generator) -> Tensor:
        """One row per example: real A and its translation; with a BtoA translator also real B and
        its translation; for paired data the true B closes the row."""
        from ganzoo.images import grid

        device = device_of(nets[self.translators[self.directions[0]]])
        rows = min(PREVIEW_ROWS, len(examples))
        real_a = examples.images[:rows].to(device)
        real_b = examples.images_b[:rows].to(device) if examples.images_b is not None else None
        columns = [real_a, self.translate(nets, real_a, "AtoB")]
        if "BtoA" in self.translators and real_b is not None:
            columns += [real_b, self.translate(nets, real_b, "BtoA")]
        elif real_b is not None and self.data.kind == "paired":
            columns.append(real_b)
        if len({c.shape[1] for c in columns}) > 1:  # e.g. grey A -> colour B: show grey as colour
            columns = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
        return grid(torch.stack(columns, dim=1).flatten(0, 1), nrow=len(columns))

    def exports(self, nets: Nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        unknown = sorted(set(options))
        if unknown:
            raise UserError(f"{self.name} takes no export options, got {', '.join(unknown)}")
        return [self.translator_export(nets[self.translators[d]], d) for d in self.directions]

    def translator_export(self, net: nn.Module, direction: str) -> ExportSpec:
        generator = torch.Generator().manual_seed(0)
        channels = self.channels_in(direction)

        def images(n: int, h: int, w: int) -> Tensor:
            return torch.rand(n, channels, h, w, generator=generator) * 2 - 1

        multiple = self.size_multiple(net)
        side = multiple * math.ceil(EXPORT_SIDE / multiple)
        axes = {0: "batch", 2: "height", 3: "width"}
        return ExportSpec(
            name=direction,
            module=net,
            example_inputs=(images(1, side, side),),
            # Not "image": that names the output, and ONNX names must be unique.
            input_names=("source",),
            input_roles=("image",),
            dynamic_axes={"source": axes, "image": axes},
            task="translate",
            metadata={"direction": direction, "size_multiple": multiple},
            parity_inputs=[(images(2, side + multiple, side),), (images(1, side, side + 2 * multiple),)],
        )
