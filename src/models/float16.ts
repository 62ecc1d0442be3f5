/**
 * IEEE 754 half precision, which onnxruntime-node carries as the raw 16-bit patterns in a
 * Uint16Array (Node 20 has no Float16Array). Round to nearest, ties to even, as the hardware does.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Infinity or NaN
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: Infinity
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit leading 1 in, then round.
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const rest = mantissa & 0x1fff;
  let bits = (e << 10) | (mantissa >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && bits & 1)) bits++; // a carry into the exponent is still right
  e = bits >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : bits);
}

export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The largest finite half-precision value. */
export const FLOAT16_MAX = 65504;
