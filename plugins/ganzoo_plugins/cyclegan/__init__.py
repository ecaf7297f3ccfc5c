"""CycleGAN — Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017.

Two translators, G_AB: A -> B and G_BA: B -> A, learn from two unpaired image collections against
two discriminators, D_B (real B vs. G_AB(a)) and D_A (real A vs. G_BA(b)). The recipe is the one
of the authors' reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix):
1. generators: the ResNet generator (reflection padding, instance norm, two stride-2
   downsamplings, ``n_blocks`` residual blocks, two transposed-convolution upsamplings, tanh),
   9 blocks for 256 px crops and 6 for 128 px; a U-Net generator as an option;
2. discriminators: 70x70 PatchGAN (``n_layers_d`` = 3) scoring every patch, least-squares loss;
3. cycle consistency: |G_BA(G_AB(a)) - a|_1 and |G_AB(G_BA(b)) - b|_1, weight 10 each;
4. identity: |G_AB(b) - b|_1 and |G_BA(a) - a|_1, weight 0.5 x 10, which keeps colours in place;
5. each discriminator learns from a history pool of 50 generated images (Shrivastava et al.
   2017), with its loss halved to slow it down relative to the generators;
6. Adam(2e-4, 0.5, 0.999), constant for ``n_epochs`` then linearly down to zero over
   ``n_epochs_decay``; an epoch is max(|A|, |B|) images;
7. weights from N(0, 0.02); batch size 1; random crops (``load_size`` -> ``size``) and flips.
The reference's G_A, G_B, D_A, D_B are G_AB, G_BA, D_B, D_A here: a D is named after the domain
it judges. Sampling, previews and the export of both translators come from ``TranslationGAN``.
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

from .networks import (
    ImagePool,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
    size_multiple,
)
from .schedule import ReferenceSchedule, reference_optimizers

DIRECTIONS = {"AtoB": "G_AB", "BtoA": "G_BA"}


@dataclass
class CycleGANConfig(ReferenceSchedule):
    generator: Literal["resnet", "unet"] = "resnet"
    n_blocks: int = setting(9, ge=0)  # residual blocks of the ResNet generator: 9 for 256 px, 6 for 128 px
    num_downs: int = setting(8, ge=1)  # U-Net levels; image sides must be multiples of 2**num_downs
    ngf: int = setting(64, ge=1)  # generator width after the first layer
    ndf: int = setting(64, ge=1)  # discriminator width after the first layer
    n_layers_d: int = setting(3, ge=1)  # PatchGAN depth: 3 gives 70x70 patches
    lambda_cycle: float = setting(10.0, ge=0)  # cycle-consistency weight, per direction
    lambda_identity: float = setting(0.5, ge=0)  # identity weight, as a fraction of lambda_cycle; 0 is off
    pool_size: int = setting(50, ge=0)  # generated images remembered per discriminator; 0 is off


class CycleGAN(TranslationGAN):
    name = "cyclegan"
    description = "CycleGAN (Zhu et al. 2017): unpaired image-to-image translation, both directions"
    version = "1.0.0"
    Config = CycleGANConfig
    accepts = Accepts("unpaired")
    translators = DIRECTIONS
    generators = ("G_AB", "G_BA")
    discriminators = ("D_A", "D_B")
    # The reference recipe: LSGAN, flips, batch 1, no weight averaging.
    train_defaults: Mapping[str, Any] = {
        "loss": "lsgan",
        "hflip": True,
        "batch_size": 1,
        "ema_half_life": 0,
        "dataset": "digit-styles",
    }
    presets: Mapping[str, Mapping[str, Any]] = {
        # For tests: a few seconds on a CPU.
        "tiny": {"ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2, "pool_size": 4, "size": 16, "batch_size": 2},
        # The built-in digit-styles in a few CPU minutes: one epoch (figures in docs/benchmarks.md).
        # No flips: B's diagonal background stripes would then run both ways.
        "digit-styles": {
            "dataset": "digit-styles", "size": 32, "ngf": 16, "ndf": 16, "n_blocks": 3, "batch_size": 4,
            "hflip": False, "steps": 600, "n_epochs": 0.5, "n_epochs_decay": 0.5,
        },
        # Your own folders on a CPU: 143 -> 128 px random crops, 6 blocks, narrower networks.
        "cpu": {
            "size": 128, "load_size": 143, "ngf": 32, "ndf": 32, "n_blocks": 6,
            "epochs": 20.0, "n_epochs": 10.0, "n_epochs_decay": 10.0,
        },
        # Zhu et al. 2017 on a GPU: 286 -> 256 px random crops, 9 blocks, 100 + 100 epochs.
        "paper": {
            "size": 256, "load_size": 286, "ngf": 64, "ndf": 64, "n_blocks": 9, "n_layers_d": 3,
            "batch_size": 1, "pool_size": 50, "epochs": 200.0, "n_epochs": 100.0, "n_epochs_decay": 100.0,
        },
    }

    def __init__(self, config: CycleGANConfig, data):
        super().__init__(config, data)
        self.pools = {"A": ImagePool(config.pool_size), "B": ImagePool(config.pool_size)}

    # -- networks and optimizers ---------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, channels = self.config, self.data.channels
        nets = {
            "G_AB": self.make_generator(),
            "G_BA": self.make_generator(),
            "D_A": NLayerDiscriminator(channels, c.ndf, c.n_layers_d),
            "D_B": NLayerDiscriminator(channels, c.ndf, c.n_layers_d),
        }
        multiple = size_multiple(nets["G_AB"])
        if self.data.size % multiple:
            raise UserError(
                f"the {c.generator} generator needs image sides divisible by {multiple}, "
                f"but size is {self.data.size}: choose a size that is a multiple of {multiple}"
            )
        for net in nets.values():
            init_weights(net, c.init_gain)
        return nets

    def make_generator(self) -> nn.Module:
        c, channels = self.config, self.data.channels
        if c.generator == "resnet":
            return ResnetGenerator(channels, channels, c.ngf, c.n_blocks)
        if c.generator == "unet":
            return UnetGenerator(channels, channels, c.num_downs, c.ngf)
        raise UserError(f"generator={c.generator!r} is unknown: use resnet or unet")

    def size_multiple(self, net: nn.Module) -> int:
        return size_multiple(net)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return reference_optimizers(self.config, self.data, {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")})

    # -- training: both generators, then both discriminators on the same fakes ------------------
    def phases(self) -> list[Phase]:
        return [
            Phase("G", "G", self.generator_loss, "generator"),
            Phase("D", "D", self.discriminator_loss, "discriminator"),
        ]

    def generator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        c = self.config
        g_ab, g_ba = nets["G_AB"], nets["G_BA"]
        real_a, real_b = batch.images, batch.images_b
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        ctx.cache["fakes"] = (fake_a.detach(), fake_b.detach())
        terms = {
            "adv_AB": ctx.generator_loss(nets["D_B"], fake_b),
            "adv_BA": ctx.generator_loss(nets["D_A"], fake_a),
            "cycle_A": F.l1_loss(g_ba(fake_b), real_a),
            "cycle_B": F.l1_loss(g_ab(fake_a), real_b),
        }
        loss = terms["adv_AB"] + terms["adv_BA"] + c.lambda_cycle * (terms["cycle_A"] + terms["cycle_B"])
        if c.lambda_identity > 0:
            terms["idt_A"] = F.l1_loss(g_ba(real_a), real_a)
            terms["idt_B"] = F.l1_loss(g_ab(real_b), real_b)
            loss = loss + c.lambda_identity * c.lambda_cycle * (terms["idt_A"] + terms["idt_B"])
        terms["loss"] = loss
        return terms

    def discriminator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        fakes = ctx.cache.get("fakes")
        if fakes is None:  # no G phase ran this step (d_steps > 1): make this step's fakes here
            with torch.no_grad():
                fakes = (nets["G_BA"](batch.images_b), nets["G_AB"](batch.images))
        fake_a, fake_b = fakes
        judged = {
            "A": ctx.discriminator_loss(nets["D_A"], batch.images, self.pools["A"].query(fake_a)),
            "B": ctx.discriminator_loss(nets["D_B"], batch.images_b, self.pools["B"].query(fake_b)),
        }
        terms = {f"{key}_{domain}": value for domain, d in judged.items() for key, value in d.items() if key != "loss"}
        terms["loss"] = 0.5 * (judged["A"]["loss"] + judged["B"]["loss"])
        return terms

    # -- state besides the networks: the history pools (the gallery is TranslationGAN's) -----------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update({f"pool_{d}": pool.state_dict() for d, pool in self.pools.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        for domain, pool in self.pools.items():
            if f"pool_{domain}" in state:
                pool.load_state_dict(state[f"pool_{domain}"])

    def preview(self, nets: Nets, *, examples: Batch, stage, generator: torch.Generator) -> Tensor:
        """One row per example: real A, A->B, A->B->A, real B, B->A, B->A->B."""
        from ganzoo.images import grid

        g_ab, g_ba = nets["G_AB"], nets["G_BA"]
        rows = min(4, len(examples))
        device = next(g_ab.parameters()).device
        real_a, real_b = examples.images[:rows].to(device), examples.images_b[:rows].to(device)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        columns = [real_a, fake_b, g_ba(fake_b), real_b, fake_a, g_ab(fake_a)]
        return grid(torch.stack(columns, dim=1).flatten(0, 1), nrow=len(columns))

    # -- generators trained with the reference implementation -----------------------------------
    def import_weights(self, path: str, options: Mapping[str, Any]) -> dict[str, nn.Module]:
        """A reference ``*_net_G_A.pth`` as ``direction`` (AtoB, default, or BtoA); option
        ``other=FILE`` adds the opposite generator (``*_net_G_B.pth``). Afterwards ``config`` and
        ``data`` describe the imported networks."""
        from .reference_weights import load_reference_generator

        direction = str(options.get("direction", "AtoB"))
        if direction not in DIRECTIONS:
            raise UserError(f"direction={direction!r} is unknown: use AtoB or BtoA")
        files = {direction: path}
        if options.get("other"):
            files[next(d for d in DIRECTIONS if d != direction)] = str(options["other"])
        imported, layouts = {}, {}
        for name, file in files.items():
            net, layouts[name] = load_reference_generator(file)
            if layouts[name]["input_nc"] != layouts[name]["output_nc"]:
                raise UserError(
                    f"{file} maps {layouts[name]['input_nc']} channels to {layouts[name]['output_nc']}; "
                    "ganzoo translates between domains with the same number of channels"
                )
            imported[DIRECTIONS[name]] = net
        if len({tuple(layout.values()) for layout in layouts.values()}) > 1:
            raise UserError(f"the two generators differ in layout ({layouts}): import them as two runs")
        layout = next(iter(layouts.values()))
        self.config = dataclasses.replace(
            self.config, generator="resnet", ngf=layout["ngf"], n_blocks=layout["n_blocks"]
        )
        self.data = dataclasses.replace(self.data, channels=layout["input_nc"])
        self.directions = tuple(d for d in DIRECTIONS if d in files)
        return imported

    # -- reporting -------------------------------------------------------------------------------
    def evaluate(self, nets, options: Mapping[str, Any]) -> dict[str, float]:
        """PSNR/SSIM against the answer key of the built-in digit-styles or digit-pairs (options
        ``seed``: the run's seed; ``direction``: the data's direction)."""
        from ganzoo_plugins import answer_keys

        if self.data.name == "digit-styles":
            return answer_keys.digit_styles_scores(nets["G_AB"], nets["G_BA"], self.data.size, int(options.get("seed", 0)))
        if self.data.name == "digit-pairs":
            translators = {direction: nets[role] for direction, role in DIRECTIONS.items()}
            return answer_keys.digit_pairs_scores(translators, self.data.size, str(options.get("direction", "AtoB")))
        return {}
