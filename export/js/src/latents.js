/**
 * Seeded latents that mean the same thing in every language: SplitMix64 words + Box-Muller.
 *
 * The JavaScript twin of ganzoo_export/latents.py; docs/model-format.md specifies the stream.
 * Value k of a seed's stream (image i, dimension j of a d-dimensional latent is k = i * d + j):
 *
 *   key      = mix64(seed + GAMMA)                (all arithmetic mod 2**64)
 *   word(t)  = mix64(key + (t + 1) * GAMMA)
 *   u1       = ((word(2p) >> 11) + 1) / 2**53      in (0, 1], p = floor(k / 2)
 *   u2       = (word(2p + 1) >> 11) / 2**53        in [0, 1)
 *   value(k) = float32(sqrt(-2 ln u1) * (cos if k is even else sin)(TWO_PI * u2))
 */
import { GanzooError } from './errors.js';

const MASK64 = (1n << 64n) - 1n;
export const GAMMA = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
export const TWO_PI = 6.283185307179586;
export const MAX_SEED = Number.MAX_SAFE_INTEGER; // 2**53 - 1, as in Python

/** SplitMix64's output function on a 64-bit word (a BigInt in [0, 2**64)). */
export function mix64(x) {
  x = ((x ^ (x >> 30n)) * MIX1) & MASK64;
  x = ((x ^ (x >> 27n)) * MIX2) & MASK64;
  return x ^ (x >> 31n);
}

export function checkSeed(seed) {
  if (typeof seed !== 'number' || !Number.isInteger(seed)) {
    throw new GanzooError(`seed must be a whole number from 0 to ${MAX_SEED}, got ${JSON.stringify(seed)}`);
  }
  if (seed < 0 || seed > MAX_SEED) {
    throw new GanzooError(`seed must be from 0 to ${MAX_SEED} (2**53 - 1), got ${seed}`);
  }
  return seed;
}

/** The first SplitMix64 output of the seed: nearby seeds get unrelated streams. */
export function seedKey(seed) {
  return mix64((BigInt(checkSeed(seed)) + GAMMA) & MASK64);
}

/** `count` words (BigInt) of the seed's stream, from word `start` on. */
export function words(seed, start, count) {
  const key = seedKey(seed);
  const out = new Array(count);
  for (let t = 0; t < count; t++) {
    out[t] = mix64((key + BigInt(start + t + 1) * GAMMA) & MASK64);
  }
  return out;
}

/** Values start .. start + count - 1 of the seed's N(0, 1) stream, as a Float32Array. */
export function standardNormal(seed, start, count) {
  const out = new Float32Array(count);
  if (count <= 0) return out;
  const key = seedKey(seed);
  const word = (t) => mix64((key + BigInt(t + 1) * GAMMA) & MASK64);
  for (let k = start; k < start + count; ) {
    const pair = Math.floor(k / 2);
    // 53-bit integers convert to doubles exactly.
    const u1 = (Number(word(2 * pair) >> 11n) + 1) * 2 ** -53;
    const u2 = Number(word(2 * pair + 1) >> 11n) * 2 ** -53;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = TWO_PI * u2;
    if (k % 2 === 0) {
      out[k - start] = radius * Math.cos(angle);
      k += 1;
      if (k >= start + count) break;
    }
    out[k - start] = radius * Math.sin(angle);
    k += 1;
  }
  return out;
}

/** Latents of images first .. first + count - 1, each of `size` values, as one Float32Array. */
export function latents(seed, first, count, size) {
  return standardNormal(seed, first * size, count * size);
}
