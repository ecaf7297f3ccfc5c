"""Progressive GAN — Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018.

The method, each part visible below or in the module named:
1. growth (schedule.py): G and D start at 4x4; every doubling first fades the new layers in
   (alpha 0 -> 1), then stabilises, both periods counted in real images shown. ``stage()`` tells
   the engine where training is: a new resolution is a new ``Stage.key``, so the engine rebuilds
   the optimizers (fresh Adam state), delivers the real images at that resolution and uses its
   batch size; the losses read alpha from the same schedule at ``ctx.images_seen``;
2. fade-in (networks.py): G blends the upsampled previous toRGB with the new toRGB, D mirrors it
   with fromRGB on a downsampled image, and the real images are blended the same way;
3. equalized learning rate, pixelwise feature normalization in G, minibatch standard deviation in
   D, LeakyReLU(0.2) and no batch norm (layers.py);
4. WGAN-GP with lambda 10 and the epsilon-drift term 0.001 (engine switches, ``train_defaults``),
   Adam(1e-3, betas 0 / 0.99), and an exponential moving average of G (the engine's EMA);
5. G's output is linear, as in the paper: samples, previews and exports are clamped to [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo, ExportSpec, OptimizerSpec, Phase, Plugin, Stage, gaussian_latents
from ganzoo_plugins.progan.networks import (
    PAPER_FMAP_BASE,
    PAPER_FMAP_MAX,
    FixedStageGenerator,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    blend_real,
    feature_maps,
)
from ganzoo_plugins.progan.schedule import PAPER_PHASE_IMAGES, GrowthSchedule

GP_WEIGHT = 10.0
DRIFT = 0.001
# The official code averages G with beta 0.999 per minibatch of 16: a half-life of ~11k images.
PAPER_EMA_HALF_LIFE = round(16 * math.log(0.5) / math.log(0.999))
# Pixel norm divides each feature vector by its length. With very few channels some vectors are
# nearly zero, and float32 rounding is amplified past the export's 1e-4 parity check: measured on
# random G at 32x32 and batch 16, 2 channels at the top resolution give 2.4e-4 between PyTorch's
# own fp32 and fp64 (onnxruntime lands as far from fp64), 4 channels 6e-5, 8 or more ~2e-5.
MIN_FEATURE_MAPS = 8
PREVIEW_COUNT = 36


@dataclass
class ProGANConfig:
    latent_dim: int = 512
    fmap_base: int = PAPER_FMAP_BASE  # channels: min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = PAPER_FMAP_MAX
    minibatch_group_size: int = 4
    start_resolution: int = 4
    stabilize_images: int = PAPER_PHASE_IMAGES  # per resolution, counted in real images shown
    fade_images: int = PAPER_PHASE_IMAGES  # per new resolution, before it stabilises
    # resolution -> batch size; resolutions left out use the engine's batch_size
    batch_sizes: dict[int, int] = field(default_factory=dict)
    lr: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8


def growth_schedule(
    config: ProGANConfig, max_resolution: int, batch_size: int = 16
) -> GrowthSchedule:
    """The schedule of a run. ``batch_size`` stands for the engine's, where ``batch_sizes`` is
    silent; only step counts depend on it (``stage()`` leaves those batches to the engine)."""
    # Entries above the data size belong to presets written for larger images (the paper's).
    reachable = {
        int(res): size for res, size in config.batch_sizes.items() if int(res) <= max_resolution
    }
    return GrowthSchedule(
        start_resolution=config.start_resolution,
        max_resolution=max_resolution,
        stabilize_images=config.stabilize_images,
        fade_images=config.fade_images,
        batch_sizes=reachable,
        default_batch_size=batch_size,
    )


def steps_to_grow(schedule: GrowthSchedule, processes: int = 1) -> int:
    """Engine steps until the schedule's last stabilise period ends (each step shows one batch)."""
    steps, images = 0, 0
    while images < schedule.total_images():
        images += schedule.stage_at(images).batch_size * processes
        steps += 1
    return steps


def check_data_size(size: int) -> None:
    if size < 8 or size & (size - 1):
        raise UserError(
            f"progan grows by doubling from 4x4, so it needs a power-of-two image size >= 8, "
            f"got {size}: set e.g. --set size=32"
        )


def check_top_feature_maps(config: ProGANConfig, max_resolution: int) -> None:
    stage = int(math.log2(max_resolution)) - 1
    narrowest = feature_maps(stage, config.fmap_base, config.fmap_max)
    if narrowest < MIN_FEATURE_MAPS:
        raise UserError(
            f"fmap_base {config.fmap_base} leaves {narrowest} feature maps at "
            f"{max_resolution}x{max_resolution}, too few for pixel norm to be numerically stable: "
            f"use fmap_base >= {MIN_FEATURE_MAPS * 2**stage} (and fmap_max >= {MIN_FEATURE_MAPS})"
        )


class ClampedGenerator(nn.Module):
    """G frozen at one resolution with alpha 1, its linear output clamped to [-1, 1]."""

    def __init__(self, generator: ProgressiveGenerator, resolution: int):
        super().__init__()
        self.fixed = FixedStageGenerator(generator, resolution, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        return self.fixed(z).clamp(-1.0, 1.0)


def _digits_preset() -> dict[str, Any]:
    # The built-in digits on a 2-core CPU (docs/benchmarks.md): 4,000 images per period instead
    # of 800k, so the learning rate is 3e-3 (1e-3 left the 4x4 stage unconverged and the digits
    # lopsided), narrow high-resolution layers (16 channels at 32x32) and the paper's batch of 16.
    model = ProGANConfig(
        latent_dim=128, fmap_base=256, fmap_max=128, stabilize_images=4_000, fade_images=4_000,
        lr=3e-3,
    )
    batch_size = 16
    steps = steps_to_grow(growth_schedule(model, 32, batch_size))
    return {
        "latent_dim": model.latent_dim, "fmap_base": model.fmap_base, "fmap_max": model.fmap_max,
        "stabilize_images": model.stabilize_images, "fade_images": model.fade_images,
        "lr": model.lr, "batch_size": batch_size, "size": 32, "steps": steps,
        "ema_half_life": 1_000, "log_every": 25, "sample_every": 50,
    }


class ProgressiveGAN(Plugin):
    name = "progan"
    description = (
        "Progressive growing of GANs (Karras et al. 2018): 4x4 up to the data size, "
        "fading each new resolution in"
    )
    version = "1.0.0"
    Config = ProGANConfig
    presets: Mapping[str, Mapping[str, Any]] = {
        "digits": _digits_preset(),
        # Seconds on a CPU: the contract check and unit tests.
        "tiny": {
            "latent_dim": 16, "fmap_base": 64, "fmap_max": 16, "size": 16, "stabilize_images": 4,
            "fade_images": 4, "batch_size": 4, "steps": 12, "ema_half_life": 8,
        },
        # The paper's CelebA-HQ recipe; set size to the data's (128-1024) and steps to
        # progan.steps_to_grow(...) or longer (docs/plugins/progan.md has a table).
        "paper": {
            "latent_dim": 512, "fmap_base": PAPER_FMAP_BASE, "fmap_max": PAPER_FMAP_MAX,
            "stabilize_images": PAPER_PHASE_IMAGES, "fade_images": PAPER_PHASE_IMAGES,
            "batch_sizes": {256: 14, 512: 6, 1024: 3}, "batch_size": 16,
        },
    }
    default_preset = "digits"
    train_defaults: Mapping[str, Any] = {
        "loss": "wgan-gp", "gp_weight": GP_WEIGHT, "drift": DRIFT,
        "ema_half_life": PAPER_EMA_HALF_LIFE,
    }
    # Blocks of other resolutions take no part in a step, so DDP must not wait for their gradients.
    ddp_find_unused_parameters = True

    def __init__(self, config: ProGANConfig, data: DataInfo):
        super().__init__(config, data)
        check_data_size(data.size)
        check_top_feature_maps(config, data.size)
        self.schedule = growth_schedule(config, data.size)

    # -- networks and optimizers ---------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, d = self.config, self.data
        return {
            "G": ProgressiveGenerator(c.latent_dim, d.size, d.channels, c.fmap_base, c.fmap_max),
            "D": ProgressiveDiscriminator(
                d.size, d.channels, c.fmap_base, c.fmap_max, c.minibatch_group_size
            ),
        }

    def optimizers(self) -> dict[str, OptimizerSpec]:
        # Called again by the engine at every new resolution: each new Adam starts afresh.
        c = self.config
        return {
            "G": OptimizerSpec(("G",), c.lr, (c.beta1, c.beta2), c.eps),
            "D": OptimizerSpec(("D",), c.lr, (c.beta1, c.beta2), c.eps),
        }

    def stage(self, images_seen: int) -> Stage:
        growth = self.schedule.stage_at(images_seen)
        return Stage(
            key=growth.phase_index,
            resolution=growth.resolution,
            batch_size=self.schedule.batch_sizes.get(growth.resolution),  # None: the engine's
            info={"res": growth.resolution, "alpha": round(growth.alpha, 3)},
        )

    # -- training: WGAN-GP critic on faded reals vs. fakes, then G against the updated critic -----
    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", self.discriminator_loss, "discriminator"),
            Phase("G", "G", self.generator_loss, "generator"),
        ]

    def latents(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> Tensor:
        return gaussian_latents(n, self.config.latent_dim, device, generator)

    def discriminator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        growth = self.schedule.stage_at(ctx.images_seen)
        fake = nets["G"](self.latents(len(batch), ctx.device), growth.resolution, growth.alpha)
        real = blend_real(batch.images, growth.alpha)
        return ctx.discriminator_loss(lambda x: nets["D"](x, growth.alpha), real, fake)

    def generator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        growth = self.schedule.stage_at(ctx.images_seen)
        fake = nets["G"](self.latents(len(batch), ctx.device), growth.resolution, growth.alpha)
        return {"loss": ctx.generator_loss(lambda x: nets["D"](x, growth.alpha), fake)}

    # -- using the trained generator -----------------------------------------------------------
    def requested_resolution(self, options: Mapping[str, Any], what: str) -> int:
        unknown = sorted(set(options) - {"resolution"})
        if unknown:
            raise UserError(
                f"progan does not know the {what} option(s) {', '.join(unknown)}: "
                "it takes only resolution"
            )
        value = options.get("resolution", self.data.size)
        text = str(value).strip()
        available = self.schedule.resolutions()
        if not text.isdigit() or int(text) not in available:
            raise UserError(
                f"resolution {value!r} is not one this run grows through: "
                f"use one of {', '.join(map(str, available))}"
            )
        return int(text)

    def sample(
        self, nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]
    ) -> Tensor:
        """``n`` images at alpha 1: the final resolution, or ``condition["resolution"]``."""
        resolution = self.requested_resolution(condition, "sampling")
        g = nets["G"]
        z = self.latents(n, next(g.parameters()).device, generator)
        return g(z, resolution, 1.0).clamp(-1.0, 1.0)

    def preview_inputs(self, generator: torch.Generator, data_sample: Batch) -> Tensor:
        return torch.randn(PREVIEW_COUNT, self.config.latent_dim, generator=generator)

    def preview(self, nets, fixed: Tensor, images_seen: int) -> Tensor:
        """The fixed latents at the current resolution and alpha, upsampled (nearest) to the final
        size so the grids of every resolution line up in the growth GIF."""
        from ganzoo.images import grid

        g = nets["G"]
        growth = self.schedule.stage_at(images_seen)
        z = fixed.to(next(g.parameters()).device)
        images = g(z, growth.resolution, growth.alpha).clamp(-1.0, 1.0)
        images = F.interpolate(images, size=(self.data.size, self.data.size), mode="nearest")
        return grid(images, nrow=math.isqrt(PREVIEW_COUNT))

    def exports(self, nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        """The final resolution at alpha 1; with ``resolution=R`` also the generator at R x R."""
        resolutions = [self.data.size]
        requested = self.requested_resolution(options, "export")
        if requested != self.data.size:
            resolutions.append(requested)
        return [self.export_spec(nets["G"], resolution) for resolution in resolutions]

    def export_spec(self, generator: ProgressiveGenerator, resolution: int) -> ExportSpec:
        dim = self.config.latent_dim
        final = resolution == self.data.size
        return ExportSpec(
            name="generator" if final else f"generator-{resolution}x{resolution}",
            module=ClampedGenerator(generator, resolution),
            example_inputs=(torch.randn(2, dim),),
            input_names=("latent",),
            input_roles=("latent",),
            dynamic_axes={"latent": {0: "batch"}, "image": {0: "batch"}},
            task="generate",
            metadata={"resolution": resolution, "max_resolution": self.data.size},
            parity_inputs=[(torch.randn(1, dim),), (torch.randn(7, dim),)],
        )

    # -- reporting and benchmarking -------------------------------------------------------------
    def on_train_end(self, run_dir: Path) -> None:
        from ganzoo_plugins.progan.growth_report import write_growth_report

        write_growth_report(run_dir, self.schedule)

    def reference_step(self, nets) -> Callable[[Batch], None]:
        """The same step as a plain loop at the batch's resolution with alpha 1: WGAN-GP critic
        with drift, then G, each with its own Adam."""
        g, d, c = nets["G"], nets["D"], self.config
        opt_g = torch.optim.Adam(g.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
        opt_d = torch.optim.Adam(d.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)
        device = next(g.parameters()).device

        def step(batch: Batch) -> None:
            real = batch.images
            n, resolution = len(real), real.shape[-1]
            g.requires_grad_(False)
            d.requires_grad_(True)
            fake = g(torch.randn(n, c.latent_dim, device=device), resolution)
            real_out, fake_out = d(real), d(fake)
            mix = torch.rand(n, 1, 1, 1, device=device)
            mixed = torch.lerp(real, fake, mix).requires_grad_(True)
            (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
            penalty = (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
            drift = real_out.pow(2).mean()
            d_loss = fake_out.mean() - real_out.mean() + GP_WEIGHT * penalty + DRIFT * drift
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g.requires_grad_(True)
            d.requires_grad_(False)
            g_loss = -d(g(torch.randn(n, c.latent_dim, device=device), resolution)).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

        return step
