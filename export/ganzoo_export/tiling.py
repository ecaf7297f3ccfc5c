"""Run a fully convolutional translator on an image of any size, in blended tiles (numpy only)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BatchFn = Callable[[np.ndarray], np.ndarray]


def translate_image(
    image: np.ndarray,
    fn: BatchFn,
    size_multiple: int,
    tile: int = 512,
    overlap: int = 32,
    padding_mode: str = "reflect",
) -> np.ndarray:
    """Apply ``fn`` (NCHW float32 -> NCHW float32, same H and W) to an HWC image in [-1, 1].

    H and W are padded at the bottom and right (``padding_mode``: numpy's "reflect" or "edge")
    up to a multiple of ``size_multiple`` and cropped back. Images
    larger than ``tile`` run as overlapping tiles (sides a multiple of ``size_multiple``) whose
    overlaps are cross-faded, so memory in ``fn`` stays bounded by the tile size. Tiled output
    equals the untiled output wherever ``fn``'s receptive radius is at most ``overlap // 4``.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {image.shape}")
    if size_multiple < 1:
        raise ValueError(f"size_multiple must be at least 1, got {size_multiple}")
    tile = tile // size_multiple * size_multiple
    if tile < size_multiple:
        raise ValueError(f"tile must be at least size_multiple ({size_multiple})")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    height, width = image.shape[:2]
    padded = _pad_to_multiple(image.astype(np.float32, copy=False), size_multiple, padding_mode)
    if max(padded.shape[:2]) <= tile:
        result = _run_hwc(fn, padded)
    else:
        result = _run_tiled(fn, padded, tile, overlap, size_multiple)
    return result[:height, :width]


def _pad_to_multiple(image: np.ndarray, multiple: int, mode: str) -> np.ndarray:
    height, width = image.shape[:2]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def _run_hwc(fn: BatchFn, image: np.ndarray) -> np.ndarray:
    batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    output = np.asarray(fn(batch), dtype=np.float32)
    if output.ndim != 4 or output.shape[0] != 1 or output.shape[2:] != batch.shape[2:]:
        raise ValueError(
            f"fn turned a batch of shape {batch.shape} into {output.shape}; "
            "it must keep the batch size, height and width"
        )
    return output[0].transpose(1, 2, 0)


def _run_tiled(
    fn: BatchFn, image: np.ndarray, tile: int, overlap: int, size_multiple: int
) -> np.ndarray:
    height, width = image.shape[:2]
    tile_h, tile_w = min(tile, height), min(tile, width)
    accumulated: np.ndarray | None = None
    # float64 sums make blending exact wherever overlapping tiles agree: a weighted mean of
    # equal float32 values rounds back to that very value.
    weight_sum = np.zeros((height, width, 1), dtype=np.float64)
    for top in _tile_starts(height, tile, overlap, size_multiple):
        rows = _window(tile_h, top > 0, top + tile_h < height, overlap)
        for left in _tile_starts(width, tile, overlap, size_multiple):
            cols = _window(tile_w, left > 0, left + tile_w < width, overlap)
            result = _run_hwc(fn, image[top : top + tile_h, left : left + tile_w])
            if accumulated is None:
                accumulated = np.zeros((height, width, result.shape[2]), dtype=np.float64)
            weight = np.outer(rows, cols).astype(np.float64)[:, :, None]
            accumulated[top : top + tile_h, left : left + tile_w] += result * weight
            weight_sum[top : top + tile_h, left : left + tile_w] += weight
    return (accumulated / weight_sum).astype(np.float32)


def _tile_starts(length: int, tile: int, overlap: int, size_multiple: int) -> list[int]:
    if length <= tile:
        return [0]
    # Starts on the size_multiple grid keep every tile aligned with the net's stride pattern.
    stride = max(size_multiple, (tile - overlap) // size_multiple * size_multiple)
    return [*range(0, length - tile, stride), length - tile]


def _window(size: int, fade_in: bool, fade_out: bool, overlap: int) -> np.ndarray:
    """1-D tile weights: 1 inside, a cosine ramp on sides shared with a neighbouring tile.

    The outer quarter of each shared side gets weight 0: those pixels saw the tile border
    (padding) instead of real context, and the neighbour covers them with real context.
    """
    weights = np.ones(size, dtype=np.float32)
    if overlap == 0:
        return weights
    margin = overlap // 4
    position = (np.arange(overlap) - margin + 0.5) / (overlap - 2 * margin)
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.clip(position, 0.0, 1.0))).astype(np.float32)
    if fade_in:
        weights[:overlap] *= ramp
    if fade_out:
        weights[size - overlap :] *= ramp[::-1]
    return weights
