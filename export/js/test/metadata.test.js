import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { GanzooError } from '../src/errors.js';
import { parseMetadata, readProps } from '../src/metadata.js';

const fixture = (name) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));

test('the model card is read from the protobuf bytes', () => {
  const meta = parseMetadata(readProps(fixture('conditional.onnx')));
  assert.equal(meta.format, '2');
  assert.equal(meta.task, 'generate');
  assert.deepEqual(meta.class_names, ['zero', 'one', 'two']);
  assert.equal(meta.num_classes, 3);
  assert.equal(meta.latent_dim, 8);
  assert.equal(meta.latent_distribution, 'normal');
  assert.deepEqual(meta.inputs.map((spec) => spec.role), ['latent', 'label']);
  assert.deepEqual([meta.height, meta.width, meta.channels, meta.color], [16, 16, 1, 'grayscale']);
  assert.deepEqual(meta.value_range, [-1, 1]);
  assert.deepEqual(meta.extra, { dataset: 'digits' });
});

test('a translator card states its sizes and padding', () => {
  const meta = parseMetadata(readProps(fixture('translator.onnx')));
  assert.deepEqual([meta.task, meta.size_multiple, meta.min_size, meta.max_size, meta.padding_mode], ['translate', 4, 8, 32, 'reflect']);
  assert.equal(meta.height, null);
});

test('format 1 properties load with the values format 1 implied', () => {
  const meta = parseMetadata({
    'ganzoo.format': '1', 'ganzoo.plugin': 'cyclegan', 'ganzoo.plugin_version': '0.1.0', 'ganzoo.ganzoo_version': '0.1.0',
    'ganzoo.task': 'translate', 'ganzoo.channels': '3', 'ganzoo.size_multiple': '4',
    'ganzoo.inputs': '[{"name": "source", "role": "image", "shape": ["batch", 3, "height", "width"]}]',
  });
  assert.deepEqual([meta.format, meta.padding_mode, meta.min_size, meta.color, meta.precision], ['1', 'reflect', null, 'RGB', 'fp32']);
});

test('bad metadata and broken files get one line', () => {
  const props = readProps(fixture('generator.onnx'));
  const cases = [
    [{ ...props, 'ganzoo.format': '3' }, /format 3 is not supported/],
    [{ ...props, 'ganzoo.channels': 'three' }, /malformed/],
    [Object.fromEntries(Object.entries(props).filter(([key]) => key !== 'ganzoo.task')), /lacks ganzoo.task/],
    [{}, /no 'ganzoo.format' metadata/],
  ];
  for (const [given, message] of cases) assert.throws(() => parseMetadata(given), (e) => e instanceof GanzooError && message.test(e.message));
  const whole = fixture('generator.onnx');
  assert.throws(() => readProps(whole.subarray(0, whole.length - 5)), (e) => e instanceof GanzooError && /truncated/.test(e.message));
});
