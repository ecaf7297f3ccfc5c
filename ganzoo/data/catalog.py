"""Turn a ``DataConfig`` into decoded images: built-ins, torchvision sets, or folders.

How data is read depends on what the plugin takes (``Accepts``): a plugin that takes paired data
gets pairs or a one-line refusal; a plugin that takes unpaired data reads paired data as two
unpaired domains, with a one-line warning saying that the pairing is ignored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.data.imageset import ImageSet
from ganzoo.data.options import DataConfig
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts, DataInfo

if TYPE_CHECKING:
    from ganzoo.data.paired import PairedSet
    from ganzoo.data.streamed import StreamedSet

TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10")
TOY_SETS = ("ring8", "grid25")  # 2-D points, DataInfo kind "vectors"
DIGIT_PAIRS = "digit-pairs"  # ganzoo.data.digit_pairs
BUILTIN_SETS = ("digits", "digit-styles", DIGIT_PAIRS) + TOY_SETS
TOY_POINTS = 50_000  # points drawn for ring8 / grid25: far more than a short run can memorize


@dataclass
class OpenedData:
    """What a run trains on. ``a`` and ``b`` are the domains (``b``: unpaired or paired data). For
    paired data ``pairs`` holds the two as one set (A's channels, then B's) that a source draws
    from with one cursor, and ``a``/``b`` are views of its halves. ``transform``: the user's
    host-side pipeline (``ganzoo.data.transforms.UserPipeline``), or None."""

    a: ImageSet | StreamedSet
    b: ImageSet | StreamedSet | None
    info: DataInfo
    pairs: PairedSet | StreamedSet | None = None
    transform: Any = None


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
    return as_imageset(styles.train_a, "digit-styles A"), as_imageset(styles.train_b, "digit-styles B")


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


def open_data(cfg: DataConfig, accepts: Accepts, seed: int = 0) -> OpenedData:
    """The dataset ``cfg`` names, read the way the plugin takes data (``accepts``)."""
    if "paired" in accepts.kinds:
        opened = open_paired(cfg)
    else:
        opened = open_unpaired_or_single(cfg, accepts, seed)
    if cfg.transform:
        opened.transform = user_pipeline(cfg.transform, opened)
    return opened


def open_unpaired_or_single(cfg: DataConfig, accepts: Accepts, seed: int) -> OpenedData:
    name = cfg.dataset
    if cfg.direction != "AtoB":
        raise UserError(f"direction={cfg.direction} chooses the input side of paired data, and this plugin "
                        f"takes {accepts.describe()} data: drop it")
    size = stored_size(cfg)
    b = None
    if "unpaired" in accepts.kinds and name not in TOY_SETS:
        if name == "digit-styles":
            a, b = digit_styles_imagesets(size, seed)
        elif name == DIGIT_PAIRS:
            a, b = digit_pairs_unpaired(size)
        else:
            a, b = unpaired_folders(cfg, size)
    elif name in TOY_SETS:
        a = toy_pointset(name, seed)
    elif name == "digits":
        a = digits_imageset(size, cfg.channels or 1)
    elif name in ("digit-styles", DIGIT_PAIRS):
        kind = "an unpaired" if name == "digit-styles" else "a paired"
        raise UserError(f"{name} is {kind} A/B dataset: train it with an image-to-image plugin such as "
                        f"{'cyclegan' if name == 'digit-styles' else 'pix2pix'}")
    elif name.lower() in TORCHVISION_SETS:
        from ganzoo.data.torchvision_sets import load_torchvision

        default_channels = 3 if name.lower() == "cifar10" else 1
        a = load_torchvision(
            name.lower(), Path(cfg.root).expanduser(), size, cfg.channels or default_channels, cfg.download
        )
    else:
        from ganzoo.data.streamed import open_folder

        a = open_folder(existing_path(name), size, cfg.channels or 3, cfg)
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


def existing_path(name: str) -> Path:
    path = Path(name).expanduser()
    if not path.exists() and "/" not in name and "\\" not in name and not name.startswith("."):
        choices = ", ".join(BUILTIN_SETS + TORCHVISION_SETS)
        raise UserError(f"unknown dataset '{name}': use a folder path or one of {choices}")
    return path


def unpaired_folders(cfg: DataConfig, size: int) -> tuple[ImageSet | StreamedSet, ImageSet | StreamedSet]:
    """Two domains from --data A_DIR --data-b B_DIR or ROOT/trainA + ROOT/trainB; says so when their
    files pair up by name, since an unpaired plugin then ignores the pairing."""
    from ganzoo.data.folders import resolve_unpaired_root
    from ganzoo.data.paired import same_names
    from ganzoo.data.streamed import open_folder

    if cfg.dataset_b:
        folders = (Path(cfg.dataset).expanduser(), Path(cfg.dataset_b).expanduser())
    else:
        root = existing_path(cfg.dataset)
        if (root / "train").is_dir() and not (root / "trainA").is_dir():
            raise UserError(f"{root}/train holds side-by-side pairs, not unpaired domains (trainA/, trainB/): "
                            "train a paired plugin such as pix2pix on it")
        folders = resolve_unpaired_root(root, split="train")
    a, b = (open_folder(folder, size, cfg.channels or 3, cfg) for folder in folders)
    pairs = same_names(*folders)
    if pairs:
        warn_pairing_ignored(f"the {pairs} files of {folders[0]} and {folders[1]} pair up by name")
    return a, b


def digit_pairs_unpaired(size: int) -> tuple[ImageSet, ImageSet]:
    from ganzoo.data.digit_pairs import make_digit_pairs

    pairs = make_digit_pairs(size)
    warn_pairing_ignored(f"{DIGIT_PAIRS} is paired data")
    return as_imageset(pairs.train_a, f"{DIGIT_PAIRS} A"), as_imageset(pairs.train_b, f"{DIGIT_PAIRS} B")


def warn_pairing_ignored(what: str) -> None:
    from ganzoo.data.paired import PairingIgnoredWarning

    warnings.warn(f"{what}, but this plugin learns from unpaired data: it trains on A and B as two unpaired "
                  "domains, ignoring the pairing (a paired plugin such as pix2pix uses it)", PairingIgnoredWarning,
                  stacklevel=3)


def as_imageset(nhwc: np.ndarray, name: str) -> ImageSet:
    return ImageSet(torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))), None, None, name)


def open_paired(cfg: DataConfig) -> OpenedData:
    """Pairs for a plugin that takes paired data: the built-in digit-pairs or a paired folder layout."""
    from ganzoo.data.paired import PairedSet

    name, size = cfg.dataset, stored_size(cfg)
    swap = cfg.direction == "BtoA"
    if name == DIGIT_PAIRS:
        from ganzoo.data.digit_pairs import make_digit_pairs

        built = make_digit_pairs(size)
        sides = (built.train_b, built.train_a) if swap else (built.train_a, built.train_b)
        joined = torch.from_numpy(np.concatenate(sides, axis=3)).permute(0, 3, 1, 2).contiguous()
        pairs: PairedSet | StreamedSet = PairedSet(joined, 3, [str(i) for i in range(len(joined))], DIGIT_PAIRS)
        a, b = pairs.side("A"), pairs.side("B")
    elif name in BUILTIN_SETS or name.lower() in TORCHVISION_SETS:
        hint = "train cyclegan on it" if name == "digit-styles" else "train an image plugin such as dcgan on it"
        raise UserError(f"{name} holds no pairs, and this plugin learns from paired data: use --data {DIGIT_PAIRS}, a folder "
                        f"of side-by-side AB images or --data A_DIR --data-b B_DIR (or {hint})")
    else:
        pairs, a, b = paired_folders(cfg, size, swap)
    channels = a.images.shape[1]
    info = DataInfo(
        channels=channels,
        channels_b=b.images.shape[1],
        size=cfg.size if cfg.load_size else size,
        num_images=len(a),
        num_images_b=len(b),
        kind="paired",
        name=name,
    )
    return OpenedData(a, b, info, pairs=pairs)


def paired_folders(cfg: DataConfig, size: int, swap: bool):
    """Paired folders decoded into memory, or indexed for streaming (as ``open_folder`` decides)."""
    from ganzoo.data.paired import PairItems, find_pairs, load_pairs, streamed_sides
    from ganzoo.data.streamed import StreamedSet

    root_b = Path(cfg.dataset_b).expanduser() if cfg.dataset_b else None
    found, where = find_pairs(existing_path(cfg.dataset), root_b)
    channels = cfg.channels or 3
    decoded_mb = len(found) * 2 * channels * size * size / 2**20
    if not (cfg.stream if cfg.stream is not None else decoded_mb > cfg.stream_above_mb):
        pairs = load_pairs(found, size, channels, cfg.strict, swap, where)
        return pairs, pairs.side("A"), pairs.side("B")
    items = PairItems(found, size, channels, cfg.strict, swap)
    source = f"{where} ({len(found)} pairs, streamed)"
    return (StreamedSet(items, None, None, source), *streamed_sides(items, source))


def user_pipeline(path: str, opened: OpenedData):
    """The user's pipeline, tried once on the first item so that a bad one fails before training."""
    from ganzoo.data.transforms import UserPipeline

    if opened.info.kind == "vectors":
        raise UserError("transform= changes images, and this dataset holds points: drop the transform")
    pipeline = UserPipeline(path, split=opened.info.channels if opened.pairs is not None else None)
    first = (opened.pairs if opened.pairs is not None else opened.a).images[:1][0]
    pipeline(first.permute(1, 2, 0).numpy(), seed=0)
    return pipeline
