/**
 * ganzoo's runtime for Node: onnxruntime-node under the shared model code.
 *
 *   import { load } from 'ganzoo-runtime';
 *   const model = await load('dcgan-generator.onnx');
 *   const { images, height, width, channels } = await model.generate({ n: 16, seed: 7 });
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';

import { GanzooError } from './errors.js';
import { GanzooModel } from './model.js';

export { GanzooError } from './errors.js';
export { GanzooModel } from './model.js';
export { latents, standardNormal } from './latents.js';
export { parseMetadata, readProps } from './metadata.js';

/** Open a model from a file path or the file's bytes; `options` are onnxruntime session options. */
export async function load(source, options = {}) {
  let bytes = source;
  let name = 'model';
  if (typeof source === 'string') {
    name = basename(source);
    try {
      bytes = new Uint8Array(await readFile(source));
    } catch (error) {
      if (error.code === 'ENOENT') throw new GanzooError(`model file '${source}' does not exist; check the path`);
      throw error;
    }
  }
  // One intra-op thread, as the Python runtime (ganzoo_export.runtime.DEFAULT_THREADS) measured best.
  return GanzooModel.create(ort, bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, ...options }, name);
}
