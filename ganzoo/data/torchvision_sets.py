"""MNIST, Fashion-MNIST and CIFAR-10 read through torchvision.datasets into an ImageSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from ganzoo.data.imageset import ImageSet
from ganzoo.data.transforms import resize_center_crop
from ganzoo.errors import UserError

_DATASETS = {
    "mnist": datasets.MNIST,
    "fashion-mnist": datasets.FashionMNIST,
    "cifar10": datasets.CIFAR10,
}
TORCHVISION_DATASETS = tuple(_DATASETS)


def _expected_files(name: str, root: Path) -> str:
    """Where torchvision looks for the dataset's files, for the not-found message."""
    if name == "cifar10":
        return f"{root / datasets.CIFAR10.base_folder}/ (the extracted cifar-10-python.tar.gz)"
    raw = root / _DATASETS[name].__name__ / "raw"
    return f"{raw}/ (uncompressed train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-... files)"


def _open(name: str, root: Path, download: bool, train: bool) -> datasets.VisionDataset:
    try:
        return _DATASETS[name](root=str(root), train=train, download=download)
    # torchvision reports missing or corrupt files as RuntimeError, failed downloads as either.
    except (RuntimeError, OSError) as err:
        if download:
            raise UserError(
                f"could not download {name} into {root} ({str(err).strip().splitlines()[0]}): "
                f"check the connection, or put the files in {_expected_files(name, root)}"
            ) from err
        raise UserError(
            f"{name} not found (or incomplete) under {root}: put the files in "
            f"{_expected_files(name, root)} or pass --download"
        ) from err


def _match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """NHWC uint8 to `channels`; RGB -> gray uses Pillow's integer ITU-R 601-2 luma."""
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    weights = np.array([19595, 38470, 7471], dtype=np.uint32)
    gray = (images.astype(np.uint32) @ weights + 0x8000) >> 16
    return gray.astype(np.uint8)[..., None]


def load_torchvision(
    name: str,
    root: str | Path,
    size: int,
    channels: int,
    download: bool = False,
    train: bool = True,
) -> ImageSet:
    """Load a torchvision dataset as uint8 [N, channels, size, size] with its class names."""
    if name not in _DATASETS:
        choices = ", ".join(_DATASETS)
        raise UserError(f"unknown torchvision dataset '{name}': choose one of {choices}")
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {channels}")
    root = Path(root).expanduser()
    dataset = _open(name, root, download, train)
    # .data holds every image already decoded (MNIST: uint8 tensor NHW, CIFAR: uint8 numpy NHWC);
    # reading it directly avoids a PIL round trip per image through __getitem__.
    images = np.asarray(dataset.data, dtype=np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    images = _match_channels(images, channels)
    if images.shape[1:3] != (size, size):
        images = np.stack([resize_center_crop(image, size) for image in images])
    split = "train" if train else "test"
    return ImageSet(
        images=torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        labels=torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64),
        class_names=list(dataset.classes),
        source=f"torchvision {name} ({split}, {len(images)} images from {root})",
    )
