"""Fréchet distance (FID), Kernel Inception Distance (KID) and Inception Score (IS) on features.

All functions take numpy arrays and compute in float64; the feature network is chosen elsewhere.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ganzoo.errors import UserError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, N-1) of (N, D) features, as pytorch-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise UserError(
            f"feature statistics need at least 2 feature vectors shaped (N, D); got {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2): no complex parts and no failure on
    singular covariances, unlike a general matrix square root.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise UserError(
            f"statistics of different shapes cannot be compared: mean {mu1.shape} vs {mu2.shape}, "
            f"covariance {sigma1.shape} vs {sigma2.shape}; compute both with one feature network"
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt, 0.0))


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    m, n = len(a), len(b)
    k_aa, k_bb, k_ab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kid(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased squared MMD with the cubic
    polynomial kernel, averaged over random subsets drawn without replacement from each set.

    Returns (mean, std) over subsets. `subset_size` larger than either set is reduced to fit.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise UserError(
            f"KID needs two feature sets shaped (N, D) with one D; got {a.shape} and {b.shape}"
        )
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise UserError(f"KID needs at least 2 samples in each set; got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(
            a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)]
        )
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std())


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split (Salimans et al. 2016); returns (mean, std) over splits."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) < splits:
        raise UserError(
            f"the Inception Score needs (N, classes) logits with N >= splits ({splits}); "
            f"got {logits.shape}"
        )
    log_p = logits - logsumexp(logits, axis=1, keepdims=True)
    scores = []
    for part in np.array_split(log_p, splits):
        # In log space throughout, so classes with vanishing probability cannot produce 0 * inf.
        log_marginal = logsumexp(part, axis=0) - np.log(len(part))
        kl = (np.exp(part) * (part - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
