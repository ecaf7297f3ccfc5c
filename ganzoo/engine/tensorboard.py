"""Optional TensorBoard logging (``--set tensorboard=true``): scalars and preview grids under RUN/tensorboard."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import MissingDependencyError

# Bookkeeping fields of a stats record that are not plotted as scalars (step is the x axis).
NOT_SCALARS = {"step", "time"}


def open_logger(log_dir: Path, is_main: bool) -> TensorBoardLogger | None:
    """The logger of the main process; every process checks the package, so all stop together."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's wrapper raises this when the tensorboard package is missing
        raise MissingDependencyError("tensorboard", extra="tensorboard", feature="TensorBoard logging") from None
    return TensorBoardLogger(SummaryWriter(log_dir=str(log_dir))) if is_main else None


class TensorBoardLogger:
    """Writes each stats record as scalars and each preview grid as an image, keyed by step."""

    def __init__(self, writer):
        self.writer = writer

    def log_stats(self, record: Mapping[str, Any]) -> None:
        step = int(record["step"])
        for key, value in record.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def log_image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """``image``: one CHW grid in [-1, 1]."""
        self.writer.add_image(tag, image.detach().float().cpu().add(1).div(2).clamp(0, 1), global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
