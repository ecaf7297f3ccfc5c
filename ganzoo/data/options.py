"""Which data a run trains on (``--data`` and ``--set size=...`` reach these fields)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ganzoo.config import setting

MAX_SIZE = 8192  # pixels per side: beyond any GAN here, and a typo such as size=100000 fails at once


@dataclass
class DataConfig:
    dataset: str = "digits"  # built-in name, torchvision name, or a folder path
    dataset_b: str | None = None  # second folder: domain B of unpaired data, or the B side of pairs matched by name
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # paired data: BtoA swaps the sides (B becomes the input)
    size: int = setting(32, ge=4, le=MAX_SIZE)  # images are delivered at size x size
    load_size: int | None = setting(None, ge=4, le=MAX_SIZE)  # stored at this size, randomly cropped to size each step; None: stored at size
    channels: int | None = setting(None, choices=(1, 3))  # None: the dataset's own (1 for digits and MNIST, else 3)
    root: str = "~/.cache/ganzoo/datasets"  # where torchvision datasets live
    download: bool = False  # allow torchvision to download a missing dataset
    transform: str | None = None  # an albumentations pipeline (A.save's .json or .yaml) applied to every image drawn
    strict: bool = False  # unreadable images are an error instead of being skipped
    stream: bool | None = None  # decode folders per step in DataLoader workers; None: above stream_above_mb
    stream_above_mb: float = setting(4096.0, gt=0)  # decoded size (uint8) from which a folder is streamed instead of held in memory
