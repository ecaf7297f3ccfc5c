"""The seeded latent stream of docs/model-format.md: known answers, random access, distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganzoo_export import latents as L
from ganzoo_export.errors import RuntimeInputError

MASK = (1 << 64) - 1


def mix64(z: int) -> int:
    """SplitMix64's output function in plain Python integers, as the spec writes it."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def spec_value(seed: int, k: int) -> np.float32:
    """Value k of a seed's stream, straight from the spec, one value at a time."""
    key = mix64((seed + L.GAMMA) & MASK)
    pair = k // 2
    w0 = mix64((key + (2 * pair + 1) * L.GAMMA) & MASK)
    w1 = mix64((key + (2 * pair + 2) * L.GAMMA) & MASK)
    u1 = ((w0 >> 11) + 1) * 2.0**-53
    u2 = (w1 >> 11) * 2.0**-53
    radius = math.sqrt(-2.0 * math.log(u1))
    angle = L.TWO_PI * u2
    return np.float32(radius * (math.cos(angle) if k % 2 == 0 else math.sin(angle)))


def test_splitmix64_matches_the_published_first_output():
    # Vigna's splitmix64.c seeded with 0 first returns 0xe220a8397b1dcdaf.
    assert L.seed_key(0) == 0xE220A8397B1DCDAF == mix64(L.GAMMA)


def test_known_answers_in_the_spec():
    # docs/model-format.md lists these; export/js/test/latents.test.js checks the same numbers.
    assert [hex(int(w)) for w in L.words(7, 0, 2)] == ["0xb8b4c2977eabce45", "0xa65305fd338ec8fe"]
    expected = np.array([-0.47612911462783813, -0.6527819037437439, -0.8680472373962402, -0.6666666865348816])
    np.testing.assert_array_equal(L.standard_normal(7, 0, 4), expected.astype(np.float32))


@pytest.mark.parametrize("seed, start, count", [(0, 0, 9), (7, 3, 20), (2**53 - 1, 1_000_001, 5)])
def test_vectorized_stream_equals_the_spec_value_by_value(seed, start, count):
    expected = np.array([spec_value(seed, k) for k in range(start, start + count)], dtype=np.float32)
    np.testing.assert_array_equal(L.standard_normal(seed, start, count), expected)


def test_any_slice_of_images_is_the_same_as_drawing_them_all():
    everything = L.latents(5, 0, 10, (3, 1, 1))
    assert everything.shape == (10, 3, 1, 1) and everything.dtype == np.float32
    for first, count in [(0, 1), (3, 4), (9, 1), (1, 8)]:
        np.testing.assert_array_equal(L.latents(5, first, count, (3, 1, 1)), everything[first : first + count])
    assert not np.array_equal(L.latents(6, 0, 10, (3, 1, 1)), everything)


def test_the_stream_is_standard_normal():
    values = L.standard_normal(11, 0, 400_000).astype(np.float64)
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01
    assert abs(np.mean(np.abs(values) < 1.0) - 0.6827) < 0.005  # one-sigma share
    neighbours = np.corrcoef(values[:-1], values[1:])[0, 1]  # the cosine and sine of one pair
    assert abs(neighbours) < 0.01


def test_nearby_seeds_give_unrelated_streams():
    a, b = L.standard_normal(100, 0, 10_000), L.standard_normal(101, 0, 10_000)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    # Neither word stream is a shifted copy of the other (64-bit words do not repeat by chance).
    assert not np.isin(L.words(100, 0, 10_000), L.words(101, 0, 10_000)).any()


@pytest.mark.parametrize("seed", [-1, 2**53, 1.5, True, "3"])
def test_invalid_seeds_are_refused(seed):
    with pytest.raises(RuntimeInputError, match="seed must be"):
        L.check_seed(seed)
