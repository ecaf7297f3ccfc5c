"""Checkpoint files: plain dicts of tensors and primitives, written atomically, read safely.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed
over its final name, so a crash or Ctrl-C at any moment leaves the previous checkpoints intact.
Reading uses ``weights_only=True``: a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import UserError

PATTERN = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PATTERN.match(p.name))


def save_atomic(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prune(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}; it may be truncated or not a ganzoo checkpoint") from None


def latest(folder: Path) -> Path:
    found = list_checkpoints(folder)
    if not found:
        raise UserError(f"no checkpoint in {folder}: train first, or pass the run folder")
    return found[-1]
