/**
 * The page `ganzoo web` writes: runs model.onnx in the browser with onnxruntime-web (WebAssembly,
 * one thread, files in ./ort/). Generators draw a grid laid out like Python's make_grid (2-pixel
 * black gaps, ceil(sqrt(n)) per row); translators translate a dropped-in image at its own size.
 * body[data-status] is "loading", "ready", "working", "done" or "error", for tests and scripts.
 */
import { load, luma } from './ganzoo/web.js';

const $ = (id) => document.getElementById(id);
const GAP = 2;

function setStatus(state, text = '') {
  document.body.dataset.status = state;
  $('status').textContent = text;
  $('status').classList.toggle('error', state === 'error');
}

/** RGBA pixels for a canvas from HWC uint8 with 1 or 3 channels. */
function toRgba(data, width, height, channels, target = new Uint8ClampedArray(width * height * 4)) {
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) target[p * 4 + c] = data[p * channels + (channels === 1 ? 0 : c)];
    target[p * 4 + 3] = 255;
  }
  return target;
}

function drawGrid({ images, n, height, width, channels }) {
  const columns = Math.max(1, Math.min(Math.ceil(Math.sqrt(n)), n));
  const rows = Math.ceil(n / columns);
  const canvas = $('grid');
  canvas.width = columns * (width + GAP) + GAP;
  canvas.height = rows * (height + GAP) + GAP;
  const context = canvas.getContext('2d');
  context.fillStyle = '#000';
  context.fillRect(0, 0, canvas.width, canvas.height);
  const size = height * width * channels;
  for (let i = 0; i < n; i++) {
    const tile = new ImageData(toRgba(images.subarray(i * size, (i + 1) * size), width, height, channels), width, height);
    context.putImageData(tile, GAP + (i % columns) * (width + GAP), GAP + Math.floor(i / columns) * (height + GAP));
  }
  canvas.style.width = `${Math.min(canvas.width * 4, 900)}px`;
}

async function generate(model) {
  setStatus('working', 'generating…');
  const n = Number($('count').value);
  const seed = Number($('seed').value);
  const choice = $('class').value;
  const labels = model.metadata.num_classes === null || choice === '' ? undefined : choice;
  const started = performance.now();
  const result = await model.generate({ n, seed, labels });
  drawGrid(result);
  setStatus('done', `${n} images, seed ${seed}, in ${Math.round(performance.now() - started)} ms`);
}

function draw(canvas, data, width, height, channels) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(toRgba(data, width, height, channels), width, height), 0, 0);
}

async function translate(model, file) {
  setStatus('working', `translating ${file.name}…`);
  // EXIF orientation applied and no colour management, as Pillow reads files in Python.
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, width, height).data;
  const channels = model.metadata.input_channels;
  const data = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    if (channels === 1) data[p] = luma(rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]);
    else for (let c = 0; c < 3; c++) data[p * 3 + c] = rgba[p * 4 + c];
  }
  draw($('source'), data, width, height, channels);
  const started = performance.now();
  const out = await model.translate({ data, width, height, channels });
  draw($('result'), out.data, out.width, out.height, out.channels);
  setStatus('done', `${file.name}: ${width}x${height} in ${Math.round(performance.now() - started)} ms`);
}

function describe(meta) {
  const name = meta.direction ? `${meta.plugin} ${meta.direction}` : meta.plugin;
  document.title = `${name} (ganzoo)`;
  $('title').textContent = `${name}: ${meta.task === 'generate' ? 'image generator' : 'image translator'}`;
  $('description').textContent = meta.description ?? '';
  const facts = [];
  if (meta.data_name) facts.push(`training data: ${meta.data_name}${meta.data_license ? ` (licence: ${meta.data_license})` : ''}`);
  if (meta.steps) facts.push(`${meta.steps.toLocaleString('en')} steps`);
  facts.push(`precision ${meta.precision}`);
  $('facts').textContent = facts.join(' · ');
}

async function main() {
  // onnxruntime-web resolves a relative wasmPaths against its own script, so give it a full URL.
  const model = await load('./model.onnx', { wasmPaths: new URL('./ort/', window.location.href).href });
  const meta = model.metadata;
  describe(meta);
  const guard = (work) => () => work().catch((error) => setStatus('error', error.message));
  if (meta.task === 'generate') {
    $('generate').hidden = false;
    if (meta.num_classes !== null) {
      $('class-field').hidden = false;
      const names = meta.class_names ?? Array.from({ length: meta.num_classes }, (_, i) => String(i));
      $('class').append(new Option('every class in turn', ''), ...names.map((name) => new Option(name, name)));
    }
    $('run-generate').addEventListener('click', guard(() => generate(model)));
  } else {
    $('translate').hidden = false;
    const drop = $('drop');
    const take = (file) => file && guard(() => translate(model, file))();
    $('file').addEventListener('change', () => take($('file').files[0]));
    drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (event) => { event.preventDefault(); drop.classList.remove('over'); take(event.dataTransfer.files[0]); });
  }
  setStatus('ready', 'ready');
}

main().catch((error) => setStatus('error', error.message));
