"""The growth of a Progressive GAN run as pictures: one grid per resolution and an animated GIF.

The engine writes a preview grid every ``sample_every`` steps (RUN/samples/step-*.png; the plugin
upsamples lower resolutions to the final size, so every grid has the same size). Each grid's step
is matched to the images shown after that step through stats.jsonl, and the growth schedule
turns that into a resolution and alpha. Written next to the grids:

    growth.gif              every grid in order, captioned with resolution and alpha
    resolution-RxR.png      the last grid at each resolution
    growth.png              those last grids side by side, captioned
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ganzoo import files
from ganzoo.reporting.gif import captioned, evenly_spaced, sample_grids
from ganzoo_plugins.progan.schedule import GrowthSchedule

GAP = 4


@dataclass(frozen=True)
class Frame:
    path: Path
    step: int
    images_seen: int
    resolution: int
    alpha: float
    fading: bool

    @property
    def caption(self) -> str:
        size = f"{self.resolution}x{self.resolution}"
        phase = f"fade-in {self.alpha:.2f}" if self.fading else "stable"
        return f"{size} {phase}, {self.images_seen:,} img"


@dataclass(frozen=True)
class GrowthReport:
    gif: Path
    grids: dict[int, Path]  # resolution -> its last grid
    strip: Path


def logged_images(run_dir: Path) -> dict[int, int]:
    """step -> images shown after it, from stats.jsonl (a resumed run's repeated steps agree)."""
    stats = run_dir / "stats.jsonl"
    if not stats.is_file():
        return {}
    lines = stats.read_text().splitlines()
    records = (json.loads(line) for line in lines if line.strip())
    return {int(r["step"]): int(r["images_seen"]) for r in records if "images_seen" in r}


def images_at(step: int, logged: dict[int, int]) -> int:
    """Images shown after ``step``: logged, or interpolated between the logged steps around it
    (exact while the batch size stays the same), or extrapolated past the last one."""
    if step in logged:
        return logged[step]
    anchors = sorted({0: 0, **logged}.items())
    later = bisect.bisect(anchors, (step, math.inf))
    pair = anchors[later - 1 : later + 1] if later < len(anchors) else anchors[-2:]
    if len(pair) < 2:
        return pair[0][1]
    (s0, i0), (s1, i1) = pair
    return round(i0 + (step - s0) * (i1 - i0) / (s1 - s0))


def growth_frames(run_dir: Path, schedule: GrowthSchedule) -> list[Frame]:
    """The run's preview grids in step order with their stage."""
    logged = logged_images(run_dir)
    frames = []
    for step, path in sample_grids(run_dir / "samples"):
        images = images_at(step, logged)
        stage = schedule.stage_at(images)
        frames.append(Frame(path, step, images, stage.resolution, stage.alpha, stage.fading))
    return frames


def with_caption(frame: Frame) -> Image.Image:
    with Image.open(frame.path) as grid:
        size = grid.size
    return captioned(frame.path, frame.caption, size)


def write_growth_report(
    run_dir: Path,
    schedule: GrowthSchedule,
    *,
    max_frames: int = 60,
    frame_ms: int = 200,
    hold_ms: int = 2000,
) -> GrowthReport | None:
    """Write the GIF and per-resolution grids; None when the run has no preview grids yet."""
    run_dir = Path(run_dir)
    frames = growth_frames(run_dir, schedule)
    if not frames:
        return None
    samples = run_dir / "samples"
    last_at = {frame.resolution: frame for frame in frames}  # frames are in step order
    grids = {}
    for resolution, frame in sorted(last_at.items()):
        grids[resolution] = samples / f"resolution-{resolution}x{resolution}.png"
        files.write_bytes(grids[resolution], frame.path.read_bytes())

    pictures = [with_caption(frame) for frame in evenly_spaced(frames, max_frames)]
    gif = samples / "growth.gif"
    durations = [frame_ms] * (len(pictures) - 1) + [hold_ms]
    files.save_image(
        pictures[0], gif, save_all=True, append_images=pictures[1:], duration=durations, loop=0, optimize=True
    )

    tiles = [with_caption(last_at[resolution]) for resolution in sorted(last_at)]
    width = sum(tile.width for tile in tiles) + GAP * (len(tiles) - 1)
    strip_image = Image.new("RGB", (width, tiles[0].height), "white")
    x = 0
    for tile in tiles:
        strip_image.paste(tile, (x, 0))
        x += tile.width + GAP
    strip = samples / "growth.png"
    files.save_image(strip_image, strip)
    return GrowthReport(gif, grids, strip)
