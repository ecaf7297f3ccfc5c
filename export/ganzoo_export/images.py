"""Conversions between model tensors (NCHW float in [-1, 1]) and image files (HWC uint8)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganzoo_export.errors import RuntimeInputError


def to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW float in [-1, 1] -> NHWC uint8 (values outside the range are clipped)."""
    if images.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {images.shape}")
    scaled = (np.clip(images.astype(np.float32), -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def from_uint8(image: np.ndarray) -> np.ndarray:
    """HWC uint8 -> HWC float32 in [-1, 1]."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return image.astype(np.float32) / 127.5 - 1.0


def make_grid(images: np.ndarray, nrow: int, padding: int = 2) -> np.ndarray:
    """Tile an NHWC uint8 batch into one HWC image with ``nrow`` images per row and black gaps."""
    if images.ndim != 4:
        raise ValueError(f"expected an NHWC batch, got shape {images.shape}")
    count, height, width, channels = images.shape
    columns = max(1, min(nrow, count))
    rows = math.ceil(count / columns)
    cell_h, cell_w = height + padding, width + padding
    grid = np.zeros(
        (rows * cell_h + padding, columns * cell_w + padding, channels), dtype=images.dtype
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * cell_h
        left = padding + (index % columns) * cell_w
        grid[top : top + height, left : left + width] = image
    return grid


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Save an HWC (or HW) uint8 image; one channel is written as grayscale ("L")."""
    path = Path(path)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an HWC image with 1 or 3 channels, got shape {image.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image file extension; use .png, .jpg or .webp")
    # Written beside the target and renamed into place, so the file is complete or absent.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            # Pillow picks "L" for 2-D and "RGB" for HxWx3 uint8 arrays.
            Image.fromarray(image).save(file, format=fmt)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_image_exif(path: str | Path, channels: int) -> np.ndarray:
    """Load an image as HWC uint8 with ``channels`` (1 or 3), upright per its EXIF orientation."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as opened:
            # Phone photos store rotation in EXIF; without this they would be translated sideways.
            upright = ImageOps.exif_transpose(opened)
            pixels = np.asarray(upright.convert("L" if channels == 1 else "RGB"))
    except FileNotFoundError as exc:
        raise RuntimeInputError(f"image '{path}' does not exist; check the path") from exc
    except UnidentifiedImageError as exc:
        raise RuntimeInputError(
            f"'{path}' is not an image Pillow can read; give a PNG, JPEG or similar file"
        ) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports truncated or corrupt pixel data only while decoding, in these types.
        raise RuntimeInputError(
            f"'{path}' is corrupt or truncated ({str(exc).strip() or type(exc).__name__}); re-save or copy it again"
        ) from exc
    return pixels[:, :, None] if channels == 1 else pixels
