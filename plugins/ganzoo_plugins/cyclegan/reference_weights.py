"""Import generators trained with junyanz/pytorch-CycleGAN-and-pix2pix (`*_net_G_A.pth`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

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
FIRST_BLOCK_INDEX = 10  # pad, conv, norm, relu + two (conv, norm, relu) downsamplings come first
BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


def load_reference_generator(path: str | Path) -> tuple[ResnetGenerator, dict[str, int]]:
    """Build a ResnetGenerator matching the file's tensor shapes and load it strictly.

    Returns the network and {"input_nc", "output_nc", "ngf", "n_blocks"}.
    """
    path = Path(path)
    state = clean_state_dict(read_state_dict(path), path)
    info = infer_architecture(state, path)
    net = ResnetGenerator(info["input_nc"], info["output_nc"], info["ngf"], info["n_blocks"])
    check_layout(net.state_dict(), state, path)
    net.load_state_dict(state, strict=True)
    return net, info


def read_state_dict(path: Path) -> Mapping:
    if not path.is_file():
        raise UserError(f"reference weights file not found: {path}; {EXPECTED}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for corrupt or unsafe files
        reason = load_failure(error)
        message = f"cannot read {path} as a weights-only PyTorch file ({reason}); {EXPECTED}"
        raise UserError(message) from None
    if not isinstance(loaded, Mapping):
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a state_dict; {EXPECTED}")
    return loaded


def load_failure(error: Exception) -> str:
    if "Weights only load failed" in str(error):
        return "it pickles Python objects, not just tensors: save net.state_dict(), not the module"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def clean_state_dict(raw: Mapping, path: Path) -> dict[str, Tensor]:
    """Plain dict without DataParallel's `module.` prefix, `_metadata` or norm statistics."""
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise UserError(f"{path} has an entry {key!r} that is not a named tensor; {EXPECTED}")
        key = key.removeprefix("module.")
        if not key.endswith(JUNK_SUFFIXES):
            state[key] = value
    return state


def infer_architecture(state: Mapping[str, Tensor], path: Path) -> dict[str, int]:
    if any(key.startswith("model.model.") for key in state):
        raise UserError(f"{path} is a U-Net generator (unet_128/unet_256), not ResNet; {EXPECTED}")
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


def check_layout(expected: Mapping[str, Tensor], state: Mapping[str, Tensor], path: Path) -> None:
    """Turn load_state_dict's multi-line mismatch report into one line naming the first problems."""
    problems = [f"missing {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    problems += [
        f"{key} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        listed = ", ".join(problems[:3])
        raise UserError(f"{path} does not match a ResNet generator: {listed}{more}; {EXPECTED}")
