"""Mode coverage of the 2-D mixtures in `ganzoo.data.toys`: how many modes a generator reaches.

VEEGAN's convention: a sample is *high quality* when it lies within 3 std of the nearest mode
centre; a mode is *covered* when its high-quality samples reach a minimum share of all samples.
VEEGAN evaluates 2,500 samples; the minimum is PacGAN's explicit rule, 20 of 2,500 (0.8%), so a
mode touched by a handful of stray samples does not count.
"""

from __future__ import annotations

import torch

from ganzoo.errors import UserError
from ganzoo.metrics.neighbours import as_float_tensor

MIN_MODE_SHARE = 20 / 2500


def mode_coverage(samples, centers, std: float, min_share: float = MIN_MODE_SHARE) -> dict:
    """Modes covered and the share of high-quality samples (see the module docstring)."""
    points, centres = as_float_tensor(samples), as_float_tensor(centers)
    if points.ndim != 2 or points.shape[1] != centres.shape[1] or len(points) == 0:
        raise UserError(
            f"samples must be shaped (N, {centres.shape[1]}) with N > 0; got {tuple(points.shape)}"
        )
    distance, owner = torch.cdist(points, centres).min(dim=1)
    high_quality = distance <= 3 * std
    counts = torch.bincount(owner[high_quality], minlength=len(centres))
    covered = (counts > 0) & (counts >= min_share * len(points))
    return {
        "modes_covered": int(covered.sum()),
        "num_modes": len(centres),
        "high_quality_share": float(high_quality.double().mean()),
        "samples_per_mode": counts.tolist(),
        "num_samples": len(points),
        "std": std,
        "min_share": min_share,
    }
