import { createHash } from 'node:crypto';
import { elementType, ElementType, isElementType, NumericValues } from '../models/element-types';
import { TensorData } from '../models/model.types';
import { product, sliceValues } from '../models/tensor-rows';

/**
 * What one cache entry is: the outputs of one instance of one model version, keyed by the bytes
 * that instance feeds the model. Keys are taken after validation and encoding, so every spelling of
 * the same input (feature array, named features in any order, `5.1` or `5.10` or `51e-1`) is one
 * key, and an input only collides with another that feeds the model exactly the same tensors.
 */

/** Bumped whenever the key derivation or the stored form changes, so old entries are never misread. */
const FORMAT = 'v1';

/** A tensor as stored: element type, dimensions, and the values (base64 of the bytes, or the strings). */
interface StoredTensor {
  readonly t: ElementType;
  readonly d: readonly number[];
  readonly v: string | readonly string[];
}

/** One instance's outputs by output name, JSON-safe, as Redis holds them. */
type StoredOutputs = Readonly<Record<string, StoredTensor>>;

/** A model version as the cache sees it: its name, number and the digest of its file. */
export interface CachedVersion {
  readonly model: string;
  readonly version: number;
  readonly digest: string;
}

const bytesOf = (data: NumericValues) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/**
 * The cache key of each row of a run's feeds (one key per instance), or of the whole feed when
 * the model has no batch dimension (`rows` is then 1 and every tensor is the instance).
 * The version's file digest is part of the key, so a model file replaced under the same version
 * number never serves the old file's answers.
 */
export function rowKeys(
  prefix: string,
  target: CachedVersion,
  feeds: Readonly<Record<string, TensorData>>,
  rows: number,
  batched: boolean,
): string[] {
  const names = Object.keys(feeds).sort();
  const base = `${prefix}${target.model}:${target.version}:${target.digest.slice(0, 16)}:`;
  const keys: string[] = [];
  for (let row = 0; row < rows; row++) {
    const hash = createHash('sha256').update(FORMAT);
    for (const name of names) {
      const tensor = feeds[name];
      const dims = batched ? tensor.dims.slice(1) : tensor.dims;
      const size = product(dims);
      const values = batched ? sliceValues(tensor.data, row * size, (row + 1) * size) : tensor.data;
      // Name, type and shape are hashed with the values, each length-prefixed, so no two inputs can run together.
      hash.update(`\0${name.length}:${name}\0${tensor.type}\0${dims.join('x')}\0`);
      if (Array.isArray(values)) hash.update(JSON.stringify(values));
      else hash.update(bytesOf(values));
    }
    keys.push(base + hash.digest('base64url'));
  }
  return keys;
}

export function toStored(outputs: Readonly<Record<string, TensorData>>): StoredOutputs {
  const stored: Record<string, StoredTensor> = {};
  for (const [name, t] of Object.entries(outputs)) {
    stored[name] = { t: t.type, d: t.dims, v: Array.isArray(t.data) ? t.data : bytesOf(t.data).toString('base64') };
  }
  return stored;
}

/** Reads a stored entry back; undefined when it is not in the form this version writes (a foreign or damaged value). */
export function fromStored(stored: unknown): Record<string, TensorData> | undefined {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return undefined;
  const outputs: Record<string, TensorData> = {};
  for (const [name, value] of Object.entries(stored as Record<string, Partial<StoredTensor>>)) {
    const { t, d, v } = value ?? {};
    if (!t || !isElementType(t) || !Array.isArray(d) || !d.every((n) => Number.isInteger(n) && n >= 0))
      return undefined;
    const count = product(d as number[]);
    const { array } = elementType(t);
    if (!array) {
      if (!Array.isArray(v) || v.length !== count || !v.every((s) => typeof s === 'string')) return undefined;
      outputs[name] = { type: t, dims: d, data: [...v] };
      continue;
    }
    if (typeof v !== 'string') return undefined;
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length !== count * array.BYTES_PER_ELEMENT) return undefined;
    // A fresh, aligned buffer: Buffer's pool offset need not be a multiple of the element size.
    const aligned = new ArrayBuffer(bytes.length);
    new Uint8Array(aligned).set(bytes);
    outputs[name] = { type: t, dims: d, data: new array(aligned, 0, count) };
  }
  return Object.keys(outputs).length > 0 ? outputs : undefined;
}
