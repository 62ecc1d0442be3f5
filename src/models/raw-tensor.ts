import { elementType, ElementType, NumericValues, TensorValues } from './element-types';

/**
 * Tensors as raw little-endian bytes, the form the Open Inference Protocol's binary extension (and
 * its gRPC raw contents) carry: fixed-size elements back to back, BOOL one byte each, FP16 as its
 * 16-bit patterns, and BYTES as a 4-byte little-endian length before each element's UTF-8 bytes.
 * Protocol-neutral: the caller says which tensor it is, for the messages.
 */

/** Why raw bytes do not make a tensor of the claimed type and size, as the client should read it. */
export class RawTensorError extends Error {}

/** The raw size of a tensor of fixed-size elements; undefined for BYTES, whose elements carry their own lengths. */
export function rawByteSize(type: ElementType, size: number): number | undefined {
  const { bytes } = elementType(type);
  return bytes === undefined ? undefined : bytes * size;
}

/**
 * The values of `size` elements of `type` held in `bytes`, which must be exactly theirs. The bytes
 * are copied, so the values stay valid (and aligned) whatever happens to the buffer they came in.
 */
export function fromRaw(type: ElementType, bytes: Uint8Array, size: number): TensorValues {
  const row = elementType(type);
  if (!row.array) return stringsFromRaw(bytes, size);
  const expected = row.bytes! * size;
  if (bytes.length !== expected) {
    throw new RawTensorError(
      `${size} ${row.v2} elements take ${expected} bytes (${row.bytes} each); got ${bytes.length}`,
    );
  }
  const copy = new ArrayBuffer(expected);
  new Uint8Array(copy).set(bytes);
  const values = new row.array(copy, 0, size);
  if (row.kind === 'bool') {
    // onnxruntime reads any non-zero byte as true, but a client that sends 2 has a bug worth naming.
    const at = (values as Uint8Array).findIndex((b) => b > 1);
    if (at >= 0) throw new RawTensorError(`BOOL elements are bytes 0 or 1; element ${at} is ${values[at]}`);
  }
  return values;
}

function stringsFromRaw(bytes: Uint8Array, size: number): string[] {
  // Checked before anything is allocated for `size` elements, which a hostile shape can make huge.
  if (size * 4 > bytes.length) {
    throw new RawTensorError(
      `${size} BYTES elements take at least ${size * 4} bytes (a 4-byte length each); got ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = new Array(size);
  let at = 0;
  for (let i = 0; i < size; i++) {
    if (at + 4 > bytes.length) {
      throw new RawTensorError(`BYTES element ${i} of ${size} has no 4-byte length: the data ends at byte ${at}`);
    }
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > bytes.length) {
      throw new RawTensorError(`BYTES element ${i} claims ${length} bytes; only ${bytes.length - at} remain`);
    }
    out[i] = Buffer.from(bytes.buffer, bytes.byteOffset + at, length).toString('utf8');
    at += length;
  }
  if (at !== bytes.length) {
    throw new RawTensorError(`${size} BYTES elements end at byte ${at}; ${bytes.length - at} bytes are left over`);
  }
  return out;
}

/** A tensor's values as raw bytes; numeric ones are a view on the values, not a copy. */
export function toRaw(type: ElementType, values: TensorValues): Buffer {
  if (elementType(type).array) {
    const numeric = values as NumericValues;
    return Buffer.from(numeric.buffer, numeric.byteOffset, numeric.byteLength);
  }
  const encoded = (values as string[]).map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.allocUnsafe(encoded.reduce((n, b) => n + 4 + b.length, 0));
  let at = 0;
  for (const b of encoded) {
    out.writeUInt32LE(b.length, at);
    b.copy(out, at + 4);
    at += 4 + b.length;
  }
  return out;
}
