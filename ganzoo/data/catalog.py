"""Turn a ``DataConfig`` into decoded images: built-ins, torchvision sets, or folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.data.imageset import ImageSet
from ganzoo.data.options import DataConfig
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo

TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10")
TOY_SETS = ("ring8", "grid25")  # 2-D points, DataInfo kind "vectors"
BUILTIN_SETS = ("digits", "digit-styles") + TOY_SETS
TOY_POINTS = 50_000  # points drawn for ring8 / grid25: far more than a short run can memorize


@dataclass
class OpenedData:
    a: ImageSet
    b: ImageSet | None
    info: DataInfo


def digits_imageset(size: int, channels: int) -> ImageSet:
    from ganzoo.data.digits import CLASS_NAMES, load_digits

    images, labels = load_digits()
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # a writable copy: the cached arrays are read-only
    x = fit_square(x, size)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    return ImageSet(x, torch.from_numpy(labels.copy()), list(CLASS_NAMES), "digits (5,000 MNIST digits, built in)")


def fit_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """28x28 digits -> size: the classic 2-pixel pad for 32, area/bilinear resampling otherwise."""
    if size == x.shape[-1]:
        return x
    if size == 32 and x.shape[-1] == 28:
        return F.pad(x, (2, 2, 2, 2))
    mode = "area" if size < x.shape[-1] else "bilinear"
    y = F.interpolate(x.float(), size=(size, size), mode=mode)
    return y.round_().clamp_(0, 255).to(torch.uint8)


def digit_styles_imagesets(size: int, seed: int) -> tuple[ImageSet, ImageSet]:
    from ganzoo.data.digit_styles import make_digit_styles

    styles = make_digit_styles(size=size, seed=seed)
    as_set = lambda arr, name: ImageSet(  # noqa: E731
        torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous(), None, None, name
    )
    return as_set(styles.train_a, "digit-styles A"), as_set(styles.train_b, "digit-styles B")


def stored_size(cfg: DataConfig) -> int:
    """The side images are decoded at: load_size when each step random-crops them to size."""
    if cfg.load_size is None:
        return cfg.size
    if cfg.load_size < cfg.size:
        raise UserError(f"load_size {cfg.load_size} is smaller than size {cfg.size}: use load_size >= size")
    return cfg.load_size


def toy_pointset(name: str, seed: int) -> ImageSet:
    """The 2-D mode-collapse benchmark's mixtures (ganzoo.data.toys) as float (N, 2) points."""
    from ganzoo.data import toys

    make = toys.ring_of_gaussians if name == "ring8" else toys.grid_of_gaussians
    points = make(TOY_POINTS, generator=torch.Generator().manual_seed(seed))
    described = "8 Gaussians on a ring" if name == "ring8" else "5x5 grid of Gaussians"
    return ImageSet(points, None, None, f"{name} ({described}, 2-D points)")


def open_data(cfg: DataConfig, kind: str, seed: int = 0) -> OpenedData:
    name = cfg.dataset
    size = stored_size(cfg)
    b = None
    if kind == "unpaired":
        if name == "digit-styles":
            a, b = digit_styles_imagesets(size, seed)
        else:
            from ganzoo.data.folders import resolve_unpaired_root

            channels = cfg.channels or 3
            if cfg.dataset_b:
                path_a, path_b = Path(cfg.dataset).expanduser(), Path(cfg.dataset_b).expanduser()
            else:
                path_a, path_b = resolve_unpaired_root(Path(cfg.dataset).expanduser(), split="train")
            from ganzoo.data.streamed import open_folder

            a, b = (open_folder(folder, size, channels, cfg) for folder in (path_a, path_b))
    elif name in TOY_SETS:
        a = toy_pointset(name, seed)
    elif name == "digits":
        a = digits_imageset(size, cfg.channels or 1)
    elif name == "digit-styles":
        raise UserError("digit-styles is an unpaired A/B dataset: train it with an image-to-image plugin such as cyclegan")
    elif name.lower() in TORCHVISION_SETS:
        from ganzoo.data.torchvision_sets import load_torchvision

        default_channels = 3 if name.lower() == "cifar10" else 1
        a = load_torchvision(
            name.lower(), Path(cfg.root).expanduser(), size, cfg.channels or default_channels, cfg.download
        )
    else:
        path = Path(name).expanduser()
        if not path.exists() and "/" not in name and "\\" not in name and not name.startswith("."):
            choices = ", ".join(BUILTIN_SETS + TORCHVISION_SETS)
            raise UserError(f"unknown dataset '{name}': use a folder path or one of {choices}")
        from ganzoo.data.streamed import open_folder

        a = open_folder(path, size, cfg.channels or 3, cfg)
    points = b is None and name in TOY_SETS
    info = DataInfo(
        channels=a.images.shape[1],
        size=0 if points else cfg.size if cfg.load_size else a.images.shape[-1],
        num_images=len(a),
        num_classes=len(a.class_names or ()) if a.labels is not None else 0,
        class_names=tuple(a.class_names or ()) if a.labels is not None else (),
        kind="unpaired" if b is not None else "vectors" if points else "images",
        num_images_b=len(b) if b is not None else 0,
        name=name,
    )
    return OpenedData(a, b, info)
