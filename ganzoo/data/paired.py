"""Paired image data: which files are pairs, and decoding each pair as one item.

Two layouts, as users have them:
- aligned, the pix2pix reference's: side-by-side AB images (A the left half, B the right), in
  ROOT/train/ (ROOT/val/, ROOT/test/ for other splits) or in the folder given itself;
- two folders whose files correspond by name without extension (a.png pairs with a.jpg):
  ``--data A_DIR --data-b B_DIR``, or ROOT/trainA/ and ROOT/trainB/.

A pair is decoded into one uint8 array: A's channels, then B's. Both images go through one resize
and centre crop (``ganzoo.data.transforms.resize_center_crop_pair``), and everything after that
moves the item as a whole: the epoch order, random crops, flips, resizing, a user pipeline, sharding
over processes, resume. So A and B of a batch element are always the same pair, cropped at the same
offsets. Mismatches are refused with one line naming the files, never trained on.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganzoo.data.decode import IMAGE_EXTENSIONS, load_image
from ganzoo.data.folders import SkippedImagesWarning, decode_all, scan_images
from ganzoo.data.imageset import ImageSet
from ganzoo.data.streamed import ChannelItems, FolderItems, StreamedSet
from ganzoo.errors import UserError

LAYOUTS = (
    "ROOT/train/ of side-by-side AB images (or a folder of them), ROOT/trainA/ + ROOT/trainB/ with "
    "matching file names, or --data A_DIR --data-b B_DIR"
)
LISTED = 3  # files named in a mismatch message before "and N more"
ASPECT_TOLERANCE = 0.01  # two images of a pair may differ this much in aspect ratio (rounding)
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class PairingIgnoredWarning(UserWarning):
    """Paired data is being read as unpaired (by a plugin that learns from unpaired data)."""


@dataclass(frozen=True)
class Pair:
    name: str  # the pair's stem: its relative path without extension
    a: Path
    b: Path | None = None  # None: ``a`` is one side-by-side AB image


@dataclass
class PairedSet:
    """Decoded pairs in one uint8 NCHW tensor: A's ``channels_a`` channels, then B's."""

    images: torch.Tensor
    channels_a: int
    names: list[str]
    source: str
    labels: None = None
    class_names: None = None

    def __len__(self) -> int:
        return len(self.images)

    def side(self, which: str) -> ImageSet:
        """Domain A or B as an ImageSet (a view: no copy)."""
        part = slice(None, self.channels_a) if which == "A" else slice(self.channels_a, None)
        return ImageSet(self.images[:, part], None, None, f"{self.source}, side {which}")


class PairItems(FolderItems):
    """Pairs decoded per item for streaming, as ``PairedSet`` holds them (A's channels, then B's)."""

    def __init__(self, pairs: list[Pair], size: int, channels: int, strict: bool = False, swap: bool = False):
        super().__init__([pair.a for pair in pairs], size, 2 * channels, strict)
        self.pairs, self.channels_a, self.swap = pairs, channels, swap

    def decode(self, index: int) -> np.ndarray:
        return decode_pair(self.pairs[index], self.size, self.channels_a, self.swap)


def streamed_sides(items: PairItems, source: str) -> tuple[StreamedSet, StreamedSet]:
    """Domains A and B of streamed pairs, each decoding its half of the pair."""
    return tuple(
        StreamedSet(ChannelItems(items, part), None, None, f"{source}, side {which}")
        for which, part in (("A", slice(None, items.channels_a)), ("B", slice(items.channels_a, None)))
    )


# -- which files are pairs -----------------------------------------------------------------------
def find_pairs(root: Path, root_b: Path | None = None, split: str = "train") -> tuple[list[Pair], str]:
    """The pairs of a paired dataset and a few words on where they came from."""
    if root_b is not None:
        return named_pairs(root, root_b), f"pairs matched by name in {root} and {root_b}"
    if not root.is_dir():
        raise UserError(f"paired data not found: {root} is not a folder; expected {LAYOUTS}")
    if (root / split).is_dir():
        return aligned_pairs(root / split), f"side-by-side AB images in {root / split}"
    folder_a, folder_b = root / f"{split}A", root / f"{split}B"
    if folder_a.is_dir() and folder_b.is_dir():
        return named_pairs(folder_a, folder_b), f"pairs matched by name in {folder_a} and {folder_b}"
    if any(path.suffix.lower() in IMAGE_EXTENSIONS for path in root.iterdir()):
        return aligned_pairs(root), f"side-by-side AB images in {root}"
    raise UserError(f"{root} is not a paired dataset: expected {LAYOUTS}")


def aligned_pairs(folder: Path) -> list[Pair]:
    """Every image below ``folder`` as one pair; each must be twice as wide as it is high."""
    paths = scan_images(folder, recursive=True)
    wrong = []
    for path in paths:
        size = upright_size(path)
        if size is not None and size[0] != 2 * size[1]:
            wrong.append(f"{path.relative_to(folder)} ({size[0]}x{size[1]})")
    if wrong:
        raise UserError(
            f"{len(wrong)} of {len(paths)} images in {folder} are not side-by-side AB pairs, whose width is "
            f"twice their height: {listing(wrong)}; fix or remove them, or give A and B as two folders"
        )
    return [Pair(path.relative_to(folder).with_suffix("").as_posix(), path) for path in paths]


def upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as the image will be decoded (EXIF orientation applied), from its header
    only; None when the file cannot be opened (decoding reports it like any unreadable image)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in TRANSPOSING_ORIENTATIONS:
                width, height = height, width
            return width, height
    except Exception:  # Pillow raises many types for files that are not images
        return None


def named_pairs(folder_a: Path, folder_b: Path) -> list[Pair]:
    """Files of two folders paired by relative path without extension; every file needs a partner."""
    a, b = files_by_stem(folder_a), files_by_stem(folder_b)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        problems = [
            f"{len(names)} in {folder} without a partner in {other} ({listing(names)})"
            for names, folder, other in ((only_a, folder_a, folder_b), (only_b, folder_b, folder_a))
            if names
        ]
        raise UserError(
            f"{folder_a} ({len(a)} images) and {folder_b} ({len(b)} images) are not pairs: {'; '.join(problems)}; "
            "files pair up by name without extension (a.png with a.jpg): rename or remove them"
        )
    return [Pair(stem, a[stem], b[stem]) for stem in sorted(a)]


def files_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in scan_images(folder, recursive=True):
        stem = path.relative_to(folder).with_suffix("").as_posix()
        if stem in files:
            raise UserError(
                f"{files[stem].name} and {path.name} in {folder} share the name {stem!r}, so their partner is "
                "ambiguous: keep one of them"
            )
        files[stem] = path
    return files


def same_names(folder_a: Path, folder_b: Path) -> int:
    """How many files pair up by name when every file of both folders does (else 0)."""
    stems = [{p.relative_to(f).with_suffix("").as_posix() for p in scan_images(f, recursive=True)} for f in (folder_a, folder_b)]
    return len(stems[0]) if stems[0] == stems[1] else 0


def listing(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


# -- decoding ------------------------------------------------------------------------------------
def decode_pair(pair: Pair, size: int, channels: int, swap: bool = False) -> np.ndarray:
    """One pair as uint8 ``size`` x ``size`` HWC with A's channels then B's; ``swap``: B is the input."""
    from ganzoo.data.transforms import resize_center_crop_pair

    if pair.b is None:
        ab = load_image(pair.a, channels, draft_size=size)
        height, width = ab.shape[:2]
        if width != 2 * height:
            raise UserError(f"{pair.a} is {width}x{height}: a side-by-side AB image must be twice as wide as high")
        a, b = ab[:, :height], ab[:, height:]
    else:
        a, b = load_image(pair.a, channels, draft_size=size), load_image(pair.b, channels, draft_size=size)
        a, b = same_shape(a, b, pair)
    if swap:
        a, b = b, a
    a, b = resize_center_crop_pair(np.ascontiguousarray(a), np.ascontiguousarray(b), size)
    return np.concatenate([a, b], axis=2)


def same_shape(a: np.ndarray, b: np.ndarray, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Two images of one view at different resolutions, the larger scaled down to the smaller."""
    if a.shape[:2] == b.shape[:2]:
        return a, b
    (ha, wa), (hb, wb) = a.shape[:2], b.shape[:2]
    if abs(wa / ha - wb / hb) > ASPECT_TOLERANCE * (wa / ha):
        raise UserError(
            f"{pair.a} is {wa}x{ha} but its partner {pair.b} is {wb}x{hb}: the two images of a pair must show "
            "the same view (the same aspect ratio)"
        )
    import cv2

    def scaled(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        out = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return out.reshape(shape[0], shape[1], image.shape[2])

    return (scaled(a, b.shape), b) if ha * wa > hb * wb else (a, scaled(b, a.shape))


def load_pairs(pairs: list[Pair], size: int, channels: int, strict: bool, swap: bool, source: str) -> PairedSet:
    """Every pair decoded once; unreadable pairs are skipped with one warning (an error when ``strict``)."""
    decode = functools.partial(decode_pair, size=size, channels=channels, swap=swap)
    images, kept, failures = decode_all(pairs, decode, size, 2 * channels, strict)
    if not kept:
        raise UserError(f"none of the {len(pairs)} pairs ({source}) could be read (first: {failures[0]}): check the files")
    if failures:
        warnings.warn(
            f"skipped {len(failures)} of {len(pairs)} pairs with an unreadable image ({source}; first: {failures[0]})",
            SkippedImagesWarning,
            stacklevel=2,
        )
    names = [pairs[i].name for i in kept]
    return PairedSet(torch.from_numpy(images), channels, names, f"{source} ({len(kept)} pairs)")
