"""Image folders on disk: scanning, class-subfolder labels, and loading into an ImageSet."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ganzoo.data.decode import IMAGE_EXTENSIONS, ImageDecodeError, load_image
from ganzoo.data.imageset import ImageSet
from ganzoo.data.transforms import resize_center_crop
from ganzoo.errors import UserError

_EXTENSIONS_HINT = "/".join(sorted(IMAGE_EXTENSIONS))
# Decoding runs in threads (Pillow and OpenCV release the GIL); chunks bound the pending results.
_DECODE_CHUNK = 512
T = TypeVar("T")


class SkippedImagesWarning(UserWarning):
    """Some files in an image folder could not be read and were left out."""


@dataclass
class FolderIndex:
    """The image files of a folder, with labels when it is laid out as class subfolders."""

    paths: list[Path]
    labels: list[int] | None
    class_names: list[str] | None


def _is_hidden(relative: Path) -> bool:
    # Dot-files include macOS "._name.jpg" resource forks, which carry image extensions
    # but are not images; dot-folders are tool state (.git, .ipynb_checkpoints).
    return any(part.startswith(".") for part in relative.parts)


def _existing_folder(folder: str | Path) -> Path:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise UserError(f"image folder not found: {folder}: check the path")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder: pass the folder that holds the images")
    return folder


def _find_images(folder: Path, recursive: bool) -> list[Path]:
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not _is_hidden(path.relative_to(folder))
        and path.is_file()
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted image files in `folder` (and below it when `recursive`); hidden files are ignored."""
    folder = _existing_folder(folder)
    images = _find_images(folder, recursive)
    if not images:
        hint = ""
        if not recursive and _subfolders(folder):
            hint = " (subfolders are not searched here)"
        raise UserError(f"no images found in {folder}: expected {_EXTENSIONS_HINT} files{hint}")
    return images


def index_folder(path: str | Path) -> FolderIndex:
    """List a dataset folder: class subfolders give labels, otherwise it is one flat folder.

    It is a class layout when `path` holds no images itself but has subfolders; each subfolder
    is one class (labels follow sorted folder names) and is searched recursively, as
    torchvision's ImageFolder does. A folder with loose images is flat: its subfolders are ignored.
    """
    root = _existing_folder(path)
    subfolders = _subfolders(root)
    if _find_images(root, recursive=False) or not subfolders:
        return FolderIndex(scan_images(root), labels=None, class_names=None)
    paths: list[Path] = []
    labels: list[int] = []
    for label, class_folder in enumerate(subfolders):
        images = _find_images(class_folder, recursive=True)
        if not images:
            raise UserError(
                f"class folder {class_folder} holds no images: each subfolder of {root} is read "
                f"as one class, so add {_EXTENSIONS_HINT} files to it or remove it"
            )
        paths.extend(images)
        labels.extend([label] * len(images))
    return FolderIndex(paths, labels, [folder.name for folder in subfolders])


def unreadable_file_error(err: ImageDecodeError) -> UserError:
    """The strict-mode error for a file that cannot be decoded."""
    return UserError(
        f"{err}: fix or remove the file (without strict, unreadable files are skipped)"
    )


def decode_file(path: Path, size: int, channels: int) -> np.ndarray:
    """One image file as uint8 ``size`` x ``size`` HWC (shortest side resized, centre cropped)."""
    return resize_center_crop(load_image(path, channels, draft_size=size), size)


def _or_error(decode: Callable[[T], np.ndarray], item: T) -> np.ndarray | ImageDecodeError:
    try:
        return decode(item)
    except ImageDecodeError as err:
        return err


def decode_all(
    items: Sequence[T], decode: Callable[[T], np.ndarray], size: int, channels: int, strict: bool
) -> tuple[np.ndarray, list[int], list[ImageDecodeError]]:
    """Decode items (files, pairs) with ``decode`` into one preallocated NCHW array; return it
    (trimmed), the kept indices and the failures."""
    images = np.empty((len(items), channels, size, size), dtype=np.uint8)
    kept: list[int] = []
    failures: list[ImageDecodeError] = []
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        for start in range(0, len(items), _DECODE_CHUNK):
            chunk = items[start : start + _DECODE_CHUNK]
            for index, result in enumerate(pool.map(functools.partial(_or_error, decode), chunk), start):
                if isinstance(result, ImageDecodeError):
                    if strict:
                        raise unreadable_file_error(result) from result
                    failures.append(result)
                    continue
                images[len(kept)] = result.transpose(2, 0, 1)
                kept.append(index)
    if failures:
        images = images[: len(kept)].copy()  # release the rows reserved for skipped files
    return images, kept, failures


def load_folder(path: str | Path, size: int, channels: int, strict: bool = False) -> ImageSet:
    """Decode every image of a folder once into uint8 [N, channels, size, size].

    Images are resized (shorter side to `size`) and centre-cropped. Unreadable files are
    skipped with one SkippedImagesWarning, or raise UserError on the first one when `strict`.
    """
    index = index_folder(path)
    decode = functools.partial(decode_file, size=size, channels=channels)
    images, kept, failures = decode_all(index.paths, decode, size, channels, strict)
    if not kept:
        raise UserError(
            f"none of the {len(index.paths)} images in {path} could be read "
            f"(first: {failures[0]}): check the files"
        )
    if failures:
        warnings.warn(
            f"skipped {len(failures)} of {len(index.paths)} unreadable images in {path} "
            f"(first: {failures[0]})",
            SkippedImagesWarning,
            stacklevel=2,
        )
    labels = None
    if index.labels is not None:
        labels = torch.tensor([index.labels[i] for i in kept], dtype=torch.int64)
    described = f"{len(kept)} images"
    if index.class_names:
        described += f", {len(index.class_names)} classes"
    return ImageSet(
        images=torch.from_numpy(images),
        labels=labels,
        class_names=index.class_names,
        source=f"folder {path} ({described})",
    )


def resolve_unpaired_root(root: str | Path, split: str = "train") -> tuple[Path, Path]:
    """The two domain folders of a CycleGAN-style root: root/{split}A and root/{split}B."""
    root = _existing_folder(root)
    folders = (root / f"{split}A", root / f"{split}B")
    missing = [folder.name for folder in folders if not folder.is_dir()]
    if missing:
        raise UserError(
            f"{root} is not an unpaired dataset root: expected subfolders {split}A/ and {split}B/ "
            f"(missing: {', '.join(missing)}); pass the folder that contains them"
        )
    return folders


def load_unpaired(
    path_a: str | Path, path_b: str | Path, size: int, channels: int, strict: bool = False
) -> tuple[ImageSet, ImageSet]:
    """Load the two unpaired domains (A and B) as separate ImageSets of the same size."""
    return (
        load_folder(path_a, size, channels, strict),
        load_folder(path_b, size, channels, strict),
    )
