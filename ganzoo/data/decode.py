"""Decode image files to uint8 HWC arrays, and resize them (the pipelines built on that: ``transforms``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ganzoo.errors import UserError

# Formats Pillow decodes in every standard build; matched case-insensitively.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class ImageDecodeError(UserError):
    """An image file that cannot be read: missing, not an image, corrupt or truncated."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")


def load_image(path: str | Path, channels: int, draft_size: int | None = None) -> np.ndarray:
    """Decode `path` to uint8 HWC with `channels` (1 or 3), upright per its EXIF orientation.

    `draft_size` is the shortest side the caller will resize to: JPEGs then decode at a reduced
    DCT scale that is still at least that large, which is much faster for big photos.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                img.draft(None, (draft_size, draft_size))
            img.load()  # decode now so truncation is reported here, not later
            upright = ImageOps.exif_transpose(img)
            return _to_channels(upright, channels)
    # Pillow's format plugins signal malformed data with many exception types (OSError,
    # SyntaxError, ValueError, struct.error, EOFError, DecompressionBombError...).
    except Exception as err:
        raise ImageDecodeError(path, str(err) or type(err).__name__) from err


def _to_channels(img: Image.Image, channels: int) -> np.ndarray:
    if img.mode in _SIXTEEN_BIT_MODES:
        img = _sixteen_bit_to_gray(img)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        img = _composite_on_white(img.convert("RGBA"))
    target = "L" if channels == 1 else "RGB"
    if img.mode != target:
        img = img.convert(target)
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if channels == 1 else array


def _sixteen_bit_to_gray(img: Image.Image) -> Image.Image:
    # Pillow's own conversion clips 16-bit values at 255, turning most of the range white;
    # scaling keeps the picture (65535 -> 255). Mode "I" is how Pillow holds 16-bit PNG/TIFF data.
    values = np.asarray(img).astype(np.float64)
    scaled = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    # Pixels under alpha 0 hold arbitrary colour (often black or leftovers), so dropping alpha
    # would show garbage; white is how viewers and web pages show such images (sprites, icons,
    # product shots), which gives every image the same clean background.
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def resize_shortest_side(array: np.ndarray, size: int) -> np.ndarray:
    """Scale HWC so its shorter side is `size`, keeping aspect; area filter when shrinking."""
    height, width = array.shape[:2]
    scale = size / min(height, width)
    # max(size, ...) keeps float rounding from leaving a side one pixel short of the crop.
    new_height = max(size, round(height * scale))
    new_width = max(size, round(width * scale))
    if (new_height, new_width) == (height, width):
        return array
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(array, (new_width, new_height), interpolation=interpolation)
    return resized.reshape(new_height, new_width, array.shape[2]) if array.ndim == 3 else resized
