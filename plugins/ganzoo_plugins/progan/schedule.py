"""Progressive growing schedule counted in real images shown (Karras et al. 2018, sec. 3, A.1).

Order: stabilise at the start resolution, then for each next resolution fade in (alpha 0 -> 1)
and stabilise; after the last stabilise stay at max resolution with alpha 1. The schedule is a pure
function of images shown, so a run resumed mid-fade lands on the same alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ganzoo.errors import UserError

PAPER_PHASE_IMAGES = 800_000


@dataclass(frozen=True)
class Growth:
    """Where training is: resolution, fade-in alpha, batch size, and which resolution phase."""

    resolution: int
    alpha: float
    batch_size: int
    phase_index: int  # changes exactly when the resolution does: rebuild the optimizers then
    fading: bool


def _is_power_of_two_from_4(value: int) -> bool:
    return value >= 4 and value & (value - 1) == 0


@dataclass(frozen=True)
class GrowthSchedule:
    """Resolutions double from start_resolution to max_resolution.

    batch_sizes maps a resolution to its batch size; resolutions not in it use default_batch_size.
    """

    start_resolution: int = 4
    max_resolution: int = 32
    stabilize_images: int = PAPER_PHASE_IMAGES
    fade_images: int = PAPER_PHASE_IMAGES
    batch_sizes: dict[int, int] = field(default_factory=dict)
    default_batch_size: int = 16

    def __post_init__(self) -> None:
        for name in ("start_resolution", "max_resolution"):
            if not _is_power_of_two_from_4(getattr(self, name)):
                raise UserError(f"{name} {getattr(self, name)} is invalid: use a power of two >= 4")
        if self.start_resolution > self.max_resolution:
            raise UserError(
                f"start_resolution {self.start_resolution} is above max_resolution "
                f"{self.max_resolution}: lower start_resolution or raise max_resolution"
            )
        if self.stabilize_images < 1 or self.fade_images < 0:
            raise UserError(
                f"stabilize_images {self.stabilize_images} / fade_images {self.fade_images} are "
                "invalid: use stabilize_images >= 1 and fade_images >= 0"
            )
        # Keys from JSON or YAML configs arrive as strings.
        batch_sizes = {int(res): int(size) for res, size in self.batch_sizes.items()}
        for res, size in batch_sizes.items():
            if res not in self.resolutions() or size < 1:
                raise UserError(
                    f"batch_sizes entry {res}: {size} is invalid: keys must be among "
                    f"{list(self.resolutions())} and sizes >= 1"
                )
        if self.default_batch_size < 1:
            raise UserError(f"default_batch_size {self.default_batch_size} must be at least 1")
        object.__setattr__(self, "batch_sizes", batch_sizes)

    def resolutions(self) -> tuple[int, ...]:
        count = (self.max_resolution // self.start_resolution).bit_length()
        return tuple(self.start_resolution * 2**i for i in range(count))

    def batch_size_at(self, resolution: int) -> int:
        return self.batch_sizes.get(resolution, self.default_batch_size)

    def total_images(self) -> int:
        """Images shown when the final stabilise at max_resolution ends."""
        growths = len(self.resolutions()) - 1
        return self.stabilize_images + growths * (self.fade_images + self.stabilize_images)

    def phase_boundaries(self) -> list[tuple[int, int]]:
        """(images shown when a resolution starts, that resolution), in order."""
        boundaries = [(0, self.start_resolution)]
        start = self.stabilize_images
        for resolution in self.resolutions()[1:]:
            boundaries.append((start, resolution))
            start += self.fade_images + self.stabilize_images
        return boundaries

    def stage_at(self, images_seen: int) -> Growth:
        """The stage after `images_seen` real images; past total_images() it stays at the last."""
        if images_seen < 0:
            raise ValueError(f"images_seen must be >= 0, got {images_seen}")
        phase_index, (start, resolution) = [
            (index, boundary)
            for index, boundary in enumerate(self.phase_boundaries())
            if boundary[0] <= images_seen
        ][-1]
        into_phase = images_seen - start
        fading = phase_index > 0 and into_phase < self.fade_images
        alpha = into_phase / self.fade_images if fading else 1.0
        return Growth(resolution, alpha, self.batch_size_at(resolution), phase_index, fading)
