"""Checkpoint files: plain dicts of tensors and primitives, written atomically, read safely.

A checkpoint is written through ``ganzoo.files.atomic_write`` (a temporary file in the same
folder, fsynced, then renamed), so a crash or Ctrl-C at any moment leaves the previous checkpoints
intact, and a full disk raises ``DiskFullError``. Reading uses ``weights_only=True``: a checkpoint
cannot run code. If the newest file is unreadable anyway (copied half-way, a disk fault),
``newest_readable`` falls back to the one before and says which it skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganzoo import files
from ganzoo.errors import UserError

PATTERN = re.compile(r"^ckpt-(\d{8})\.pt$")
SET_ASIDE_SUFFIX = ".unreadable"


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PATTERN.match(p.name))


def save_atomic(state: dict[str, Any], path: Path) -> None:
    with files.atomic_write(path) as f:
        torch.save(state, f)


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


@dataclass
class Readable:
    """The newest checkpoint that loads, and the newer ones that did not (newest first)."""

    path: Path
    state: dict[str, Any]
    skipped: list[Path]

    def note(self) -> str | None:
        """One line for the user when something was skipped, else None."""
        if not self.skipped:
            return None
        names = ", ".join(p.name for p in self.skipped)
        return f"{names} in {self.path.parent} cannot be read (truncated or corrupt): using {self.path.name} instead"


def newest_readable(folder: Path) -> Readable:
    """Load the newest checkpoint that reads; UserError when none does (or there is none)."""
    found = list_checkpoints(folder)
    if not found:
        raise UserError(f"no checkpoint in {folder}: train first, or pass the run folder")
    skipped: list[Path] = []
    for path in reversed(found):
        try:
            return Readable(path, load(path), skipped)
        except UserError:
            skipped.append(path)
    raise UserError(
        f"none of the {len(found)} checkpoints in {folder} can be read (truncated or corrupt): "
        "start a new run, or copy an intact checkpoint into that folder"
    )


def set_aside(paths: list[Path]) -> list[Path]:
    """Rename unreadable checkpoints to ``*.pt.unreadable`` so pruning never keeps them in place of
    good ones (with keep_checkpoints=1 it would otherwise delete every new checkpoint); returns the
    new names. Only for a process holding the run's lock."""
    moved = []
    for path in paths:
        target = path.with_name(path.name + SET_ASIDE_SUFFIX)
        path.replace(target)
        moved.append(target)
    return moved

