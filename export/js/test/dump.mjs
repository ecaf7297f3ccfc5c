/**
 * What this runtime computes for a request, as JSON, so tests/test_js_runtime.py can hold it
 * against Python's. Reads {"model", "task", ...} on stdin; large arrays travel as base64.
 *
 *   generate:  {"model", "task": "generate", "seed", "n", "labels"?}
 *     -> {"latents": float32, "raw": float32 (the graph's output on those latents), "images": uint8}
 *   translate: {"model", "task": "translate", "image": uint8 HWC, "height", "width", "channels", "tile"?}
 *     -> {"translated": float32 HWC before rounding, "images": uint8 HWC}
 */
import { load } from '../src/node.js';
import { latents } from '../src/latents.js';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString());
const base64 = (array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
const model = await load(request.model);

if (request.task === 'generate') {
  const latent = model.metadata.inputs.find((spec) => spec.role === 'latent');
  const dims = latent.shape.slice(1);
  const values = latents(request.seed, 0, request.n, dims.reduce((a, b) => a * b, 1));
  const feeds = { [latent.name]: new model.ort.Tensor('float32', values, [request.n, ...dims]) };
  const label = model.metadata.inputs.find((spec) => spec.role === 'label');
  if (label) {
    const picker = model.labelPicker(request.labels, request.n);
    feeds[label.name] = new model.ort.Tensor('int64', BigInt64Array.from({ length: request.n }, (_, i) => BigInt(picker(i))), [request.n]);
  }
  const raw = await model.run(feeds);
  const generated = await model.generate({ n: request.n, seed: request.seed, labels: request.labels });
  console.log(JSON.stringify({ latents: base64(values), raw: base64(raw.data), images: base64(generated.images) }));
} else {
  const image = { data: new Uint8Array(Buffer.from(request.image, 'base64')), width: request.width, height: request.height, channels: request.channels };
  const options = request.tile ? { tile: request.tile } : {};
  const translated = await model.translateToFloat(image, options);
  const rounded = await model.translate(image, options);
  console.log(JSON.stringify({ translated: base64(translated.data), images: base64(rounded.data) }));
}
