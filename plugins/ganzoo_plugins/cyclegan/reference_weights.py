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

import torch
from torch import Tensor

from ganzoo.errors import UserError

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
    state = clean_state_dict(read_state_dict(path, expected), path, expected)
    info = infer_architecture(state, path, expected)
    net = generator(info["input_nc"], info["output_nc"], info["ngf"], info["n_blocks"],
                    info["antialias"], info["antialias_up"])
    check_layout(net.state_dict(), state, path, expected)
    net.load_state_dict(state, strict=True)
    return net, info


def read_state_dict(path: Path, expected: str = EXPECTED) -> Mapping:
    """The file's mapping of names to tensors, read without unpickling code; ``expected`` ends every
    error message (what file the importer wants)."""
    if not path.is_file():
        raise UserError(f"reference weights file not found: {path}; {expected}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for corrupt or unsafe files
        reason = load_failure(error)
        message = f"cannot read {path} as a weights-only PyTorch file ({reason}); {expected}"
        raise UserError(message) from None
    if not isinstance(loaded, Mapping):
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a state_dict; {expected}")
    return loaded


def load_failure(error: Exception) -> str:
    if "Weights only load failed" in str(error):
        return "it pickles Python objects, not just tensors: save net.state_dict(), not the module"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def clean_state_dict(raw: Mapping, path: Path, expected: str = EXPECTED) -> dict[str, Tensor]:
    """Plain dict without DataParallel's `module.` prefix, `_metadata` or norm statistics."""
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise UserError(f"{path} has an entry {key!r} that is not a named tensor; {expected}")
        key = key.removeprefix("module.")
        if not key.endswith(JUNK_SUFFIXES):
            state[key] = value
    return state


def infer_architecture(state: Mapping[str, Tensor], path: Path, expected: str = EXPECTED) -> dict[str, Any]:
    if any(key.startswith("model.model.") for key in state):
        raise UserError(f"{path} is a U-Net generator (unet_128/unet_256), not ResNet; {expected}")
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


def check_layout(
    wanted: Mapping[str, Tensor], state: Mapping[str, Tensor], path: Path, expected: str = EXPECTED
) -> None:
    """Turn load_state_dict's multi-line mismatch report into one line naming the first problems."""
    problems = [f"missing {key}" for key in wanted if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in wanted]
    problems += [
        f"{key} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
        for key, tensor in wanted.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        listed = ", ".join(problems[:3])
        raise UserError(f"{path} does not match a ResNet generator: {listed}{more}; {expected}")
