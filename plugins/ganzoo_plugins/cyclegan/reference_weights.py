"""Import generators trained with junyanz/pytorch-CycleGAN-and-pix2pix (`*_net_G_A.pth`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

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
FIRST_BLOCK_INDEX = 10  # pad, conv, norm, relu + two (conv, norm, relu) downsamplings come first
BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


def load_reference_generator(path: str | Path) -> tuple[ResnetGenerator, dict[str, int]]:
    """Build a ResnetGenerator matching the file's tensor shapes and load it strictly.

    Returns the network and {"input_nc", "output_nc", "ngf", "n_blocks"}.
    """
    path = Path(path)
    state = clean_state_dict(read_state_dict(path, EXPECTED), path, EXPECTED, drop=JUNK_SUFFIXES)
    info = infer_architecture(state, path)
    net = ResnetGenerator(info["input_nc"], info["output_nc"], info["ngf"], info["n_blocks"])
    check_layout(net.state_dict(), state, path, "a ResNet generator", EXPECTED)
    net.load_state_dict(state, strict=True)
    return net, info


def infer_architecture(state: Mapping[str, Tensor], path: Path) -> dict[str, int]:
    if any(key.startswith("model.model.") for key in state):
        raise UserError(
            f"{path} is a U-Net generator (unet_128/unet_256), not ResNet: import it with `ganzoo import pix2pix`; "
            f"cyclegan {EXPECTED}"
        )
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (7, 7):
        raise UserError(f"{path} has no 7x7 input convolution 'model.1.weight'; {EXPECTED}")
    ngf, input_nc = first.shape[0], first.shape[1]

    block_indices = {int(match.group(1)) for key in state if (match := BLOCK_KEY.match(key))}
    n_blocks = len(block_indices)
    if block_indices != set(range(FIRST_BLOCK_INDEX, FIRST_BLOCK_INDEX + n_blocks)):
        positions = sorted(block_indices)
        raise UserError(f"{path} has residual blocks at odd positions {positions}; {EXPECTED}")

    # After the blocks: two (convT, norm, relu) upsamplings, then pad and the output conv.
    last = state.get(f"model.{FIRST_BLOCK_INDEX + n_blocks + 7}.weight")
    if last is None or last.dim() != 4:
        raise UserError(f"{path} has no output conv after {n_blocks} residual blocks; {EXPECTED}")
    return {
        "input_nc": int(input_nc),
        "output_nc": int(last.shape[0]),
        "ngf": int(ngf),
        "n_blocks": n_blocks,
    }
