"""Import U-Net generators trained with junyanz/pytorch-CycleGAN-and-pix2pix (`latest_net_G.pth`).

The file says everything but dropout: widths and channels from tensor shapes, the number of levels
from how deeply the blocks nest (``model.model.1.model.3...``), the norm from the first conv's bias
(the reference gives convs a bias only under instance norm). Dropout has no weights and does
nothing in eval mode, so a file loads the same with or without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ganzoo.errors import UserError
from ganzoo_plugins.cyclegan.networks import UNET_MIN_DOWNS, UnetGenerator
from ganzoo_plugins.reference_state import check_layout, clean_state_dict, read_state_dict

EXPECTED = (
    "expected a generator state_dict (latest_net_G.pth) saved by pytorch-CycleGAN-and-pix2pix "
    "with --netG unet_256 or unet_128"
)
PREFIX = "model.model."  # UnetGenerator.model is the outermost block; its layers are its .model
FIRST_CONV, OUTER_UPCONV = PREFIX + "0.weight", PREFIX + "3.weight"
# Instance norm keeps no statistics; files from PyTorch < 0.4 still carry them (the reference drops them).
STATISTICS = (".running_mean", ".running_var", ".num_batches_tracked")


def load_reference_unet(path: str | Path, dropout: bool = True) -> tuple[UnetGenerator, dict]:
    """Build a UnetGenerator matching the file's tensors and load it strictly.

    Returns the network and {"input_nc", "output_nc", "ngf", "num_downs", "norm"}.
    """
    path = Path(path)
    state = clean_state_dict(read_state_dict(path, EXPECTED), path, EXPECTED)
    layout = infer_layout(state, path)
    if layout["norm"] == "instance":
        state = {key: value for key, value in state.items() if not key.endswith(STATISTICS)}
    net = UnetGenerator(layout["input_nc"], layout["output_nc"], layout["num_downs"], layout["ngf"],
                        layout["norm"], dropout)
    expected_state = net.state_dict()
    for key, value in expected_state.items():  # files from PyTorch < 0.4.1 predate this counter
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    check_layout(expected_state, state, path, f"a U-Net generator of {layout['num_downs']} levels", EXPECTED)
    net.load_state_dict(state, strict=True)
    return net, layout


def infer_layout(state: Mapping[str, Tensor], path: Path) -> dict:
    if not any(key.startswith(PREFIX) for key in state):
        hint = " (a ResNet generator: import it with `ganzoo import cyclegan`)" if "model.1.weight" in state else ""
        raise UserError(f"{path} is not a U-Net generator{hint}; {EXPECTED}")
    first, outer_up = state.get(FIRST_CONV), state.get(OUTER_UPCONV)
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (4, 4):
        raise UserError(f"{path} has no 4x4 input convolution '{FIRST_CONV}'; {EXPECTED}")
    if outer_up is None or outer_up.dim() != 4:
        raise UserError(f"{path} has no output convolution '{OUTER_UPCONV}'; {EXPECTED}")
    # A key of level k (1: outermost) names "model" k + 1 times: model.model.1.model.3....
    num_downs = max(key.split(".").count("model") for key in state) - 1
    if num_downs < UNET_MIN_DOWNS:
        raise UserError(f"{path} has a U-Net of {num_downs} levels, fewer than the reference's {UNET_MIN_DOWNS}; {EXPECTED}")
    return {
        "input_nc": int(first.shape[1]),
        "output_nc": int(outer_up.shape[1]),
        "ngf": int(first.shape[0]),
        "num_downs": num_downs,
        "norm": "instance" if PREFIX + "0.bias" in state else "batch",
    }
