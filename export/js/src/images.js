/**
 * Conversions between model tensors (float32 in [-1, 1]) and uint8 pixels, bit for bit as
 * ganzoo_export/images.py computes them in float32 with numpy.
 */

/** Round half to even, as numpy's rint does (Math.round rounds halves up). */
export function rint(x) {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** A float32 value in [-1, 1] -> a uint8 level (clipped). */
export function toLevel(value) {
  const clipped = Math.min(1, Math.max(-1, value));
  return rint(Math.fround(Math.fround(clipped + 1) * 127.5));
}

/** A uint8 level -> float32 in [-1, 1]. */
export function fromLevel(level) {
  return Math.fround(Math.fround(level / 127.5) - 1);
}

/** NCHW float32 (n images of c x h x w) -> NHWC uint8. */
export function nchwToNhwcUint8(data, n, c, h, w) {
  const out = new Uint8Array(n * h * w * c);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const plane = (i * c + ch) * h * w;
      for (let p = 0; p < h * w; p++) out[(i * h * w + p) * c + ch] = toLevel(data[plane + p]);
    }
  }
  return out;
}

/** Pillow's "L" conversion of RGB(A) pixels (ITU-R 601-2 luma), so grayscale inputs match Python's. */
export function luma(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}
