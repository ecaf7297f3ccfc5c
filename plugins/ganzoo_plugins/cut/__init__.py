"""CUT and FastCUT — Park, Efros, Zhang & Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020.

One translator G: A -> B and one discriminator D (real B vs. G(a)). Instead of CycleGAN's second
generator and cycle, a patchwise contrastive loss keeps the content: each patch of G(a) must be
recognisable, in G's own encoder features, as the patch of ``a`` at the same place rather than
any other patch of ``a``. The recipe is the one of the authors' reference implementation
(taesungp/contrastive-unpaired-translation, models/cut_model.py):
1. G: CycleGAN's ResNet generator with anti-aliased down- and upsampling (blur-pool; plain strided
   convolutions with ``antialias=false``, ``antialias_up=false``), 9 blocks, instance norm;
   D: the 70x70 PatchGAN, anti-aliased the same way; LSGAN loss;
2. PatchNCE: the features of G's encoder at ``nce_layers`` (0, 4, 8, 12, 16: the padded image, the
   first and second downsampling convolutions, the first and fifth residual blocks) are sampled at
   ``num_patches`` = 256 random locations per layer, the same for the input a and the output G(a),
   passed through a two-layer MLP head per layer (F, 256 units) and scaled to unit length; each
   output patch is then classified against the input patches at temperature ``nce_t`` = 0.07
   (patchnce.py); the loss is averaged over patches and layers, weighted ``lambda_nce``;
3. CUT: ``lambda_nce`` = 1 plus the identity term, the same loss between b and G(b) (the two averaged),
   which keeps G from changing what is already B; FastCUT: ``lambda_nce`` = 10, no identity term,
   and flip-equivariance: with probability 1/2 the inputs are mirrored before G and the output's
   features mirrored back before they are compared, so G cannot rely on where a patch is;
4. one step, as the reference orders it: G translates (a and, with the identity term, b, in one
   batch); D learns from that translation (its loss halved); then G and F learn against the updated
   D, through the same translation;
5. Adam(2e-4, 0.5, 0.999) for G and F together (the reference's two optimizers with one setting)
   and for D, constant for ``n_epochs`` then linearly to zero over ``n_epochs_decay``
   (CUT 200 + 200, FastCUT 150 + 50); an epoch is max(|A|, |B|) images;
6. weights from Xavier's normal init with gain 0.02, F's heads included; batch size 1; random
   crops (286 -> 256) and flips.
F is a role built with G from the widths of G's encoder (the reference builds it at the first
batch), so checkpoints hold it and resuming is exact. Sampling, previews and the export of the one
translator come from ``TranslationGAN``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, Batch, Nets, OptimizerSpec, Phase, TranslationGAN
from ganzoo_plugins.cyclegan import CycleGAN
from ganzoo_plugins.cyclegan.networks import NLayerDiscriminator, init_weights, size_multiple
from ganzoo_plugins.cyclegan.schedule import epoch_decay

from .networks import FeatureResnetGenerator, PatchSampler, feature_widths
from .patchnce import patch_nce_loss


@dataclass
class CUTConfig:
    ngf: int = setting(64, ge=1)  # generator width after the first layer
    ndf: int = setting(64, ge=1)  # discriminator width after the first layer
    n_blocks: int = setting(9, ge=0)  # residual blocks of the generator
    n_layers_d: int = setting(3, ge=1)  # PatchGAN depth: 3 gives 70x70 patches
    antialias: bool = True  # blur-pool downsampling in G and D; false: stride-2 convolutions
    antialias_up: bool = True  # blur upsampling then a conv in G; false: transposed convolutions
    lambda_gan: float = setting(1.0, ge=0)  # weight of G's adversarial loss
    lambda_nce: float = setting(1.0, ge=0)  # weight of PatchNCE; 0 is off (and F is not built)
    nce_idt: bool = True  # also PatchNCE between b and G(b) (CUT; FastCUT: off)
    nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16)  # indices into G's layers whose outputs PatchNCE uses
    nce_t: float = setting(0.07, gt=0)  # temperature of PatchNCE
    num_patches: int = setting(256, ge=1)  # locations sampled per layer
    netf_nc: int = setting(256, ge=1)  # units of F's MLP heads
    flip_equivariance: bool = False  # mirror half the steps' inputs and compare features mirrored back (FastCUT)
    lr: float = setting(2e-4, gt=0)
    beta1: float = setting(0.5, ge=0, lt=1)
    beta2: float = setting(0.999, ge=0, lt=1)
    n_epochs: float = setting(200.0, ge=0)  # epochs at the initial learning rate
    n_epochs_decay: float = setting(200.0, ge=0)  # epochs of linear decay to zero that follow
    init_gain: float = setting(0.02, gt=0)  # gain of the Xavier normal init


class Translation(NamedTuple):
    """One step's output of G, shared by the D and G phases (``ctx.cache``)."""

    fake_b: Tensor  # G(a)
    idt_b: Tensor | None  # G(b), with the identity term
    flipped: bool  # inputs were mirrored (flip-equivariance)


# The method's settings for each preset; the data and schedule come on top.
CUT = {"lambda_nce": 1.0, "nce_idt": True, "flip_equivariance": False}
FASTCUT = {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True}
# The built-in digit-styles in a few CPU minutes: one epoch at 32 px (figures in docs/benchmarks.md).
# No flips: B's diagonal background stripes would then run both ways.
DIGIT_STYLES = {
    "dataset": "digit-styles", "size": 32, "ngf": 16, "ndf": 16, "n_blocks": 5, "netf_nc": 64,
    "batch_size": 4, "hflip": False, "steps": 600, "n_epochs": 0.5, "n_epochs_decay": 0.5,
}
# Your own folders on a CPU: 143 -> 128 px random crops, 6 blocks, narrower networks.
CPU = {"size": 128, "load_size": 143, "ngf": 32, "ndf": 32, "n_blocks": 6, "netf_nc": 128}
PAPER = {"size": 256, "load_size": 286, "ngf": 64, "ndf": 64, "n_blocks": 9, "batch_size": 1, "netf_nc": 256}
# What `ganzoo import cut` reads.
REFERENCE_FILE = (
    "expected a generator state_dict (latest_net_G.pth) saved by contrastive-unpaired-translation "
    "with --netG resnet_9blocks, resnet_6blocks or resnet_4blocks (instance norm, no dropout)"
)


class CUTModel(TranslationGAN):
    name = "cut"
    description = "CUT / FastCUT (Park et al. 2020): unpaired translation with one generator and PatchNCE"
    version = "1.0.0"
    Config = CUTConfig
    accepts = Accepts("unpaired")
    translators = {"AtoB": "G"}
    generators = ("G",)
    discriminators = ("D",)
    # CUT's reference trains as CycleGAN's does: LSGAN, flips, batch 1, no weight averaging.
    train_defaults = CycleGAN.train_defaults
    presets: Mapping[str, Mapping[str, Any]] = {
        # For tests: a few seconds on a CPU.
        "tiny": {"ngf": 4, "ndf": 4, "n_blocks": 5, "n_layers_d": 2, "num_patches": 16, "netf_nc": 8,
                 "size": 16, "batch_size": 2},
        "digit-styles": {**DIGIT_STYLES, **CUT},
        "digit-styles-fastcut": {**DIGIT_STYLES, **FASTCUT},
        "cpu": {**CPU, **CUT, "epochs": 20.0, "n_epochs": 10.0, "n_epochs_decay": 10.0},
        "cpu-fastcut": {**CPU, **FASTCUT, "epochs": 20.0, "n_epochs": 15.0, "n_epochs_decay": 5.0},
        # Park et al. 2020 on a GPU: 286 -> 256 px crops, 9 blocks; CUT 200 + 200 epochs, FastCUT 150 + 50.
        "cut": {**PAPER, **CUT, "epochs": 400.0, "n_epochs": 200.0, "n_epochs_decay": 200.0},
        "fastcut": {**PAPER, **FASTCUT, "epochs": 200.0, "n_epochs": 150.0, "n_epochs_decay": 50.0},
    }

    # -- networks and optimizers ---------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, channels = self.config, self.data.channels
        g = FeatureResnetGenerator(channels, channels, c.ngf, c.n_blocks, c.antialias, c.antialias_up)
        multiple = size_multiple(g)
        if self.data.size % multiple:
            raise UserError(
                f"the generator needs image sides divisible by {multiple}, but size is {self.data.size}: "
                f"choose a size that is a multiple of {multiple}"
            )
        nets = {"G": g, "D": NLayerDiscriminator(channels, c.ndf, c.n_layers_d, antialias=c.antialias)}
        if c.lambda_nce > 0:
            self.check_nce_layers(g)
            nets["F"] = PatchSampler(feature_widths(g, c.nce_layers, 4 * multiple), c.netf_nc)
        for net in nets.values():
            init_weights(net, c.init_gain, kind="xavier")
        return nets

    def check_nce_layers(self, g: FeatureResnetGenerator) -> None:
        layers, encoder = self.config.nce_layers, g.encoder_length
        if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0 or layers[-1] >= encoder:
            raise UserError(
                f"nce_layers={','.join(map(str, layers))} must be increasing indices of the encoder's layers, "
                f"0 to {encoder - 1} with n_blocks={self.config.n_blocks}: lower them or add blocks"
            )

    def size_multiple(self, net: nn.Module) -> int:
        return size_multiple(net)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        c = self.config
        schedule = epoch_decay(c.n_epochs, c.n_epochs_decay, self.data)
        betas = (c.beta1, c.beta2)
        generator_roles = ("G", "F") if c.lambda_nce > 0 else ("G",)
        return {
            "G": OptimizerSpec(generator_roles, c.lr, betas, lr_lambda=schedule),
            "D": OptimizerSpec(("D",), c.lr, betas, lr_lambda=schedule),
        }

    # -- training: G translates once; D learns from it, then G and F ------------------------------
    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", self.discriminator_loss, "discriminator", keep_graph=("G",)),
            Phase("G", "G", self.generator_loss, "generator"),
        ]

    def translation(self, nets: Nets, batch: Batch, ctx) -> Translation:
        """This step's translation, made by the first phase that asks: the D phase, which keeps
        G's graph (``keep_graph``) for the G phase to train through."""
        if "translation" not in ctx.cache:
            ctx.cache["translation"] = self.translate_batch(nets["G"], batch)
        return ctx.cache["translation"]

    def translate_batch(self, g: nn.Module, batch: Batch) -> Translation:
        # torch's global generator draws the flip: the engine checkpoints it, so resumes flip alike.
        flipped = self.config.flip_equivariance and bool(torch.rand(()) < 0.5)
        real = torch.cat([batch.images, batch.images_b]) if self.config.nce_idt else batch.images
        fake = g(real.flip(3) if flipped else real)
        n = len(batch.images)
        return Translation(fake[:n], fake[n:] if self.config.nce_idt else None, flipped)

    def discriminator_loss(self, nets: Nets, batch: Batch, ctx) -> dict[str, Tensor]:
        fake_b = self.translation(nets, batch, ctx).fake_b
        terms = ctx.discriminator_loss(nets["D"], batch.images_b, fake_b)
        terms["loss"] = 0.5 * terms["loss"]
        return terms

    def generator_loss(self, nets: Nets, batch: Batch, ctx) -> dict[str, Tensor]:
        c = self.config
        t = self.translation(nets, batch, ctx)
        if not t.fake_b.requires_grad:
            raise RuntimeError("the translation reached the G phase without G's graph: the engine must honour Phase.keep_graph")
        terms: dict[str, Tensor] = {}
        loss = t.fake_b.new_zeros(())
        if c.lambda_gan > 0:
            terms["adv"] = ctx.generator_loss(nets["D"], t.fake_b)
            loss = loss + c.lambda_gan * terms["adv"]
        if c.lambda_nce > 0:
            terms["nce"] = self.patch_nce(nets, batch.images, t.fake_b, t.flipped)
            nce = terms["nce"]
            if c.nce_idt:
                terms["nce_idt"] = self.patch_nce(nets, batch.images_b, t.idt_b, t.flipped)
                nce = 0.5 * (nce + terms["nce_idt"])
            loss = loss + c.lambda_nce * nce
        terms["loss"] = loss
        return terms

    def patch_nce(self, nets: Nets, source: Tensor, translated: Tensor, flipped: bool) -> Tensor:
        """PatchNCE between an input and its translation, averaged over patches and layers."""
        c = self.config
        g, f = nets["G"], nets["F"]
        queries = g(translated, nce_layers=c.nce_layers)
        if flipped:  # G saw the mirrored input: mirror its features back to the input's places
            queries = [feat.flip(3) for feat in queries]
        # Keys carry no gradient (the reference detaches them in the loss): no graph for them.
        with torch.no_grad():
            keys, locations = f(g(source, nce_layers=c.nce_layers), c.num_patches)
        queries, _ = f(queries, c.num_patches, locations)
        losses = [patch_nce_loss(q, k, c.nce_t).mean() for q, k in zip(queries, keys)]
        return torch.stack(losses).mean()

    # -- generators trained with the reference implementation -----------------------------------
    def import_weights(self, path: str, options: Mapping[str, Any]) -> dict[str, nn.Module]:
        """A reference ``latest_net_G.pth`` (A -> B), any of its generator layouts. Afterwards
        ``config`` and ``data`` describe the imported network."""
        from ganzoo_plugins.cyclegan.reference_weights import load_resnet_generator

        if options:
            raise UserError(f"cut's import takes no options, got {', '.join(sorted(options))}")
        net, layout = load_resnet_generator(path, FeatureResnetGenerator, REFERENCE_FILE)
        if layout["input_nc"] != layout["output_nc"]:
            raise UserError(
                f"{path} maps {layout['input_nc']} channels to {layout['output_nc']}; "
                "ganzoo translates between domains with the same number of channels"
            )
        self.config = dataclasses.replace(
            self.config, ngf=layout["ngf"], n_blocks=layout["n_blocks"],
            antialias=layout["antialias"], antialias_up=layout["antialias_up"],
        )
        self.data = dataclasses.replace(self.data, channels=layout["input_nc"])
        if self.config.lambda_nce > 0 and self.config.nce_layers[-1] >= net.encoder_length:
            # F is only needed to keep training; fit its layers to a shallower imported encoder.
            kept = tuple(i for i in self.config.nce_layers if i < net.encoder_length)
            self.config = dataclasses.replace(self.config, nce_layers=kept)
        return {"G": net}

    # -- reporting -------------------------------------------------------------------------------
    def evaluate(self, nets, options: Mapping[str, Any]) -> dict[str, float]:
        """PSNR/SSIM of A -> B against the answer key of the built-in digit-styles or digit-pairs
        (options ``seed``: the run's seed; ``direction``: the data's direction)."""
        from ganzoo_plugins import answer_keys

        if self.data.name == "digit-styles":
            return answer_keys.digit_styles_scores(nets["G"], None, self.data.size, int(options.get("seed", 0)))
        if self.data.name == "digit-pairs":
            return answer_keys.digit_pairs_scores({"AtoB": nets["G"]}, self.data.size, str(options.get("direction", "AtoB")))
        return {}
