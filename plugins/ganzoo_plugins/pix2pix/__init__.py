"""pix2pix — Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017.

A generator G learns to map an image x of domain A to its counterpart y of domain B from aligned
pairs (x, y). A discriminator D judges pairs: a real (x, y) against a generated (x, G(x)). The recipe
is the one of the authors' reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix):
1. objective: G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G) with lambda = 100. L_cGAN is the
   vanilla GAN loss (cross-entropy on D's logits, G maximising log D(x, G(x))); L_L1 = |y - G(x)|_1
   gets the low frequencies right, which leaves D to judge local texture;
2. generator: a U-Net (``unet_256``: 8 levels, ``unet_128``: 7) of 4x4 stride-2 convolutions down
   and transposed convolutions up, each level's output concatenated with its mirror's, so the
   input's layout crosses straight to the output; batch norm; dropout 0.5 in the innermost
   full-width levels, the model's only noise;
3. discriminator: a 70x70 PatchGAN (``n_layers_d`` = 3) that scores every patch of the input and an
   output concatenated on channels (``condition=`` of the engine's D calls, which also makes
   DiffAugment/ADA move the two alike); its loss is halved, slowing D down relative to G;
4. Adam(2e-4, 0.5, 0.999) for both, constant for ``n_epochs`` then linearly down to zero over
   ``n_epochs_decay``; weights from N(0, 0.02); batch size 1; random 286 -> 256 crops and flips.
Each step makes G(x) once: G steps against D, then D steps on the same G(x), detached. Both updates
see the (G, D) the step started with, as in the authors' original Torch code, which takes G's loss
from D's output in the D step; the PyTorch reference judges G again with D after D's step.
Sampling, previews (input, output, truth) and the ONNX export of G come from ``TranslationGAN``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, Batch, Nets, OptimizerSpec, Phase, TranslationGAN
from ganzoo_plugins.cyclegan.networks import NLayerDiscriminator, UnetGenerator, init_weights, size_multiple
from ganzoo_plugins.cyclegan.schedule import ReferenceSchedule, reference_optimizers


@dataclass
class Pix2PixConfig(ReferenceSchedule):  # lr, beta1, beta2, n_epochs, n_epochs_decay, init_gain
    num_downs: int = setting(8, ge=5)  # U-Net levels: unet_256 is 8, unet_128 is 7; sides are multiples of 2**num_downs
    ngf: int = setting(64, ge=1)  # generator width after the first layer
    ndf: int = setting(64, ge=1)  # discriminator width after the first layer
    n_layers_d: int = setting(3, ge=1)  # PatchGAN depth: 3 gives 70x70 patches
    norm: Literal["batch", "instance"] = "batch"
    dropout: bool = True  # dropout 0.5 in the U-Net's innermost full-width levels
    lambda_l1: float = setting(100.0, ge=0)  # weight of |y - G(x)|_1 against the adversarial loss


class Pix2Pix(TranslationGAN):
    name = "pix2pix"
    description = "pix2pix (Isola et al. 2017): paired image-to-image translation, U-Net + PatchGAN + L1"
    version = "1.0.0"
    Config = Pix2PixConfig
    accepts = Accepts("paired")
    translators = {"AtoB": "G"}
    generators = ("G",)
    discriminators = ("D",)
    # The reference recipe: vanilla GAN loss, flips, batch 1, no weight averaging.
    train_defaults: Mapping[str, Any] = {
        "loss": "nonsaturating",
        "hflip": True,
        "batch_size": 1,
        "ema_half_life": 0,
        "dataset": "digit-pairs",
    }
    default_preset = "digit-pairs"  # the paper's unet_256 needs 256 px images: too much for a first try
    presets: Mapping[str, Mapping[str, Any]] = {
        # For tests: a few seconds on a CPU.
        "tiny": {"num_downs": 5, "ngf": 8, "ndf": 8, "n_layers_d": 2, "size": 32, "batch_size": 2},
        # The built-in digit-pairs in a few CPU minutes (figures in docs/benchmarks.md). No flips:
        # B's diagonal background stripes would then run both ways.
        "digit-pairs": {
            "dataset": "digit-pairs", "size": 32, "num_downs": 5, "ngf": 32, "ndf": 32, "batch_size": 4,
            "hflip": False, "steps": 1200, "n_epochs": 0.5, "n_epochs_decay": 0.5,
        },
        # Your own pairs on a CPU: 143 -> 128 px random crops, unet_128, narrower networks.
        "cpu": {
            "size": 128, "load_size": 143, "num_downs": 7, "ngf": 32, "ndf": 32,
            "epochs": 20.0, "n_epochs": 10.0, "n_epochs_decay": 10.0,
        },
        # Isola et al. 2017 on a GPU: 286 -> 256 px random crops, unet_256, 100 + 100 epochs.
        "paper": {
            "size": 256, "load_size": 286, "num_downs": 8, "ngf": 64, "ndf": 64, "n_layers_d": 3,
            "batch_size": 1, "epochs": 200.0, "n_epochs": 100.0, "n_epochs_decay": 100.0,
        },
    }

    # -- networks and optimizers ---------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c = self.config
        channels_a, channels_b = self.data.channels, self.data.channels_b or self.data.channels
        nets = {
            "G": UnetGenerator(channels_a, channels_b, c.num_downs, c.ngf, c.norm, c.dropout),
            "D": NLayerDiscriminator(channels_a + channels_b, c.ndf, c.n_layers_d, c.norm),
        }
        multiple = size_multiple(nets["G"])
        if self.data.size % multiple:
            raise UserError(
                f"a U-Net of {c.num_downs} levels needs image sides divisible by {multiple}, but size is "
                f"{self.data.size}: choose a size that is a multiple of {multiple}, or fewer levels (num_downs)"
            )
        for net in nets.values():
            init_weights(net, c.init_gain)
        return nets

    def size_multiple(self, net: nn.Module) -> int:
        return size_multiple(net)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return reference_optimizers(self.config, self.data, {"G": ("G",), "D": ("D",)})

    # -- training: G against D and the truth, then D on the same G(x) ---------------------------
    def phases(self) -> list[Phase]:
        return [
            Phase("G", "G", self.generator_loss, "generator"),
            Phase("D", "D", self.discriminator_loss, "discriminator"),
        ]

    def generator_loss(self, nets: Nets, batch: Batch, ctx) -> dict[str, Tensor]:
        real_a, real_b = batch.images, batch.images_b
        fake_b = nets["G"](real_a)
        ctx.cache["fake_b"] = fake_b.detach()
        adversarial = ctx.generator_loss(nets["D"], fake_b, condition=real_a)
        l1 = F.l1_loss(fake_b, real_b)
        return {"loss": adversarial + self.config.lambda_l1 * l1, "adv": adversarial, "l1": l1}

    def discriminator_loss(self, nets: Nets, batch: Batch, ctx) -> dict[str, Tensor]:
        fake_b = ctx.cache.get("fake_b")
        if fake_b is None:  # no G phase ran this step (d_steps > 1): make this step's G(x) here
            with torch.no_grad():
                fake_b = nets["G"](batch.images)
        terms = ctx.discriminator_loss(nets["D"], batch.images_b, fake_b, condition=batch.images)
        terms["loss"] = 0.5 * terms["loss"]
        return terms

    # -- generators trained with the reference implementation -----------------------------------
    def import_weights(self, path: str, options: Mapping[str, Any]) -> dict[str, nn.Module]:
        """A reference ``latest_net_G.pth`` (``--netG unet_256`` or ``unet_128``, batch or instance
        norm); afterwards ``config`` and ``data`` describe the imported network."""
        from .reference_weights import load_reference_unet

        unknown = sorted(set(options))
        if unknown:
            raise UserError(f"pix2pix takes no import options, got {', '.join(unknown)} (use --set for settings)")
        net, layout = load_reference_unet(path, dropout=self.config.dropout)
        self.config = dataclasses.replace(
            self.config, num_downs=layout["num_downs"], ngf=layout["ngf"], norm=layout["norm"]
        )
        # Its size is the smallest it takes (unet_256: 256 px, which it was trained at); it translates any multiple.
        self.data = dataclasses.replace(
            self.data, channels=layout["input_nc"], channels_b=layout["output_nc"], size=2 ** layout["num_downs"]
        )
        return {"G": net}

    # -- reporting -------------------------------------------------------------------------------
    def evaluate(self, nets: Nets, options: Mapping[str, Any]) -> dict[str, float]:
        """PSNR/SSIM against the digit-pairs answer key (option ``direction``: the data's)."""
        if self.data.name != "digit-pairs":
            return {}
        from ganzoo_plugins.answer_keys import digit_pairs_scores

        return digit_pairs_scores({"AtoB": nets["G"]}, self.data.size, str(options.get("direction", "AtoB")))
