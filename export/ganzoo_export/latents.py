"""Seeded latents that mean the same thing in every language: SplitMix64 words + Box-Muller.

The generator is specified in docs/model-format.md ("Latents") so that an app in any language
draws the latents ganzoo draws; export/js/src/latents.js is the JavaScript twin. Value ``k`` of a
seed's stream (image ``i``, dimension ``j`` of a ``d``-dimensional latent is ``k = i * d + j``):

    key      = mix64(seed + GAMMA)                      (all arithmetic mod 2**64)
    word(t)  = mix64(key + (t + 1) * GAMMA)             (the stream of SplitMix64 seeded with key)
    u1       = ((word(2p) >> 11) + 1) / 2**53            in (0, 1], p = k // 2
    u2       = (word(2p + 1) >> 11) / 2**53              in [0, 1)
    value(k) = float32(sqrt(-2 ln u1) * (cos if k is even else sin)(TWO_PI * u2))

Every value is a function of (seed, k) alone, so any image of any batch can be drawn on its own:
the same seed gives the same images at any batch size, and long runs never hold every latent.
"""

from __future__ import annotations

import numpy as np

from ganzoo_export.errors import RuntimeInputError

GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2**64 / golden ratio, odd
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1
TWO_PI = 6.283185307179586  # the float64 nearest to 2 pi, written out so every language uses it
MAX_SEED = 2**53 - 1  # the largest integer JavaScript numbers hold exactly


def check_seed(seed: object) -> int:
    """``seed`` as an int, or a one-line error naming what a seed must be."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise RuntimeInputError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise RuntimeInputError(f"seed must be from 0 to {MAX_SEED} (2**53 - 1), got {seed}")
    return int(seed)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 words (numpy wraps uint64 arithmetic mod 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(MIX1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(MIX2)
    return x ^ (x >> np.uint64(31))


def seed_key(seed: int) -> int:
    """The first SplitMix64 output of ``seed``: nearby seeds get unrelated streams."""
    return int(mix64(np.array([(check_seed(seed) + GAMMA) & MASK64], dtype=np.uint64))[0])


def words(seed: int, start: int, count: int) -> np.ndarray:
    """``count`` uint64 words of the stream of ``seed``, from word ``start`` on."""
    counters = np.arange(start + 1, start + 1 + count, dtype=np.uint64)
    return mix64(np.uint64(seed_key(seed)) + counters * np.uint64(GAMMA))


def standard_normal(seed: int, start: int, count: int) -> np.ndarray:
    """Values ``start`` .. ``start + count - 1`` of the seed's N(0, 1) stream, as float32."""
    if count <= 0:
        return np.zeros(0, dtype=np.float32)
    first_pair, last_pair = start // 2, (start + count - 1) // 2
    stream = words(seed, 2 * first_pair, 2 * (last_pair - first_pair + 1))
    mantissas = (stream >> np.uint64(11)).astype(np.float64)  # 53-bit integers: exact in float64
    u1 = (mantissas[0::2] + 1.0) * 2.0**-53
    u2 = mantissas[1::2] * 2.0**-53
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = TWO_PI * u2
    pairs = np.empty(2 * len(u1), dtype=np.float64)
    pairs[0::2] = radius * np.cos(angle)
    pairs[1::2] = radius * np.sin(angle)
    offset = start - 2 * first_pair
    return pairs[offset : offset + count].astype(np.float32)


def latents(seed: int, first: int, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """Latents of images ``first`` .. ``first + count - 1`` (each of ``shape``) for ``seed``."""
    size = int(np.prod(shape))
    values = standard_normal(seed, first * size, count * size)
    return values.reshape(count, *shape)
