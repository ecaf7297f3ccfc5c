"""Decode image files to uint8 HWC arrays, and resize them (the pipelines built on that: ``transforms``)."""

from __future__ import annotations

import threading
import warnings
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
# Modes whose pixels can be box-averaged (palette indices and 1-bit pixels cannot).
_REDUCIBLE_MODES = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "I", "F"})

# The most pixels one image may decode to: 64 megapixels (8000 x 8000), about 200 MB as RGB.
# A few hundred KB of PNG can claim 12000 x 12000 (430 MB as RGB, more while converting), and a
# folder is decoded by many threads at once. JPEGs are first reduced by Pillow's draft mode when
# the caller needs a smaller size, so the limit applies to what is actually decoded.
MAX_PIXELS = 64_000_000
_open_guard = threading.Lock()  # warnings.catch_warnings is process-wide: one thread at a time


class ImageDecodeError(UserError):
    """An image file that cannot be read: missing, not an image, corrupt or truncated."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")


def load_image(path: str | Path, channels: int, draft_size: int | None = None) -> np.ndarray:
    """Decode `path` to uint8 HWC with `channels` (1 or 3), upright per its EXIF orientation.

    `draft_size` is the shortest side the caller will resize to: JPEGs then decode at a reduced
    DCT scale that is still at least that large (much faster for big photos), and other images
    are box-reduced by a whole factor right after decoding, before any conversion copies them.
    An image that would decode to more than `MAX_PIXELS` is refused before it is decoded.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with _open_quietly(path) as img:
            if draft_size is not None and img.format == "JPEG":
                img.draft(None, (draft_size, draft_size))
            _check_pixels(path, *img.size)
            img.load()  # decode now so truncation is reported here, not later
            if draft_size is not None:
                img = _reduce(img, draft_size)
            upright = ImageOps.exif_transpose(img)
            return _to_channels(upright, channels)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError:
        raise ImageDecodeError(path, f"it decodes to far more than the {MAX_PIXELS:,}-pixel limit: downscale it first") from None
    # Pillow's format plugins signal malformed data with many exception types (OSError,
    # SyntaxError, ValueError, struct.error, EOFError...).
    except Exception as err:
        raise ImageDecodeError(path, str(err) or type(err).__name__) from err


def _open_quietly(path: str | Path) -> Image.Image:
    # Pillow warns about images above its own, higher limit while reading the header; ganzoo
    # says it in one line instead (or decodes a big JPEG small through draft mode).
    with _open_guard, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _check_pixels(path: str | Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(
            path,
            f"it decodes to {width}x{height} = {width * height:,} pixels, over the limit of {MAX_PIXELS:,} "
            "per image (ganzoo.data.decode.MAX_PIXELS): downscale it first",
        )


def _reduce(img: Image.Image, size: int) -> Image.Image:
    """Shrink by the largest whole factor that keeps the shorter side at least `size`."""
    factor = min(img.size) // size
    if factor < 2 or img.mode not in _REDUCIBLE_MODES or "transparency" in img.info:
        return img  # a colour-key transparency must keep exact pixel values
    # Whole boxes only: a partial box at the edge would stretch the picture by up to a pixel.
    width, height = img.size
    return img.reduce(factor, box=(0, 0, width - width % factor, height - height % factor))


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
