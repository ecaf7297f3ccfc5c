/**
 * ganzoo's runtime for the browser: onnxruntime-web (WebAssembly) under the shared model code.
 *
 * onnxruntime-web fetches its .wasm file at run time from `ort.env.wasm.wasmPaths` (by default
 * next to its own script); `load()` sets it when given `wasmPaths`. Without cross-origin isolation
 * (COOP/COEP headers) browsers allow no threads, so one thread is the default.
 */
import * as ort from 'onnxruntime-web';

import { GanzooError } from './errors.js';
import { GanzooModel } from './model.js';

export { GanzooError } from './errors.js';
export { GanzooModel } from './model.js';
export { luma } from './images.js';
export { latents, standardNormal } from './latents.js';
export { parseMetadata, readProps } from './metadata.js';
export { ort };

/** Open a model from a URL or the file's bytes. `wasmPaths`: where onnxruntime-web's .wasm files are. */
export async function load(source, { wasmPaths, numThreads = 1, ...options } = {}) {
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = numThreads;
  let bytes = source;
  let name = 'model';
  if (typeof source === 'string' || source instanceof URL) {
    name = String(source).split('/').pop();
    const response = await fetch(source);
    if (!response.ok) throw new GanzooError(`could not fetch the model ${source} (HTTP ${response.status}); check the URL`);
    bytes = new Uint8Array(await response.arrayBuffer());
  }
  return GanzooModel.create(ort, bytes, { executionProviders: ['wasm'], ...options }, name);
}
