/**
 * An exported ganzoo generator or translator, driven by the model card inside the file.
 *
 * Independent of which onnxruntime build runs it: node.js passes onnxruntime-node, web.js passes
 * onnxruntime-web. The rules (seeds, labels, padding, tiling, rounding) are those of the Python
 * runtime, ganzoo_export/runtime.py, so the same call gives the same images in both.
 */
import { GanzooError } from './errors.js';
import { checkSeed, latents } from './latents.js';
import { fromLevel, nchwToNhwcUint8, toLevel } from './images.js';
import { parseMetadata, readProps } from './metadata.js';
import { translateImage } from './tiling.js';

export const DEFAULT_TILE = 512;
export const DEFAULT_OVERLAP = 32;
export const DEFAULT_BATCH_SIZE = 64;
export const MAX_RESULT_BYTES = 2 ** 30; // generate() refuses more; generateBatches() streams any amount
const NAMES_SHOWN_IN_ERRORS = 20;

function checkCount(name, value, minimum = 1) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new GanzooError(`${name} must be a whole number, got ${JSON.stringify(value)}`);
  }
  if (value < minimum) throw new GanzooError(`${name} must be at least ${minimum}, got ${value}`);
  return value;
}

export class GanzooModel {
  /** Use `load()` from the node or web entry point; this wraps an open session and the file's card. */
  constructor(ort, session, metadata, name = 'model') {
    this.ort = ort;
    this.session = session;
    this.name = name;
    this.metadata = metadata;
    this.inputTypes = {};
    for (const item of session.inputMetadata ?? []) this.inputTypes[item.name] = item.type;
    const missing = this.metadata.inputs.filter((spec) => !session.inputNames.includes(spec.name)).map((spec) => spec.name);
    if (missing.length) throw new GanzooError(`metadata names inputs ${missing.join(', ')} that the graph lacks; re-export the model`);
  }

  /** Open `bytes` (a Uint8Array holding an .onnx file) with `ort` and session `options`. */
  static async create(ort, bytes, options = {}, name = 'model') {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new GanzooError(`model file '${name}' is empty (0 bytes); export or download it again`);
    }
    // The card is read first: a truncated file fails here with one line instead of deep in onnxruntime.
    const metadata = parseMetadata(readProps(bytes));
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', ...options });
    } catch (error) {
      const first = String(error?.message ?? error).split('\n')[0];
      throw new GanzooError(
        `onnxruntime could not open '${name}' (${first}); a damaged file needs exporting or downloading again, ` +
          "and in a browser onnxruntime-web's .wasm/.mjs files must be served at wasmPaths",
      );
    }
    return new GanzooModel(ort, session, metadata, name);
  }

  spec(role) {
    const spec = this.metadata.inputs.find((item) => item.role === role);
    if (!spec) throw new GanzooError(`the model's metadata declares no '${role}' input; re-export it`);
    return spec;
  }

  requireTask(task) {
    if (this.metadata.task !== task) {
      const other = task === 'generate' ? 'translate' : 'generate';
      throw new GanzooError(`'${this.name}' is a ${this.metadata.task} model; use ${other} instead of ${task}`);
    }
  }

  /** A class index from an index or a class name (digit strings count as indices). */
  labelIndex(label) {
    const names = this.metadata.class_names ?? [];
    const classes = this.metadata.num_classes ?? 0;
    if (typeof label === 'string' && names.includes(label)) return names.indexOf(label);
    let value = label;
    if (typeof label === 'string' && /^\s*-?\d+\s*$/.test(label)) value = Number(label);
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < classes) return value;
    let valid = `an index in 0..${classes - 1}`;
    if (names.length) {
      valid += ` or one of: ${names.slice(0, NAMES_SHOWN_IN_ERRORS).join(', ')}${names.length > NAMES_SHOWN_IN_ERRORS ? ', ...' : ''}`;
    }
    throw new GanzooError(`class ${JSON.stringify(label)} is not valid for this model; use ${valid}`);
  }

  labelPicker(labels, n) {
    if (this.metadata.num_classes === null) throw new GanzooError('the model takes labels but its metadata lacks ganzoo.num_classes; re-export it');
    if (labels === undefined || labels === null) return (index) => index % this.metadata.num_classes;
    if (!Array.isArray(labels)) {
      const fixed = this.labelIndex(labels);
      return () => fixed;
    }
    const chosen = labels.map((label) => this.labelIndex(label));
    if (chosen.length !== n) throw new GanzooError(`got ${chosen.length} labels for ${n} images; give one label or one per image`);
    return (index) => chosen[index];
  }

  async run(feeds) {
    try {
      const outputs = await this.session.run(feeds);
      return outputs[this.session.outputNames[0]];
    } catch (error) {
      const shapes = Object.entries(feeds).map(([name, tensor]) => `${name} [${tensor.dims.join(', ')}]`).join(', ');
      throw new GanzooError(`onnxruntime failed on ${shapes} (${String(error?.message ?? error).split('\n')[0]})`);
    }
  }

  /**
   * Yields {start, images} for n images, batch by batch: images is NHWC uint8. Latents are drawn
   * per batch from the seed and each image's index, so any n streams in bounded memory.
   */
  async *generateBatches({ n, seed = 0, labels, batchSize = DEFAULT_BATCH_SIZE } = {}) {
    this.requireTask('generate');
    checkCount('n', n);
    checkCount('batchSize', batchSize);
    checkSeed(seed);
    const meta = this.metadata;
    if (meta.latent_distribution !== 'normal') {
      throw new GanzooError(`the model wants '${meta.latent_distribution}' latents; this runtime draws normal ones: upgrade it`);
    }
    const latent = this.spec('latent');
    const labelSpec = meta.inputs.find((item) => item.role === 'label');
    if (!labelSpec && labels !== undefined && labels !== null) throw new GanzooError('this model is unconditional; leave labels out');
    const labelOf = labelSpec ? this.labelPicker(labels, n) : null;
    const dims = latent.shape.slice(1);
    if (!dims.every(Number.isInteger)) throw new GanzooError(`input '${latent.name}' must have fixed sizes after the batch dimension`);
    const size = dims.reduce((a, b) => a * b, 1);
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const feeds = { [latent.name]: new this.ort.Tensor('float32', latents(seed, start, count, size), [count, ...dims]) };
      if (labelSpec) {
        const indices = Array.from({ length: count }, (_, i) => labelOf(start + i));
        const type = this.inputTypes[labelSpec.name] ?? 'int64';
        const data = type === 'int32' ? Int32Array.from(indices) : BigInt64Array.from(indices, BigInt);
        feeds[labelSpec.name] = new this.ort.Tensor(type === 'int32' ? 'int32' : 'int64', data, [count]);
      }
      const output = await this.run(feeds);
      const [, c, h, w] = output.dims;
      yield { start, images: nchwToNhwcUint8(output.data, count, c, h, w), height: h, width: w, channels: c };
    }
  }

  /** {images (NHWC uint8), n, height, width, channels}; the same seed gives the same images at any batch size. */
  async generate({ n, seed = 0, labels, batchSize = DEFAULT_BATCH_SIZE } = {}) {
    checkCount('n', n);
    const meta = this.metadata;
    if (meta.height !== null && n * meta.height * meta.width * meta.channels > MAX_RESULT_BYTES) {
      throw new GanzooError(`${n} images of ${meta.height}x${meta.width}x${meta.channels} do not fit in one array; use generateBatches()`);
    }
    let result = null;
    for await (const batch of this.generateBatches({ n, seed, labels, batchSize })) {
      const per = batch.height * batch.width * batch.channels;
      result ??= { images: new Uint8Array(n * per), n, height: batch.height, width: batch.width, channels: batch.channels };
      result.images.set(batch.images, batch.start * per);
    }
    return result;
  }

  /** The translation before rounding: {data (HWC Float32Array in [-1, 1]), height, width, channels}. */
  async translateToFloat(image, { tile, overlap } = {}) {
    this.requireTask('translate');
    const meta = this.metadata;
    const { data, width, height, channels } = image ?? {};
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== width * height * channels) {
      throw new GanzooError('expected {data, width, height, channels} with data an HWC Uint8Array of width*height*channels values');
    }
    if (channels !== meta.input_channels) {
      const color = meta.input_channels === 1 ? 'grayscale' : 'RGB';
      throw new GanzooError(`the model takes ${meta.input_channels}-channel images but this one has ${channels}; load it as ${color}`);
    }
    const multiple = meta.size_multiple ?? 1;
    const smallest = Math.max(meta.min_size ?? 1, multiple);
    if (Math.min(Math.ceil(height / multiple), Math.ceil(width / multiple)) * multiple < smallest) {
      throw new GanzooError(`the image is ${width}x${height} pixels; this model needs at least ${smallest}x${smallest}: upscale it first`);
    }
    tile = tile === undefined ? (meta.max_size ?? DEFAULT_TILE) : checkCount('tile', tile);
    const usable = Math.floor(tile / multiple) * multiple;
    if (usable < smallest) throw new GanzooError(`tile ${tile} is smaller than the ${smallest} pixels this model needs`);
    overlap = overlap === undefined ? Math.min(DEFAULT_OVERLAP, Math.floor(usable / 4)) : overlap;
    const spec = this.spec('image');
    const pixels = Float32Array.from(data, fromLevel);
    const fn = (batch, dims) => this.run({ [spec.name]: new this.ort.Tensor('float32', batch, dims) });
    return translateImage(pixels, height, width, channels, fn, {
      multiple,
      tile,
      overlap,
      paddingMode: meta.padding_mode ?? 'reflect',
    });
  }

  /** Translate an HWC uint8 image at its own size: {data (HWC Uint8Array), width, height, channels}. */
  async translate(image, options = {}) {
    const result = await this.translateToFloat(image, options);
    return { data: Uint8Array.from(result.data, toLevel), width: result.width, height: result.height, channels: result.channels };
  }
}
