"""The classic 2-D mode-collapse benchmark's data: Gaussian mixtures on a ring and on a grid.

Following the literature:
- ring: 8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017, Unrolled GAN);
- grid: 5x5 Gaussians 2 apart, centred on the origin, std 0.05 (VEEGAN, Srivastava et al. 2017;
  PacGAN, Lin et al. 2018).

How generated points are scored against these modes is `ganzoo.metrics.mode_coverage`.
"""

from __future__ import annotations

import math

import torch


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
