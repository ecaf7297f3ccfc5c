import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GanzooError } from '../src/errors.js';
import { checkSeed, latents, seedKey, standardNormal, words } from '../src/latents.js';

test('SplitMix64 gives the published first output for seed 0', () => {
  assert.equal(seedKey(0), 0xe220a8397b1dcdafn);
});

test('the known answers of docs/model-format.md (tests/test_latents.py checks the same in Python)', () => {
  assert.deepEqual(words(7, 0, 2), [0xb8b4c2977eabce45n, 0xa65305fd338ec8fen]);
  assert.deepEqual(Array.from(standardNormal(7, 0, 4)), [
    -0.47612911462783813, -0.6527819037437439, -0.8680472373962402, -0.6666666865348816,
  ]);
  assert.deepEqual(Array.from(standardNormal(2 ** 53 - 1, 1000001, 2)), [0.3746344745159149, -1.0452992916107178]);
});

test('any slice of images equals drawing them all', () => {
  const all = latents(5, 0, 10, 3);
  for (const [first, count] of [[0, 1], [3, 4], [9, 1], [1, 8]]) {
    assert.deepEqual(latents(5, first, count, 3), all.subarray(first * 3, (first + count) * 3));
  }
  assert.notDeepEqual(latents(6, 0, 10, 3), all);
});

test('the stream is standard normal', () => {
  const values = standardNormal(11, 0, 100000);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(variance - 1) < 0.02, `${mean} ${variance}`);
});

test('invalid seeds are refused with one line', () => {
  for (const seed of [-1, 2 ** 53, 1.5, '3', true, undefined]) {
    assert.throws(() => checkSeed(seed), (error) => error instanceof GanzooError && /seed must be/.test(error.message));
  }
});
