/**
 * The ganzoo model card in an ONNX file (docs/model-format.md), read without onnxruntime.
 *
 * onnxruntime's JavaScript API does not expose a model's metadata_props, so the few top-level
 * fields of the ModelProto are read here straight from the protobuf bytes.
 */
import { GanzooError } from './errors.js';

const METADATA_PROPS = 14; // ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}
export const READABLE_FORMATS = ['1', '2'];
const ROLES = ['latent', 'label', 'image'];
const TEXT_FIELDS = [
  'plugin', 'plugin_version', 'ganzoo_version', 'task', 'latent_distribution', 'layout', 'color',
  'direction', 'padding_mode', 'precision', 'data_name', 'data_license', 'description',
];
const INT_FIELDS = [
  'channels', 'latent_dim', 'num_classes', 'size_multiple', 'min_size', 'max_size', 'resolution',
  'training_size', 'steps', 'images_seen',
];
const REQUIRED = ['plugin', 'plugin_version', 'ganzoo_version', 'task', 'inputs', 'channels'];
const PADDING_MODES = ['reflect', 'edge'];

const truncated = () => new GanzooError('the model file is truncated or not an ONNX model; export or download it again');

function readVarint(bytes, position) {
  let value = 0;
  let scale = 1;
  for (let shift = 0; shift < 64; shift += 7) {
    if (position >= bytes.length) throw truncated();
    const byte = bytes[position++];
    value += (byte & 0x7f) * scale; // exact below 2**53, which covers every length in a file
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
  throw truncated();
}

/** (field number, wire type, payload start, payload end) of each field of a protobuf message. */
function* fields(bytes, start = 0, end = bytes.length) {
  let position = start;
  while (position < end) {
    let tag;
    [tag, position] = readVarint(bytes, position);
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    let payloadStart = position;
    if (wire === 0) [, position] = readVarint(bytes, position);
    else if (wire === 1) position += 8;
    else if (wire === 5) position += 4;
    else if (wire === 2) {
      let length;
      [length, payloadStart] = readVarint(bytes, position);
      position = payloadStart + length;
    } else throw truncated();
    if (position > end || number === 0) throw truncated();
    yield [number, wire, payloadStart, position];
  }
}

/** The model's metadata_props as a plain object of strings. */
export function readProps(bytes) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const props = {};
  for (const [number, wire, start, end] of fields(bytes)) {
    if (number !== METADATA_PROPS || wire !== 2) continue;
    let key = '';
    let value = '';
    for (const [inner, innerWire, innerStart, innerEnd] of fields(bytes, start, end)) {
      if (innerWire !== 2) continue;
      const text = decoder.decode(bytes.subarray(innerStart, innerEnd));
      if (inner === 1) key = text;
      else if (inner === 2) value = text;
    }
    props[key] = value;
  }
  return props;
}

const optionalInt = (value) => (value === undefined || value === 'dynamic' ? null : parseStrictInt(value));

function parseStrictInt(text) {
  if (!/^-?\d+$/.test(text)) throw new GanzooError(`the model's ganzoo metadata is malformed ('${text}' is not an integer); re-export it`);
  return Number(text);
}

function parseJson(text, key) {
  try {
    return JSON.parse(text);
  } catch {
    throw new GanzooError(`the model's ganzoo metadata is malformed (${key} is not JSON); re-export it`);
  }
}

/**
 * The model card from metadata_props, with the fields format 1 implied filled in, as
 * ModelMetadata.from_props does in Python. Keys are the format's field names (snake_case).
 */
export function parseMetadata(props) {
  const version = props['ganzoo.format'];
  if (version === undefined) {
    throw new GanzooError("the model has no 'ganzoo.format' metadata; export it with ganzoo to run it here");
  }
  if (!READABLE_FORMATS.includes(version)) {
    throw new GanzooError(
      `ganzoo model format ${version} is not supported (this version reads ${READABLE_FORMATS.join(', ')}); ` +
        'upgrade the ganzoo runtime or re-export the model',
    );
  }
  const missing = REQUIRED.filter((key) => props[`ganzoo.${key}`] === undefined);
  if (missing.length) {
    throw new GanzooError(`the model's metadata lacks ${missing.map((key) => `ganzoo.${key}`).join(', ')}; re-export the model`);
  }
  const meta = { format: version };
  for (const key of TEXT_FIELDS) meta[key] = props[`ganzoo.${key}`] ?? null;
  for (const key of INT_FIELDS) meta[key] = optionalInt(props[`ganzoo.${key}`]);
  meta.inputs = parseJson(props['ganzoo.inputs'], 'ganzoo.inputs');
  for (const spec of meta.inputs) {
    if (!ROLES.includes(spec.role)) throw new GanzooError(`input '${spec.name}' has role '${spec.role}'; re-export the model`);
  }
  meta.class_names = props['ganzoo.class_names'] === undefined ? null : parseJson(props['ganzoo.class_names'], 'ganzoo.class_names');
  meta.evaluation = props['ganzoo.evaluation'] === undefined ? null : parseJson(props['ganzoo.evaluation'], 'ganzoo.evaluation');
  meta.value_range = parseJson(props['ganzoo.value_range'] ?? '[-1, 1]', 'ganzoo.value_range');
  meta.height = optionalInt(props['ganzoo.height']);
  meta.width = optionalInt(props['ganzoo.width']);
  meta.precision ??= 'fp32';
  meta.layout ??= 'NCHW';
  meta.color ??= meta.channels === 1 ? 'grayscale' : 'RGB';
  // A translator's input may have other channels than its output (pix2pix: 1-channel edges -> RGB).
  const imageInput = meta.inputs.find((spec) => spec.role === 'image');
  meta.input_channels = imageInput && Number.isInteger(imageInput.shape[1]) ? imageInput.shape[1] : meta.channels;
  if (meta.latent_distribution === null && meta.inputs.some((spec) => spec.role === 'latent')) meta.latent_distribution = 'normal';
  if (meta.padding_mode === null && meta.task === 'translate') meta.padding_mode = 'reflect';
  if (meta.padding_mode !== null && !PADDING_MODES.includes(meta.padding_mode)) {
    throw new GanzooError(`padding mode '${meta.padding_mode}' is unknown; upgrade the ganzoo runtime`);
  }
  if (meta.class_names !== null && meta.num_classes === null) meta.num_classes = meta.class_names.length;
  meta.extra = {};
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith('ganzoo.extra.')) meta.extra[key.slice('ganzoo.extra.'.length)] = value;
  }
  return meta;
}
