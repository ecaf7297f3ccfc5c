"""The classic 2-D mode-collapse benchmark: Gaussian mixtures on a ring and on a grid.

Data, following the literature:
- ring: 8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017, Unrolled GAN);
- grid: 5x5 Gaussians 2 apart, centred on the origin, std 0.05 (VEEGAN, Srivastava et al. 2017;
  PacGAN, Lin et al. 2018).

Scoring, VEEGAN's convention: a sample is *high quality* when it lies within 3 std of the
nearest mode centre; a mode is *covered* when its high-quality samples reach a minimum share of
all samples. VEEGAN evaluates 2,500 samples; the minimum is PacGAN's explicit rule, 20 of 2,500
(0.8%), so a mode touched by a handful of stray samples does not count.
"""

from __future__ import annotations

import math

import torch

from ganzoo.errors import UserError
from ganzoo.metrics.neighbours import as_float_tensor

MIN_MODE_SHARE = 20 / 2500


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(coords, coords)


def mixture_samples(
    centers: torch.Tensor, n: int, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n points (n, 2): a uniformly chosen centre plus isotropic Gaussian noise."""
    modes = torch.randint(len(centers), (n,), generator=generator)
    return centers[modes] + std * torch.randn(n, centers.shape[1], generator=generator)


def ring_of_gaussians(
    n: int,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.02,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    return mixture_samples(ring_centers(modes, radius), n, std, generator)


def grid_of_gaussians(
    n: int,
    side: int = 5,
    spacing: float = 2.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    return mixture_samples(grid_centers(side, spacing), n, std, generator)


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
