"""Reading state_dicts saved by junyanz/pytorch-CycleGAN-and-pix2pix (`latest_net_G.pth` and kin).

Shared by the CycleGAN and pix2pix imports. Files are read with ``weights_only=True`` (never as
pickles of code), and every problem becomes one line that ends with what the importer expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from ganzoo.errors import UserError

DATA_PARALLEL_PREFIX = "module."  # what the reference's DataParallel-wrapped networks save under
LISTED = 3  # layout problems named before "and N more"


def read_state_dict(path: Path, expected: str) -> Mapping:
    if not path.is_file():
        raise UserError(f"reference weights file not found: {path}; {expected}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for corrupt or unsafe files
        reason = load_failure(error)
        raise UserError(f"cannot read {path} as a weights-only PyTorch file ({reason}); {expected}") from None
    if not isinstance(loaded, Mapping):
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a state_dict; {expected}")
    return loaded


def load_failure(error: Exception) -> str:
    if "Weights only load failed" in str(error):
        return "it pickles Python objects, not just tensors: save net.state_dict(), not the module"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def clean_state_dict(raw: Mapping, path: Path, expected: str, drop: Iterable[str] = ()) -> dict[str, Tensor]:
    """A plain dict without DataParallel's `module.` prefix, `_metadata`, or keys ending in ``drop``."""
    drop = tuple(drop)
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise UserError(f"{path} has an entry {key!r} that is not a named tensor; {expected}")
        key = key.removeprefix(DATA_PARALLEL_PREFIX)
        if not (drop and key.endswith(drop)):
            state[key] = value
    return state


def check_layout(
    expected_state: Mapping[str, Tensor], state: Mapping[str, Tensor], path: Path, network: str, expected: str
) -> None:
    """Turn load_state_dict's multi-line mismatch report into one line naming the first problems."""
    problems = [f"missing {key}" for key in expected_state if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected_state]
    problems += [
        f"{key} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
        for key, tensor in expected_state.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if problems:
        more = f" and {len(problems) - LISTED} more" if len(problems) > LISTED else ""
        listed = ", ".join(problems[:LISTED])
        raise UserError(f"{path} does not match {network}: {listed}{more}; {expected}")
