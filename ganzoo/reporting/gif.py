"""An animated GIF of a run's preview grids (RUN/samples/step-*.png) in step order."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from PIL import Image, ImageDraw

from ganzoo.errors import DamagedFileWarning
from ganzoo.files import save_image

STEP_GRID = re.compile(r"^step-(\d+)\.png$")
CAPTION_HEIGHT = 14


def sample_grids(samples_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every intact preview grid, sorted by step; damaged ones are skipped with a warning."""
    found, damaged = [], []
    for path in samples_dir.glob("step-*.png") if samples_dir.is_dir() else ():
        match = STEP_GRID.match(path.name)
        if match:
            (found if intact(path) else damaged).append((int(match.group(1)), path))
    if damaged:
        names = ", ".join(path.name for _, path in sorted(damaged)[:3]) + ("..." if len(damaged) > 3 else "")
        warnings.warn(f"skipped {len(damaged)} truncated or corrupt preview grids in {samples_dir}: {names}",
                      DamagedFileWarning, stacklevel=2)
    return sorted(found)


def intact(path: Path) -> bool:
    """Whether the image file is whole (a crash or a full disk can leave one cut short)."""
    try:
        with Image.open(path) as image:
            image.verify()  # reads every chunk and checks its CRC without decoding
    except Exception:  # Pillow reports damage with many exception types
        return False
    return True


def evenly_spaced(items: list, count: int) -> list:
    """At most ``count`` items including the first and the last."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def captioned(path: Path, caption: str, size: tuple[int, int]) -> Image.Image:
    image = Image.open(path).convert("RGB")
    if image.size != size:  # e.g. a growing model's early grids; keep every frame one size
        image = image.resize(size, Image.NEAREST)
    frame = Image.new("RGB", (size[0], size[1] + CAPTION_HEIGHT), "white")
    frame.paste(image, (0, CAPTION_HEIGHT))
    ImageDraw.Draw(frame).text((3, 1), caption, fill="black")
    return frame


def make_samples_gif(samples_dir: Path, out: Path, max_frames: int = 60, frame_ms: int = 250) -> Path | None:
    """Write the GIF (the last frame held longer); None when the run has no preview grids."""
    grids = evenly_spaced(sample_grids(samples_dir), max_frames)
    if not grids:
        return None
    with Image.open(grids[-1][1]) as last:
        size = last.size
    frames = [captioned(path, f"step {step}", size) for step, path in grids]
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 6]
    return save_image(frames[0], out, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
