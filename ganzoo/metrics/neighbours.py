"""Chunked Euclidean nearest-neighbour search, shared by precision-recall and memorization."""

from __future__ import annotations

import numpy as np
import torch

CHUNK = 1024


def as_float_tensor(vectors) -> torch.Tensor:
    if isinstance(vectors, torch.Tensor):
        return vectors.detach().float().cpu()
    return torch.tensor(np.asarray(vectors), dtype=torch.float32)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T).clamp_min_(0.0)


def nearest(
    queries, references, k: int = 1, exclude: np.ndarray | None = None, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each (N, k), of the k nearest references to every query, nearest first.

    `exclude[i]` is a reference index query i may not match (itself, when both sets are one).
    Candidates are found with the fast matrix-product formula; their distances are then
    recomputed directly, so an exact copy comes out at exactly 0.
    """
    q, r = as_float_tensor(queries), as_float_tensor(references)
    available = len(r) - (exclude is not None)
    if k > available:
        raise ValueError(f"asked for {k} neighbours among {available} references")
    distances, indices = [], []
    for start in range(0, len(q), chunk):
        block = q[start : start + chunk]
        d2 = squared_distances(block, r)
        if exclude is not None:
            excluded = torch.as_tensor(exclude[start : start + chunk])
            d2[torch.arange(len(block)), excluded] = float("inf")
        idx = d2.topk(k, dim=1, largest=False).indices
        exact = (block[:, None, :] - r[idx]).norm(dim=2)
        exact, order = exact.sort(dim=1)
        distances.append(exact.double())
        indices.append(idx.gather(1, order))
    return torch.cat(distances).numpy(), torch.cat(indices).numpy()


def within_any_radius(queries, references, radii: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """For each query: is it inside the ball of radius radii[j] around some reference j?"""
    q, r = as_float_tensor(queries), as_float_tensor(references)
    r2 = torch.as_tensor(radii, dtype=torch.float32).pow(2)
    starts = range(0, len(q), chunk)
    hits = [(squared_distances(q[s : s + chunk], r) <= r2).any(dim=1) for s in starts]
    return torch.cat(hits).numpy()
