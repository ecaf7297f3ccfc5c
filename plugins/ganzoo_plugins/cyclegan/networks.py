"""CycleGAN and pix2pix networks, layer for layer as in junyanz/pytorch-CycleGAN-and-pix2pix.

Module order and nesting match the reference exactly, so its saved state_dicts load here with
`strict=True` (e.g. `model.10.conv_block.1.weight` is the first conv of the first residual block).
Normalisation is the reference's ``--norm``: "instance" (CycleGAN's default) is InstanceNorm2d
without affine parameters or running statistics; "batch" (pix2pix's default) is BatchNorm2d with
both. As in the reference, a conv followed by batch norm has no bias (the norm's shift replaces
it), and one followed by instance norm keeps it.

The ResNet generator and the PatchGAN also take the anti-aliased resampling that CUT's reference
(taesungp/contrastive-unpaired-translation) uses by default, again module for module, so that one
set of networks serves both plugins and both references' files load.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_DOWNSAMPLING = 2  # the reference ResNet generator always halves the resolution twice
UNET_MIN_DOWNS = 5  # the reference U-Net always has an outermost block and four fixed-width levels
DROPOUT = 0.5  # the reference's ``use_dropout``: after the U-Net's innermost full-width levels

Norm = Literal["instance", "batch"]


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "instance":
        return instance_norm(channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    raise ValueError(f"norm must be instance or batch, got {norm!r}")


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convs with a residual connection."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            instance_norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            instance_norm(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def binomial_filter(size: int) -> Tensor:
    """The size x size blur of Zhang (2019): a row of Pascal's triangle times itself, summing to 1."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class Downsample(nn.Module):
    """Anti-aliased halving (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019):
    blur with a 3x3 binomial filter, then keep every second pixel.

    The filter is a buffer, as in CUT's reference, so its files carry it (``model.7.filt``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=self.filt.shape[0])


class Upsample(nn.Module):
    """Anti-aliased doubling: a transposed convolution with a fixed 4x4 binomial filter (gain 4, so a
    flat image stays flat) on an edge-padded input, cropped to exactly twice the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        doubled = F.conv_transpose2d(padded, self.filt, stride=2, padding=2, groups=self.filt.shape[0])
        return doubled[:, :, 1:-1, 1:-1]


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two downsamplings, `n_blocks` residual blocks, two upsamplings, c7s1.

    Down- and upsampling are stride-2 (transposed) convolutions, CycleGAN's layers. With
    ``antialias`` each downsampling is a stride-1 conv, norm, ReLU and a ``Downsample``; with
    ``antialias_up`` each upsampling is an ``Upsample`` followed by a stride-1 conv, norm, ReLU:
    CUT's defaults, which its reference turns off with --no_antialias and --no_antialias_up.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9,
                 antialias: bool = False, antialias_up: bool = False):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.input_nc, self.output_nc, self.ngf, self.n_blocks = input_nc, output_nc, ngf, n_blocks
        self.antialias, self.antialias_up = antialias, antialias_up
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
            instance_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(N_DOWNSAMPLING):
            channels = ngf * 2**i
            if antialias:
                layers += [
                    nn.Conv2d(channels, channels * 2, kernel_size=3, stride=1, padding=1),
                    instance_norm(channels * 2),
                    nn.ReLU(True),
                    Downsample(channels * 2),
                ]
            else:
                layers += [
                    nn.Conv2d(channels, channels * 2, kernel_size=3, stride=2, padding=1),
                    instance_norm(channels * 2),
                    nn.ReLU(True),
                ]
        layers += [ResnetBlock(ngf * 2**N_DOWNSAMPLING) for _ in range(n_blocks)]
        self.encoder_length = len(layers)  # the layers before the first upsampling
        for i in range(N_DOWNSAMPLING):
            channels = ngf * 2 ** (N_DOWNSAMPLING - i)
            if antialias_up:
                layers += [
                    Upsample(channels),
                    nn.Conv2d(channels, channels // 2, kernel_size=3, stride=1, padding=1),
                    instance_norm(channels // 2),
                    nn.ReLU(True),
                ]
            else:
                layers += [
                    nn.ConvTranspose2d(
                        channels, channels // 2, kernel_size=3, stride=2, padding=1, output_padding=1
                    ),
                    instance_norm(channels // 2),
                    nn.ReLU(True),
                ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, inner levels, up; concatenated with its input unless outermost.

    ``dropout`` (the reference's ``use_dropout``) follows the up path of a middle level.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: Norm = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        bias = norm == "instance"  # the reference decides for every conv of the block, the outermost's too
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            # No norm on the 1x1 bottleneck: the norm of a single pixel is undefined.
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            down = [downrelu, downconv, norm_layer(norm, inner_nc)]
            up = [uprelu, upconv, norm_layer(norm, outer_nc)]
            layers = down + [submodule] + up + ([nn.Dropout(DROPOUT)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net whose bottleneck is 1x1 for inputs of size 2**num_downs (unet_128: 7, unet_256: 8).

    Levels halve the resolution with 4x4 stride-2 convs (64, 128, 256, then 512 channels for ngf 64)
    and double it back with transposed convs; every level but the outermost concatenates its input
    to its output (the skip connections). ``dropout`` applies to the full-width middle levels.
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64, norm: Norm = "instance",
                 dropout: bool = False):
        super().__init__()
        if num_downs < UNET_MIN_DOWNS:
            raise ValueError(f"num_downs must be >= {UNET_MIN_DOWNS}, got {num_downs}")
        self.input_nc, self.output_nc = input_nc, output_nc
        self.ngf, self.num_downs = ngf, num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - UNET_MIN_DOWNS):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: with n_layers=3 each output logit sees a 70x70 input patch.

    With ``antialias`` (CUT's default) each stride-2 conv becomes a stride-1 conv followed, after
    its activation, by a ``Downsample``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance",
                 antialias: bool = False):
        super().__init__()
        stride = 1 if antialias else 2
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=stride, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        layers += [Downsample(ndf)] if antialias else []
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            layers += [Downsample(ndf * mult)] if antialias else []
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
            norm_layer(norm, ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02, kind: str = "normal") -> nn.Module:
    """The references' inits, biases 0: "normal" (CycleGAN's and pix2pix's) draws conv/linear weights
    from N(0, gain); "xavier" (CUT's) from Glorot's normal scaled by ``gain``. Batch-norm scales
    ~ N(1, gain), shifts 0."""
    if kind not in ("normal", "xavier"):
        raise ValueError(f"init kind must be normal or xavier, got {kind!r}")
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(module.weight, 0.0, gain)
            else:
                nn.init.xavier_normal_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def size_multiple(net: nn.Module) -> int:
    """What input height and width must be divisible by for the output to match the input size."""
    if isinstance(net, ResnetGenerator):
        return 2**N_DOWNSAMPLING
    if isinstance(net, UnetGenerator):
        return 2**net.num_downs
    raise TypeError(f"size_multiple knows the CycleGAN generators, not {type(net).__name__}")


class ImagePool:
    """History of generated images fed to the discriminators (Shrivastava et al. 2017).

    Until the pool is full every image is stored and returned as is; afterwards each image is,
    with probability 1/2, swapped for a random stored one (which is returned instead).
    Randomness comes from torch's global RNG so that restoring the RNG state and `load_state_dict`
    reproduces a run exactly.
    """

    def __init__(self, pool_size: int = 50):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.pool_size == 0:
            return images
        returned = []
        for image in images.detach():
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand(()).item() > 0.5:
                index = int(torch.randint(self.pool_size, ()).item())
                returned.append(self.images[index].to(image.device))
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.stack(returned)

    def state_dict(self) -> dict[str, Tensor]:
        if self.images:
            stored = torch.stack([image.cpu() for image in self.images])
        else:
            stored = torch.empty(0)
        return {"pool_size": torch.tensor(self.pool_size), "images": stored}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pool_size, images = int(state["pool_size"]), state["images"]
        if pool_size != self.pool_size:
            raise ValueError(f"pool state has pool_size {pool_size}, this pool {self.pool_size}")
        if len(images) > pool_size:
            raise ValueError(f"pool state holds {len(images)} images, over pool_size {pool_size}")
        self.images = [image.clone() for image in images]
