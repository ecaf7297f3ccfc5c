"""Import ResNet generators trained with junyanz/pytorch-CycleGAN-and-pix2pix (`*_net_G_A.pth`) or
with taesungp/contrastive-unpaired-translation (CUT's `*_net_G.pth`).

CUT's generator comes in four layouts (anti-aliased or strided downsampling, `--no_antialias`;
anti-aliased or transposed-convolution upsampling, `--no_antialias_up`); the last is CycleGAN's.
None of this is stored beside the weights, but it shows in the file: the blur filters are buffers
(`filt`), so a layer holding one is a blur layer, and the residual blocks' indices follow from the
layers before them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ganzoo.errors import UserError
from ganzoo_plugins.reference_state import check_layout, clean_state_dict, read_state_dict

from .networks import ResnetGenerator

EXPECTED = (
    "expected a generator state_dict (*_net_G_A.pth or *_net_G_B.pth) saved by "
    "pytorch-CycleGAN-and-pix2pix with --netG resnet_9blocks or resnet_6blocks"
)
# Instance norm has no running statistics; checkpoints from PyTorch < 0.4 still carry them and the
# reference drops them on load too.
JUNK_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
# pad, conv, norm, relu, then two downsamplings of (conv, norm, relu[, blur]) come before the blocks
FIRST_BLOCK_INDEX = {False: 10, True: 12}  # by whether downsampling is anti-aliased
# after the blocks: two upsamplings of ([blur,] conv, norm, relu), then pad and the output conv
OUTPUT_CONV_AFTER_BLOCKS = {False: 7, True: 9}  # by whether upsampling is anti-aliased
BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


def load_reference_generator(path: str | Path) -> tuple[ResnetGenerator, dict[str, int]]:
    """CycleGAN's generator from the file, loaded strictly.

    Returns the network and {"input_nc", "output_nc", "ngf", "n_blocks"}.
    """
    net, info = load_resnet_generator(path, ResnetGenerator, EXPECTED)
    antialiased = info.pop("antialias"), info.pop("antialias_up")
    if any(antialiased):
        raise UserError(f"{path} has CUT's anti-aliased resampling layers: import it with `ganzoo import cut`")
    return net, info


def load_resnet_generator(
    path: str | Path, generator: Callable[..., ResnetGenerator], expected: str
) -> tuple[ResnetGenerator, dict[str, Any]]:
    """Build a ``generator`` matching the file's tensor shapes, in any of the layouts, and load it
    strictly; ``expected`` ends every error message (what file the importer wants).

    Returns the network and {"input_nc", "output_nc", "ngf", "n_blocks", "antialias", "antialias_up"}.
    """
    path = Path(path)
    state = clean_state_dict(read_state_dict(path, expected), path, expected, drop=JUNK_SUFFIXES)
    info = infer_architecture(state, path, expected)
    net = generator(info["input_nc"], info["output_nc"], info["ngf"], info["n_blocks"],
                    info["antialias"], info["antialias_up"])
    check_layout(net.state_dict(), state, path, "a ResNet generator", expected)
    net.load_state_dict(state, strict=True)
    return net, info


def infer_architecture(state: Mapping[str, Tensor], path: Path, expected: str = EXPECTED) -> dict[str, Any]:
    if any(key.startswith("model.model.") for key in state):
        raise UserError(
            f"{path} is a U-Net generator (unet_128/unet_256), not ResNet: import it with `ganzoo import pix2pix`; "
            f"{expected}"
        )
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (7, 7):
        raise UserError(f"{path} has no 7x7 input convolution 'model.1.weight'; {expected}")
    ngf, input_nc = first.shape[0], first.shape[1]

    antialias = "model.7.filt" in state  # the first downsampling's blur
    start = FIRST_BLOCK_INDEX[antialias]
    block_indices = {int(match.group(1)) for key in state if (match := BLOCK_KEY.match(key))}
    n_blocks = len(block_indices)
    if block_indices != set(range(start, start + n_blocks)):
        positions = sorted(block_indices)
        raise UserError(f"{path} has residual blocks at odd positions {positions}; {expected}")

    antialias_up = f"model.{start + n_blocks}.filt" in state  # the first upsampling's blur
    last = state.get(f"model.{start + n_blocks + OUTPUT_CONV_AFTER_BLOCKS[antialias_up]}.weight")
    if last is None or last.dim() != 4:
        raise UserError(f"{path} has no output conv after {n_blocks} residual blocks; {expected}")
    return {
        "input_nc": int(input_nc),
        "output_nc": int(last.shape[0]),
        "ngf": int(ngf),
        "n_blocks": n_blocks,
        "antialias": antialias,
        "antialias_up": antialias_up,
    }
