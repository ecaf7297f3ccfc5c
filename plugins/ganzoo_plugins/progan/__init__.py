"""Progressive GAN — Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018.

The method, each part visible below or in the module named:
1. growth (schedule.py): G and D start at 4x4; every doubling first fades the new layers in
   (alpha 0 -> 1), then stabilises, both periods counted in real images shown. ``stage()`` tells
   the engine where training is: a new resolution is a new ``Stage.key``, so the engine rebuilds
   the optimizers (fresh Adam state), delivers the real images at that resolution and uses its
   batch size; G, D and the real images read the resolution and alpha from ``ctx.stage``;
2. fade-in (networks.py): G blends the upsampled previous toRGB with the new toRGB, D mirrors it
   with fromRGB on a downsampled image, and the real images are blended the same way;
3. equalized learning rate, pixelwise feature normalization in G, minibatch standard deviation in
   D, LeakyReLU(0.2) and no batch norm (layers.py);
4. WGAN-GP with lambda 10 and the epsilon-drift term 0.001 (engine switches, ``train_defaults``),
   Adam(1e-3, betas 0 / 0.99), and an exponential moving average of G (the engine's EMA);
5. G's output is linear, as in the paper: samples, previews and exports are clamped to [-1, 1].
The schedule of D then G, sampling and export come from ``LatentGAN``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import Batch, DataInfo, ExportSpec, LatentGAN, Nets, Stage, device_of
from ganzoo_plugins.progan.networks import (
    PAPER_FMAP_BASE,
    PAPER_FMAP_MAX,
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


@dataclass
class ProGANConfig:
    latent_dim: int = setting(512, ge=1)
    fmap_base: int = setting(PAPER_FMAP_BASE, ge=1)  # channels: min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = setting(PAPER_FMAP_MAX, ge=1)
    minibatch_group_size: int = setting(4, ge=1)
    start_resolution: int = setting(4, ge=4)
    stabilize_images: int = setting(PAPER_PHASE_IMAGES, ge=0)  # per resolution, counted in real images shown
    fade_images: int = setting(PAPER_PHASE_IMAGES, ge=0)  # per new resolution, before it stabilises
    # resolution -> batch size; resolutions left out use the engine's batch_size
    batch_sizes: dict[int, int] = field(default_factory=dict)
    lr: float = setting(1e-3, gt=0)
    beta1: float = setting(0.0, ge=0, lt=1)
    beta2: float = setting(0.99, ge=0, lt=1)
    eps: float = setting(1e-8, gt=0)


@dataclass(frozen=True)
class GrowthStage(Stage):
    """The schedule as the engine sees it: a new resolution is a new key; alpha moves within one."""

    alpha: float = 1.0

    def info(self) -> Mapping[str, float]:
        return {"res": self.resolution, "alpha": round(self.alpha, 3)}


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


class ProgressiveGAN(LatentGAN):
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
    sample_options = ("resolution",)

    def __init__(self, config: ProGANConfig, data: DataInfo):
        super().__init__(config, data)
        check_data_size(data.size)
        check_top_feature_maps(config, data.size)
        self.schedule = growth_schedule(config, data.size)

    # -- networks ------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, d = self.config, self.data
        return {
            "G": ProgressiveGenerator(c.latent_dim, d.size, d.channels, c.fmap_base, c.fmap_max),
            "D": ProgressiveDiscriminator(
                d.size, d.channels, c.fmap_base, c.fmap_max, c.minibatch_group_size
            ),
        }

    def stage(self, images_seen: int) -> GrowthStage:
        growth = self.schedule.stage_at(images_seen)
        return GrowthStage(
            key=growth.phase_index,
            resolution=growth.resolution,
            batch_size=self.schedule.batch_sizes.get(growth.resolution),  # None: the engine's
            alpha=growth.alpha,
        )

    # -- G, D and the real images at the stage's resolution and alpha ----------------------------
    def generate(self, nets: Nets, z: Tensor, labels: Tensor | None = None, stage: Stage | None = None,
                 resolution: int | None = None) -> Tensor:
        """While training, G at the stage's resolution and alpha; otherwise at alpha 1 at the final
        (or the given) resolution, clamped to [-1, 1] since G's output is linear."""
        if isinstance(stage, GrowthStage):
            return nets["G"](z, stage.resolution, stage.alpha)
        return nets["G"](z, resolution or self.data.size, 1.0).clamp(-1.0, 1.0)

    def discriminator(self, nets: Nets, labels: Tensor | None = None, stage: Stage | None = None):
        alpha = stage.alpha if isinstance(stage, GrowthStage) else 1.0
        return lambda x: nets["D"](x, alpha)

    def real(self, batch: Batch, ctx) -> Tensor:
        return blend_real(batch.images, ctx.stage.alpha)

    # -- using the trained generator -----------------------------------------------------------
    def requested_resolution(self, options: Mapping[str, Any]) -> int:
        self.requested_class(options)  # refuses unknown options
        value = options.get("resolution", self.data.size)
        text = str(value).strip()
        available = self.schedule.resolutions()
        if not text.isdigit() or int(text) not in available:
            raise UserError(
                f"resolution {value!r} is not one this run grows through: "
                f"use one of {', '.join(map(str, available))}"
            )
        return int(text)

    def sample(self, nets: Nets, n: int, *, generator: torch.Generator, condition: Mapping[str, Any]) -> Tensor:
        """``n`` images at alpha 1: the final resolution, or ``condition["resolution"]``."""
        resolution = self.requested_resolution(condition)
        return self.generate(nets, self.latents(n, device_of(nets["G"]), generator), resolution=resolution)

    def exports(self, nets: Nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        """The final resolution at alpha 1; with ``resolution=R`` also the generator at R x R."""
        resolutions = [self.data.size]
        requested = self.requested_resolution(options)
        if requested != self.data.size:
            resolutions.append(requested)
        return [
            self.generator_export(
                nets,
                name="generator" if r == self.data.size else f"generator-{r}x{r}",
                metadata={"resolution": r, "max_resolution": self.data.size},
                resolution=r,
            )
            for r in resolutions
        ]

    # -- reporting -------------------------------------------------------------------------------
    def on_train_end(self, run_dir: Path) -> None:
        from ganzoo_plugins.progan.growth_report import write_growth_report

        write_growth_report(run_dir, self.schedule)
