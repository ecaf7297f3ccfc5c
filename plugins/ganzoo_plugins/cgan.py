"""Conditional GAN — Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014; with the
projection discriminator of Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018, and
the auxiliary classifier of Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary
Classifier GANs", ICML 2017.

Both networks are given the class label y, so G learns p(x | y) and a user can ask for a class.
How D uses y (``conditioning``):
- ``projection`` (default): D(x, y) = head(phi(x)) + <embed(y), sum_pixels phi(x)>; the label
  enters as an inner product with D's last feature map, the form implied by a log-likelihood ratio.
- ``concat``: the original paper's form; a label embedding is broadcast to planes and joined to D's
  input image.
- ``acgan``: D's real/fake head sees only the image.
An auxiliary class head on D's features (ACGAN) is trained on real and fake images, and G is also
scored by it, with weight ``aux_weight``: the only class signal for ``acgan``, and by default also
on the projection D, where it makes G follow the label in far fewer steps (docs/benchmarks.md);
``aux_weight=0`` gives the pure projection D. The concat D has none: it sees the label.
How G uses y (``generator_conditioning``): ``concat`` — a label embedding joined to z, as in the
paper; ``batchnorm`` — conditional batch norm, a per-class scale and shift after every
normalisation (de Vries et al. 2017, as Miyato & Koyama do); or ``both``.
``diversity_weight`` adds the mode-seeking term of Mao et al. (2019) against intra-class collapse.
Networks otherwise follow the DCGAN rules (see ``ganzoo_plugins.dcgan``), whose blocks are reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.config import setting
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, Batch, ExportSpec, LatentGAN
from ganzoo_plugins.dcgan import Discriminator, Generator, blocks_for, dcgan_init


@dataclass
class CGANConfig:
    latent_dim: int = setting(100, ge=1)
    ngf: int = setting(64, ge=1)  # G's width at the last hidden layer; doubles per block towards z
    ndf: int = setting(64, ge=1)  # D's width at the first layer; doubles per block
    conditioning: Literal["projection", "concat", "acgan"] = "projection"  # how D uses the label
    generator_conditioning: Literal["concat", "batchnorm", "both"] = "concat"  # how G uses it
    embed_dim: int = setting(32, ge=1)  # label embedding size of the concatenation forms
    aux_weight: float | None = setting(None, ge=0)  # auxiliary class head's loss weight; None: 1, or 0 for concat
    aux_fakes: bool = False  # D's class head also learns from fakes (the ACGAN paper; slower here, see docs)
    diversity_weight: float = setting(0.1, ge=0)  # mode-seeking term against one image per class (0: off)
    lr: float = setting(2e-4, gt=0)
    beta1: float = setting(0.5, ge=0, lt=1)
    beta2: float = setting(0.999, ge=0, lt=1)


# -- generators: (z, y) -> image ---------------------------------------------------------------
class ConcatGenerator(nn.Module):
    """The paper's G: [z, embed(y)] through the DCGAN generator."""

    def __init__(self, latent_dim: int, channels: int, size: int, ngf: int, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = Generator(latent_dim, channels, size, ngf, in_features=latent_dim + embed_dim)
        dcgan_init(self.body)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.body(torch.cat([z, self.embed(y)], dim=1))


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class instead of shared."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.scale = nn.Embedding(num_classes, features)
        self.shift = nn.Embedding(num_classes, features)
        nn.init.normal_(self.scale.weight, 1.0, 0.02)  # DCGAN rule 5, per class
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.norm(x) * self.scale(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


class ConditionalBatchNormGenerator(nn.Module):
    """The DCGAN generator with every batch norm made class-conditional; with ``embed_dim`` > 0
    a label embedding is also joined to z."""

    def __init__(self, latent_dim: int, channels: int, size: int, ngf: int, num_classes: int, embed_dim: int = 0):
        super().__init__()
        n = blocks_for(size)
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim else None
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(latent_dim + embed_dim, widths[0], 4, 1, 0, bias=False)]  # 1x1 -> 4x4
            + [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False) for w_in, w_out in zip(widths, widths[1:])]
        )
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(w, num_classes) for w in widths])
        self.to_image = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False)
        dcgan_init(self.ups)
        dcgan_init(self.to_image)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        x = z[:, :, None, None]
        for up, norm in zip(self.ups, self.norms):
            x = F.relu(norm(up(x), y))
        return torch.tanh(self.to_image(x))


# -- discriminators: (x, y) -> one logit per image ---------------------------------------------
def class_head(features: int, num_classes: int) -> nn.Conv2d:
    """ACGAN's auxiliary classifier: a 4x4 convolution from D's last feature map to class logits."""
    head = nn.Conv2d(features, num_classes, 4, 1, 0, bias=False)
    dcgan_init(head)
    return head


class ProjectionDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int, ndf: int, num_classes: int, classifier: bool = False):
        super().__init__()
        self.body = Discriminator(channels, size, ndf)
        self.embed = nn.Embedding(num_classes, self.body.feature_channels)
        self.classifier = class_head(self.body.feature_channels, num_classes) if classifier else None
        dcgan_init(self.body)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor, class_logits: bool = False) -> Tensor:
        """Real/fake logits; with ``class_logits``, the class head's logits instead (y unused)."""
        h = self.body.features(x)
        if class_logits:
            return self.classifier(h).flatten(1)
        return self.body.head(h).flatten() + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)


class ConcatDiscriminator(nn.Module):
    """The paper's D: the label, as embedding planes, joined to the input image."""

    def __init__(self, channels: int, size: int, ndf: int, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = Discriminator(channels + embed_dim, size, ndf)
        dcgan_init(self.body)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        planes = self.embed(y)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.body(torch.cat([x, planes.to(x.dtype)], dim=1))


class AuxClassifierDiscriminator(nn.Module):
    """ACGAN's D: an unconditional real/fake head plus a class head on the same features."""

    def __init__(self, channels: int, size: int, ndf: int, num_classes: int):
        super().__init__()
        self.body = Discriminator(channels, size, ndf)
        self.classifier = class_head(self.body.feature_channels, num_classes)
        dcgan_init(self.body)

    def forward(self, x: Tensor, y: Tensor, class_logits: bool = False) -> Tensor:
        """Real/fake logits; with ``class_logits``, the class head's logits instead (y unused)."""
        h = self.body.features(x)
        return self.classifier(h).flatten(1) if class_logits else self.body.head(h).flatten()


def paired_labels(y: Tensor) -> Tensor:
    """The first half's labels twice (an odd last one kept): image i and i + n//2 share a class."""
    half = len(y) // 2
    return torch.cat([y[:half], y[:half], y[2 * half :]])


def diversity_ratio(fake: Tensor, z: Tensor) -> Tensor:
    """Mode seeking (Mao et al. 2019): how far apart two images of one class are, per unit of
    distance between their latents. G is penalised by 1 / ratio, so it cannot map every z of a
    class to one image (which it did on the digits without this term)."""
    half = len(z) // 2
    image_distance = (fake[:half] - fake[half : 2 * half]).abs().mean()
    return image_distance / (z[:half] - z[half : 2 * half]).abs().mean()


class ConditionalGAN(LatentGAN):
    name = "cgan"
    description = "Conditional GAN (Mirza & Osindero 2014): class-conditional generation, projection D by default"
    version = "1.0.0"
    Config = CGANConfig
    accepts = Accepts("images", labels=True)
    presets: Mapping[str, Mapping[str, Any]] = {
        # Tuned on the built-in digits for a few CPU minutes (see docs/benchmarks.md); channels-last
        # convolutions run these layers about 1.15x faster on the CPU.
        "digits": {
            "ngf": 32, "ndf": 32, "aux_weight": 2.0, "steps": 1200, "batch_size": 64, "size": 32, "ema_half_life": 5000,
            "channels_last": True,
        },
        "paper": {"ngf": 64, "ndf": 64, "batch_size": 128, "size": 64},
        "tiny": {"ngf": 8, "ndf": 8, "latent_dim": 16, "embed_dim": 4, "size": 16, "batch_size": 8},
    }
    default_preset = "digits"

    def __init__(self, config: CGANConfig, data):
        super().__init__(config, data)
        if config.conditioning == "acgan" and config.aux_weight == 0:
            raise UserError("conditioning=acgan needs aux_weight > 0: its classifier is how G learns the label")
        if config.conditioning == "concat" and config.aux_weight:
            raise UserError("conditioning=concat has no class head (its D sees the label): leave aux_weight unset or 0")

    @property
    def aux_weight(self) -> float:
        """Weight of the auxiliary classification loss; 0 when D has no class head."""
        if self.config.aux_weight is None:
            return 0.0 if self.config.conditioning == "concat" else 1.0
        return self.config.aux_weight

    # -- networks ------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, d, k = self.config, self.data, self.data.num_classes
        form = c.generator_conditioning
        if form in ("batchnorm", "both"):
            g = ConditionalBatchNormGenerator(c.latent_dim, d.channels, d.size, c.ngf, k, c.embed_dim if form == "both" else 0)
        else:
            g = ConcatGenerator(c.latent_dim, d.channels, d.size, c.ngf, k, c.embed_dim)
        discriminators = {
            "projection": lambda: ProjectionDiscriminator(d.channels, d.size, c.ndf, k, classifier=self.aux_weight > 0),
            "concat": lambda: ConcatDiscriminator(d.channels, d.size, c.ndf, k, c.embed_dim),
            "acgan": lambda: AuxClassifierDiscriminator(d.channels, d.size, c.ndf, k),
        }
        return {"G": g, "D": discriminators[c.conditioning]()}

    # -- losses: fakes are drawn for the real batch's labels, so one D closure serves both ---------
    def discriminator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        y = batch.labels
        fake = self.fake(nets, batch, ctx)
        terms = ctx.discriminator_loss(self.discriminator(nets, y, ctx.stage), batch.images, fake)
        if self.aux_weight:
            shown = torch.cat([batch.images, fake.detach()]) if self.config.aux_fakes else batch.images
            logits = nets["D"](shown, None, class_logits=True)
            terms["d_class"] = F.cross_entropy(logits, y.repeat(len(shown) // len(y)))
            terms["loss"] = terms["loss"] + self.aux_weight * terms["d_class"]
        return terms

    def generator_loss(self, nets, batch: Batch, ctx) -> dict[str, Tensor]:
        y = paired_labels(batch.labels) if self.config.diversity_weight else batch.labels
        z = self.latents(len(batch), ctx.device)
        fake = self.generate(nets, z, y, ctx.stage)
        terms = {"g_adv": ctx.generator_loss(self.discriminator(nets, y, ctx.stage), fake)}
        terms["loss"] = terms["g_adv"]
        if self.config.diversity_weight:
            terms["g_diversity"] = diversity_ratio(fake, z)
            terms["loss"] = terms["loss"] + self.config.diversity_weight / (terms["g_diversity"] + 1e-5)
        if self.aux_weight:
            terms["g_class"] = F.cross_entropy(nets["D"](fake, None, class_logits=True), y)
            terms["loss"] = terms["loss"] + self.aux_weight * terms["g_class"]
        return terms

    def exports(self, nets, options: Mapping[str, Any]) -> list[ExportSpec]:
        self.requested_class(options)
        return [self.generator_export(nets, metadata={"conditioning": self.config.conditioning})]
