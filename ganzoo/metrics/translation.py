"""Paired image-translation scores: how close translated images are to their ground truth."""

from __future__ import annotations

import kornia.metrics
import torch
from torch import Tensor

SSIM_WINDOW = 11  # Wang et al. 2004
# Identical images have infinite PSNR; capping keeps averages finite and reports JSON-safe.
PSNR_CAP_DB = 100.0


@torch.no_grad()
def translation_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean per-image PSNR (dB) and SSIM of NCHW images in [-1, 1]."""
    if pred.shape != target.shape or pred.dim() != 4:
        shapes = f"{tuple(pred.shape)} and {tuple(target.shape)}"
        raise ValueError(f"pred and target must be NCHW of one shape, got {shapes}")
    pred01 = ((pred.float() + 1) / 2).clamp(0, 1)
    target01 = ((target.float() + 1) / 2).clamp(0, 1)
    psnr = torch.stack([kornia.metrics.psnr(p, t, max_val=1.0) for p, t in zip(pred01, target01)])
    ssim = kornia.metrics.ssim(pred01, target01, SSIM_WINDOW, max_val=1.0).mean(dim=(1, 2, 3))
    return {
        "psnr": psnr.clamp(max=PSNR_CAP_DB).mean().item(),
        "ssim": ssim.mean().item(),
    }
