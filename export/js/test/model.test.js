import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { GanzooError, load } from '../src/node.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const path = (name) => new URL(name, fixtures).pathname;
const expected = JSON.parse(readFileSync(new URL('expected.json', fixtures)));
const decode = (text) => new Uint8Array(Buffer.from(text, 'base64'));

/** Python's runtime (expected.json) and this one agree to the last level (onnxruntime builds may round apart). */
function assertCloseLevels(actual, wanted) {
  assert.equal(actual.length, wanted.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - wanted[i]));
  assert.ok(worst <= 1, `largest difference ${worst} levels`);
}

const rejectsWith = (promise, pattern) => assert.rejects(promise, (e) => e instanceof GanzooError && pattern.test(e.message));

test('generate gives Python\'s images for the same seed, at any batch size', async () => {
  const model = await load(path('generator.onnx'));
  const result = await model.generate({ n: 5, seed: 7 });
  assert.deepEqual([result.n, result.height, result.width, result.channels], [5, 16, 16, 1]);
  assertCloseLevels(result.images, decode(expected.generator_seed7_n5));
  const batched = await model.generate({ n: 5, seed: 7, batchSize: 2 });
  assert.deepEqual(batched.images, result.images);
  assert.notDeepEqual((await model.generate({ n: 5, seed: 8 })).images, result.images);
});

test('conditional models take class names, indices, or cycle through the classes', async () => {
  const model = await load(path('conditional.onnx'));
  const twos = await model.generate({ n: 4, seed: 3, labels: 'two' });
  assertCloseLevels(twos.images, decode(expected.conditional_seed3_two));
  assert.deepEqual((await model.generate({ n: 4, seed: 3, labels: [2, '2', 'two', 2] })).images, twos.images);
  assertCloseLevels((await model.generate({ n: 4, seed: 3 })).images, decode(expected.conditional_seed3_cycled));
  await rejectsWith(model.generate({ n: 2, labels: 'seven' }), /class "seven" is not valid for this model; use an index in 0\.\.2 or one of: zero, one, two/);
  await rejectsWith(model.generate({ n: 2, labels: 1.5 }), /class 1.5 is not valid/);
  await rejectsWith(model.generate({ n: 2, labels: [0, 1, 2] }), /3 labels for 2 images/);
});

test('generateBatches streams any number of images in bounded memory', async () => {
  const model = await load(path('generator.onnx'));
  const batches = model.generateBatches({ n: 1e9, seed: 7, batchSize: 2 });
  const first = await batches.next();
  const second = await batches.next();
  assert.deepEqual([first.value.start, second.value.start], [0, 2]);
  const whole = (await model.generate({ n: 4, seed: 7 })).images;
  assert.deepEqual(second.value.images, whole.subarray(2 * 256, 4 * 256));
  await rejectsWith(model.generate({ n: 1e7, seed: 7 }), /do not fit in one array; use generateBatches/);
});

test('translate pads, tiles and blends like Python, keeping odd sizes', async () => {
  const model = await load(path('translator.onnx'));
  const [height, width, channels] = expected.translator_image_shape;
  const data = decode(expected.translator_image);
  const result = await model.translate({ data, width, height, channels });
  assert.deepEqual([result.height, result.width, result.channels], [height, width, channels]);
  assertCloseLevels(result.data, decode(expected.translated)); // 45x38 runs as 32-pixel tiles
});

/** The generator with its graph bytes scrambled but its model card intact. */
function corrupted() {
  const bytes = new Uint8Array(readFileSync(path('generator.onnx')));
  for (let i = 40; i < 1040; i++) bytes[i] ^= 0x5a;
  return bytes;
}

test('bad input gets one line', async () => {
  const generator = await load(path('generator.onnx'));
  const translator = await load(path('translator.onnx'));
  const image = (w, h) => ({ data: new Uint8Array(w * h * 3), width: w, height: h, channels: 3 });
  const cases = [
    [() => generator.generate({ n: 2.5 }), /n must be a whole number, got 2.5/],
    [() => generator.generate({ n: 0 }), /n must be at least 1/],
    [() => generator.generate({ n: 2, seed: -1 }), /seed must be from 0/],
    [() => generator.generate({ n: 2, labels: 1 }), /unconditional; leave labels out/],
    [() => generator.translate(image(8, 8)), /is a generate model; use generate instead of translate/],
    [() => translator.translate(image(3, 5)), /the image is 3x5 pixels; this model needs at least 8x8: upscale it first/],
    [() => translator.translate({ ...image(8, 8), channels: 1 }), /expected \{data, width, height, channels\}/],
    [() => translator.translate(image(16, 16), { tile: 4 }), /tile 4 is smaller than the 8 pixels/],
    [() => load(path('missing.onnx')), /does not exist/],
    [() => load(new Uint8Array(0)), /is empty/],
    [() => load(readFileSync(path('generator.onnx')).subarray(0, 4000)), /truncated/],
    [() => load(corrupted()), /onnxruntime could not open 'model' .*damaged file/],
  ];
  for (const [call, pattern] of cases) await rejectsWith(call(), pattern); // one at a time: no stray rejections
  assert.equal((await translator.translate(image(5, 7))).data.length, 5 * 7 * 3); // padded up to 8x8 and cropped back
});
