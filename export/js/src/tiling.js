/**
 * Run a fully convolutional translator on an image of any size in blended tiles: the same padding
 * and tiling rules, in the same order and precision, as ganzoo_export/tiling.py.
 *
 * Images are HWC Float32Arrays in [-1, 1]; `fn` takes and returns NCHW float32 (batch 1).
 */
import { GanzooError } from './errors.js';

/** Index into 0..length-1 for position i of a padded axis (numpy's "reflect" or "edge"). */
function sourceIndex(i, length, mode) {
  if (i < length) return i;
  if (mode === 'edge' || length === 1) return length - 1;
  const period = 2 * (length - 1);
  const folded = i % period;
  return folded < length ? folded : period - folded;
}

function padToMultiple(image, height, width, channels, multiple, mode) {
  const paddedHeight = Math.ceil(height / multiple) * multiple;
  const paddedWidth = Math.ceil(width / multiple) * multiple;
  if (paddedHeight === height && paddedWidth === width) return [image, height, width];
  const out = new Float32Array(paddedHeight * paddedWidth * channels);
  for (let y = 0; y < paddedHeight; y++) {
    const sy = sourceIndex(y, height, mode);
    for (let x = 0; x < paddedWidth; x++) {
      const sx = sourceIndex(x, width, mode);
      for (let c = 0; c < channels; c++) out[(y * paddedWidth + x) * channels + c] = image[(sy * width + sx) * channels + c];
    }
  }
  return [out, paddedHeight, paddedWidth];
}

async function runWindow(fn, image, width, channels, top, left, tileHeight, tileWidth) {
  const batch = new Float32Array(channels * tileHeight * tileWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < tileHeight; y++) {
      for (let x = 0; x < tileWidth; x++) {
        batch[(c * tileHeight + y) * tileWidth + x] = image[((top + y) * width + left + x) * channels + c];
      }
    }
  }
  const result = await fn(batch, [1, channels, tileHeight, tileWidth]);
  if (result.dims[0] !== 1 || result.dims[2] !== tileHeight || result.dims[3] !== tileWidth) {
    throw new GanzooError(`the model turned a ${tileHeight}x${tileWidth} input into ${result.dims.join('x')}; it must keep the size`);
  }
  return result;
}

function tileStarts(length, tile, overlap, multiple) {
  if (length <= tile) return [0];
  const stride = Math.max(multiple, Math.floor((tile - overlap) / multiple) * multiple);
  const starts = [];
  for (let start = 0; start < length - tile; start += stride) starts.push(start);
  starts.push(length - tile);
  return starts;
}

/** 1-D tile weights (float32, like numpy's): 1 inside, a cosine ramp on sides shared with a neighbour. */
function windowWeights(size, fadeIn, fadeOut, overlap) {
  const weights = new Float32Array(size).fill(1);
  if (overlap === 0) return weights;
  const margin = Math.floor(overlap / 4);
  const ramp = new Float32Array(overlap);
  for (let i = 0; i < overlap; i++) {
    const position = Math.min(1, Math.max(0, (i - margin + 0.5) / (overlap - 2 * margin)));
    ramp[i] = 0.5 - 0.5 * Math.cos(Math.PI * position);
  }
  if (fadeIn) for (let i = 0; i < overlap; i++) weights[i] = Math.fround(weights[i] * ramp[i]);
  if (fadeOut) for (let i = 0; i < overlap; i++) weights[size - overlap + i] = Math.fround(weights[size - overlap + i] * ramp[overlap - 1 - i]);
  return weights;
}

/**
 * Translate an HWC float image: pad to `multiple`, run whole or in overlapping tiles of `tile`,
 * cross-fade the overlaps, crop back. Returns an HWC Float32Array of the output's channels.
 */
export async function translateImage(image, height, width, channels, fn, { multiple, tile, overlap, paddingMode }) {
  tile = Math.floor(tile / multiple) * multiple;
  if (tile < multiple) throw new GanzooError(`tile must be at least the size multiple (${multiple})`);
  if (!(overlap >= 0 && overlap < tile)) throw new GanzooError(`overlap must be in [0, tile), got ${overlap} for tile ${tile}`);
  const [padded, paddedHeight, paddedWidth] = padToMultiple(image, height, width, channels, multiple, paddingMode);
  const tileHeight = Math.min(tile, paddedHeight);
  const tileWidth = Math.min(tile, paddedWidth);
  let outChannels = 0;
  let accumulated = null;
  const weightSum = new Float64Array(paddedHeight * paddedWidth);
  const single = Math.max(paddedHeight, paddedWidth) <= tile;
  for (const top of tileStarts(paddedHeight, tile, overlap, multiple)) {
    const rows = single ? new Float32Array(tileHeight).fill(1) : windowWeights(tileHeight, top > 0, top + tileHeight < paddedHeight, overlap);
    for (const left of tileStarts(paddedWidth, tile, overlap, multiple)) {
      const cols = single ? new Float32Array(tileWidth).fill(1) : windowWeights(tileWidth, left > 0, left + tileWidth < paddedWidth, overlap);
      const result = await runWindow(fn, padded, paddedWidth, channels, top, left, tileHeight, tileWidth);
      if (accumulated === null) {
        outChannels = result.dims[1];
        accumulated = new Float64Array(paddedHeight * paddedWidth * outChannels);
      }
      for (let y = 0; y < tileHeight; y++) {
        for (let x = 0; x < tileWidth; x++) {
          const weight = Math.fround(rows[y] * cols[x]); // numpy's outer product of float32 windows
          const pixel = (top + y) * paddedWidth + left + x;
          for (let c = 0; c < outChannels; c++) {
            accumulated[pixel * outChannels + c] += result.data[(c * tileHeight + y) * tileWidth + x] * weight;
          }
          weightSum[pixel] += weight;
        }
      }
    }
  }
  const out = new Float32Array(height * width * outChannels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const pixel = y * paddedWidth + x;
      for (let c = 0; c < outChannels; c++) out[(y * width + x) * outChannels + c] = accumulated[pixel * outChannels + c] / weightSum[pixel];
    }
  }
  return { data: out, height, width, channels: outChannels };
}
