import { ErrorDetail, InferenceFailedError, InvalidInputError } from '../common/domain.errors';
import { FLOAT16_MAX, fromHalfBits, toHalfBits } from './float16';
import { ElementType, FLOAT_TYPES, ModelSignature, TensorData, TensorSpec, TensorValues } from './model.types';
import { product } from './tensor-rows';

/**
 * Turns JSON instances into tensors checked against a model's signature, and tensors back into
 * JSON. Every problem is reported with the path of the offending field so a client knows what to fix.
 */

/** JSON value of one output for one instance: a number, string, boolean or nested array of them. */
export type JsonTensor = number | string | boolean | JsonTensor[];
export type InstanceOutputs = Record<string, JsonTensor>;

/** One call to the runtime: its feeds and how many instances it carries. */
export interface EncodedRun {
  readonly feeds: Record<string, TensorData>;
  readonly count: number;
}

type Scalar = number | bigint | string;
interface ParsedTensor {
  readonly shape: number[];
  readonly values: Scalar[];
}

const MAX_DETAILS = 20;

class Problems {
  readonly details: ErrorDetail[] = [];
  add(path: string, message: string): void {
    if (this.details.length < MAX_DETAILS) this.details.push({ path: path || 'body', message });
  }
  get any(): boolean {
    return this.details.length > 0;
  }
}

/** The range of each integer type that fits a JSON number exactly (64-bit types are checked as bigints). */
export const INT_RANGES: Partial<Record<ElementType, [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const FLOAT32_MAX = 3.4028234663852886e38;

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const shapeText = (dims: readonly number[]) => `[${dims.map((d) => (d === -1 ? '*' : d)).join(', ')}]`;

/** Checks one element against the element type; returns the value to store or an error message. */
function element(value: unknown, type: ElementType): Scalar | { error: string } {
  if (FLOAT_TYPES.has(type)) {
    if (typeof value !== 'number' || !Number.isFinite(value))
      return { error: `must be a finite number, got ${show(value)}` };
    if (type === 'float32' && Math.abs(value) > FLOAT32_MAX) return { error: `${value} is outside the float32 range` };
    if (type === 'float16' && Math.abs(value) > FLOAT16_MAX) return { error: `${value} is outside the float16 range` };
    return value;
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') return { error: `must be true or false, got ${show(value)}` };
    return value ? 1 : 0;
  }
  if (type === 'string') {
    if (typeof value !== 'string') return { error: `must be a string, got ${show(value)}` };
    return value;
  }
  if (type === 'int64' || type === 'uint64') {
    // Integers beyond 2^53 cannot be exact JSON numbers in JavaScript, so they may come as decimal strings.
    let big: bigint;
    if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
    else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) big = BigInt(value);
    else return { error: `must be a whole number (as a decimal string beyond 2^53), got ${show(value)}` };
    const [min, max] = type === 'int64' ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
    if (big < min || big > max) return { error: `${big} is outside the ${type} range` };
    return big;
  }
  const [min, max] = INT_RANGES[type]!;
  if (typeof value !== 'number' || !Number.isInteger(value))
    return { error: `must be a whole number, got ${show(value)}` };
  if (value < min || value > max) return { error: `${value} is outside the ${type} range [${min}, ${max}]` };
  return value;
}

/**
 * Reads a nested array (or a scalar) into a shape and flat values, checking that it is rectangular,
 * that it fits the expected shape (-1 = any size), and that every element fits the type. A flat
 * array is accepted for a fully fixed multi-dimensional shape when the element count matches.
 */
function readTensor(
  value: unknown,
  expected: readonly number[],
  type: ElementType,
  path: string,
  problems: Problems,
): ParsedTensor | undefined {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v) && shape.length <= expected.length; v = v[0]) shape.push(v.length);

  const fixed = !expected.includes(-1);
  const fits = shape.length === expected.length && expected.every((d, i) => d === -1 || d === shape[i]);
  const flatFits = !fits && shape.length === 1 && expected.length > 1 && fixed && shape[0] === product(expected);
  if (!fits && !flatFits) {
    const want =
      expected.length === 0
        ? 'a single value'
        : `shape ${shapeText(expected)}${fixed ? ` (${product(expected)} values)` : ''}`;
    const got = shape.length === 0 ? show(value) : `shape ${shapeText(shape)}`;
    problems.add(path, `expected ${want}, got ${got}`);
    return undefined;
  }

  const values: Scalar[] = [];
  const before = problems.details.length;
  const walk = (v: unknown, depth: number, at: string): void => {
    if (depth === shape.length) {
      const result = element(v, type);
      if (typeof result === 'object') problems.add(at, result.error);
      else values.push(result);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      problems.add(
        at,
        `expected an array of ${shape[depth]} items (rows must all have the same length), got ${show(v)}`,
      );
      return;
    }
    for (let i = 0; i < v.length && problems.details.length < MAX_DETAILS; i++) walk(v[i], depth + 1, `${at}[${i}]`);
  };
  walk(value, 0, path);
  if (problems.details.length > before) return undefined;
  return { shape: flatFits ? [...expected] : shape, values };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function perInstanceShape(spec: TensorSpec, signature: ModelSignature): readonly number[] {
  return signature.batchable ? spec.shape.slice(1) : spec.shape;
}

function readFeatures(
  features: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (signature.inputs.length !== 1) {
    problems.add(
      path,
      `this model has several inputs (${signature.inputs.map((i) => i.name).join(', ')}); send them as "inputs": { "<name>": <values> }`,
    );
    return undefined;
  }
  const spec = signature.inputs[0];
  const shape = perInstanceShape(spec, signature);
  if (isPlainObject(features)) {
    const names = signature.features;
    if (!names) {
      problems.add(path, 'this model has no feature names configured; send features as an array of values');
      return undefined;
    }
    const unknown = Object.keys(features).filter((k) => !names.includes(k));
    const missing = names.filter((n) => !Object.prototype.hasOwnProperty.call(features, n));
    for (const k of unknown) problems.add(join(path, k), `unknown feature; expected ${names.join(', ')}`);
    for (const n of missing) problems.add(join(path, n), 'missing feature');
    if (unknown.length || missing.length) return undefined;
    const values: Scalar[] = [];
    for (const n of names) {
      const value = element(features[n], spec.type);
      if (typeof value === 'object') problems.add(join(path, n), value.error);
      else values.push(value);
    }
    if (values.length < names.length) return undefined;
    return new Map([[spec.name, { shape: shape.includes(-1) ? [names.length] : [...shape], values }]]);
  }
  if (!Array.isArray(features)) {
    problems.add(
      path,
      `features must be an array of values${signature.features ? ' or an object of named features' : ''}, got ${show(features)}`,
    );
    return undefined;
  }
  const parsed = readTensor(features, shape, spec.type, path, problems);
  return parsed && new Map([[spec.name, parsed]]);
}

function readInputs(
  inputs: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (!isPlainObject(inputs)) {
    problems.add(
      path,
      `inputs must be an object keyed by input name (${signature.inputs.map((i) => i.name).join(', ')}), got ${show(inputs)}`,
    );
    return undefined;
  }
  const names = signature.inputs.map((i) => i.name);
  for (const key of Object.keys(inputs)) {
    if (!names.includes(key))
      problems.add(join(path, key), `unknown input; this model's inputs are ${names.join(', ')}`);
  }
  const parsed = new Map<string, ParsedTensor>();
  for (const spec of signature.inputs) {
    if (!Object.prototype.hasOwnProperty.call(inputs, spec.name)) {
      problems.add(
        join(path, spec.name),
        `missing input (${spec.type}, shape ${shapeText(perInstanceShape(spec, signature))})`,
      );
      continue;
    }
    const tensor = readTensor(
      inputs[spec.name],
      perInstanceShape(spec, signature),
      spec.type,
      join(path, spec.name),
      problems,
    );
    if (tensor) parsed.set(spec.name, tensor);
  }
  return problems.any ? undefined : parsed;
}

/**
 * Reads one instance in any of its forms: a feature array, `{ features: [...] | {...} }`,
 * `{ inputs: {...} }`, or (in batches) an object of named features.
 */
function readInstance(
  instance: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (Array.isArray(instance)) return readFeatures(instance, signature, path, problems);
  if (!isPlainObject(instance)) {
    problems.add(
      path,
      `expected an array of features, an object of named features, or { "inputs": {...} }, got ${show(instance)}`,
    );
    return undefined;
  }
  const hasFeatures = instance.features !== undefined && Object.prototype.hasOwnProperty.call(instance, 'features');
  const hasInputs = instance.inputs !== undefined && Object.prototype.hasOwnProperty.call(instance, 'inputs');
  if (hasFeatures && hasInputs) {
    problems.add(path, 'send either "features" or "inputs", not both');
    return undefined;
  }
  if (hasFeatures || hasInputs) {
    const extra = Object.keys(instance).filter((k) => k !== 'features' && k !== 'inputs');
    for (const k of extra) problems.add(join(path, k), 'unknown field');
    if (extra.length) return undefined;
    return hasFeatures
      ? readFeatures(instance.features, signature, join(path, 'features'), problems)
      : readInputs(instance.inputs, signature, join(path, 'inputs'), problems);
  }
  if (Object.keys(instance).length === 0) {
    problems.add(path, 'empty instance: send "features" or "inputs"');
    return undefined;
  }
  return readFeatures(instance, signature, path, problems);
}

function typedArray(type: ElementType, values: Scalar[]): TensorValues {
  switch (type) {
    case 'float32':
      return Float32Array.from(values as number[]);
    case 'float64':
      return Float64Array.from(values as number[]);
    case 'float16':
      return Uint16Array.from(values as number[], toHalfBits);
    case 'int8':
      return Int8Array.from(values as number[]);
    case 'int16':
      return Int16Array.from(values as number[]);
    case 'int32':
      return Int32Array.from(values as number[]);
    case 'int64':
      return BigInt64Array.from(values as bigint[]);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values as number[]);
    case 'uint16':
      return Uint16Array.from(values as number[]);
    case 'uint32':
      return Uint32Array.from(values as number[]);
    case 'uint64':
      return BigUint64Array.from(values as bigint[]);
    case 'string':
      return values as string[];
  }
}

/**
 * Validates instances against the signature and packs them into runs: one run for all instances
 * when the model has a batch dimension, one run per instance otherwise. Throws InvalidInputError
 * listing every problem found (up to a bound).
 */
export function encodeInstances(
  signature: ModelSignature,
  instances: readonly unknown[],
  pathOf: (index: number) => string,
): EncodedRun[] {
  const problems = new Problems();
  const parsed: Map<string, ParsedTensor>[] = [];
  for (let i = 0; i < instances.length && problems.details.length < MAX_DETAILS; i++) {
    const one = readInstance(instances[i], signature, pathOf(i), problems);
    if (one) parsed.push(one);
  }
  if (problems.any) throw new InvalidInputError("The request does not match the model's inputs", problems.details);

  if (!signature.batchable) {
    return parsed.map((p) => ({
      count: 1,
      feeds: Object.fromEntries(
        signature.inputs.map((s) => {
          const t = p.get(s.name)!;
          return [s.name, { type: s.type, dims: t.shape, data: typedArray(s.type, t.values) }];
        }),
      ),
    }));
  }

  const feeds: Record<string, TensorData> = {};
  for (const spec of signature.inputs) {
    const first = parsed[0].get(spec.name)!.shape;
    const values: Scalar[] = [];
    parsed.forEach((p, i) => {
      const t = p.get(spec.name)!;
      if (t.shape.join() !== first.join()) {
        problems.add(
          `${pathOf(i)}`,
          `input '${spec.name}' has shape ${shapeText(t.shape)} but the first instance's is ${shapeText(first)}; instances in one batch must share a shape`,
        );
      }
      for (const v of t.values) values.push(v);
    });
    feeds[spec.name] = { type: spec.type, dims: [parsed.length, ...first], data: typedArray(spec.type, values) };
  }
  if (problems.any) throw new InvalidInputError('The instances of the batch do not share one shape', problems.details);
  return [{ feeds, count: parsed.length }];
}

/** A whole tensor as a tensor protocol (Open Inference Protocol) sends it: batch dimension included. */
export interface TensorInput {
  readonly name: string;
  readonly type: ElementType;
  readonly shape: readonly number[];
  /** Row-major values, flat or nested. */
  readonly data: unknown;
}

/** Flattens nested arrays iteratively, in row-major order (depth is already bounded by the JSON guard). */
function flatten(data: unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const stack: unknown[][] = [data];
  const index: number[] = [0];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const i = index[index.length - 1]++;
    if (i >= top.length) {
      stack.pop();
      index.pop();
    } else if (Array.isArray(top[i])) {
      stack.push(top[i] as unknown[]);
      index.push(0);
    } else out.push(top[i]);
  }
  return out;
}

/**
 * Checks whole tensors (name, element type, shape, values) against the model's inputs and packs
 * them into one run. The first dimension is the batch for a batchable model, so every input must
 * agree on it; `count` is that many rows (1 for a model without a batch dimension).
 */
export function encodeTensors(
  signature: ModelSignature,
  inputs: readonly TensorInput[],
  pathOf: (index: number) => string,
): EncodedRun {
  const problems = new Problems();
  const given = new Map<string, number>();
  inputs.forEach((input, i) => {
    if (given.has(input.name)) problems.add(`${pathOf(i)}.name`, `input '${input.name}' is given twice`);
    given.set(input.name, i);
    if (!signature.inputs.some((s) => s.name === input.name)) {
      problems.add(
        `${pathOf(i)}.name`,
        `unknown input '${input.name}'; this model's inputs are ${signature.inputs.map((s) => s.name).join(', ')}`,
      );
    }
  });
  for (const spec of signature.inputs) {
    if (!given.has(spec.name))
      problems.add('inputs', `missing input '${spec.name}' (${spec.type}, shape ${shapeText(spec.shape)})`);
  }
  if (problems.any) throw new InvalidInputError("The request does not match the model's inputs", problems.details);

  const feeds: Record<string, TensorData> = {};
  for (const spec of signature.inputs) {
    const i = given.get(spec.name)!;
    const { type, shape, data } = inputs[i];
    const path = pathOf(i);
    if (type !== spec.type) {
      problems.add(`${path}.datatype`, `input '${spec.name}' holds ${spec.type}, not ${type}`);
      continue;
    }
    const fits = shape.length === spec.shape.length && spec.shape.every((d, k) => d === -1 || d === shape[k]);
    if (!fits) {
      problems.add(`${path}.shape`, `input '${spec.name}' has shape ${shapeText(spec.shape)}; got ${shapeText(shape)}`);
      continue;
    }
    if (!Array.isArray(data)) {
      problems.add(`${path}.data`, `data must be an array, got ${show(data)}`);
      continue;
    }
    const flat = flatten(data);
    const size = product(shape);
    if (flat.length !== size) {
      problems.add(`${path}.data`, `shape ${shapeText(shape)} holds ${size} values; data has ${flat.length}`);
      continue;
    }
    const values: Scalar[] = new Array(size);
    let bad = false;
    for (let k = 0; k < size && problems.details.length < MAX_DETAILS; k++) {
      const value = element(flat[k], type);
      if (typeof value === 'object') {
        problems.add(`${path}.data[${k}]`, value.error);
        bad = true;
      } else values[k] = value;
    }
    if (!bad) feeds[spec.name] = { type, dims: [...shape], data: typedArray(type, values) };
  }
  if (problems.any) throw new InvalidInputError("The request does not match the model's inputs", problems.details);

  if (!signature.batchable) return { feeds, count: 1 };
  const rows = new Set(Object.values(feeds).map((t) => t.dims[0]));
  if (rows.size > 1) {
    throw new InvalidInputError('The inputs disagree on the batch size', [
      { path: 'inputs', message: `first dimensions ${[...rows].join(', ')}; they must be equal` },
    ]);
  }
  return { feeds, count: [...rows][0] };
}

/**
 * One element as JSON: int64/uint64 beyond 2^53 as decimal strings (smaller ones as numbers),
 * bool as true/false, float16 decoded from its 16-bit pattern. Every protocol answers with this.
 */
export function jsonValue(data: TensorValues, i: number, type: ElementType): number | string | boolean {
  const v = data[i];
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (type === 'bool') return v === 1;
  if (type === 'float16') return fromHalfBits(v as number);
  return v;
}

function nest(data: TensorValues, type: ElementType, dims: readonly number[], offset: number): JsonTensor {
  if (dims.length === 0) return jsonValue(data, offset, type);
  const [n, ...rest] = dims;
  const stride = product(rest);
  const out: JsonTensor[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = nest(data, type, rest, offset + i * stride);
  return out;
}

/** Splits a run's outputs back into one JSON object per instance, in order. */
export function decodeOutputs(
  signature: ModelSignature,
  outputs: Record<string, TensorData>,
  count: number,
): InstanceOutputs[] {
  const result: InstanceOutputs[] = Array.from({ length: count }, () => ({}));
  for (const spec of signature.outputs) {
    const tensor = outputs[spec.name];
    if (!tensor) continue;
    if (!signature.batchable) {
      result[0][spec.name] = nest(tensor.data, tensor.type, tensor.dims, 0);
      continue;
    }
    if (tensor.dims[0] !== count) {
      throw new InferenceFailedError(`output '${spec.name}' has ${tensor.dims[0]} rows for ${count} instances`);
    }
    const rowDims = tensor.dims.slice(1);
    const stride = product(rowDims);
    for (let i = 0; i < count; i++) result[i][spec.name] = nest(tensor.data, tensor.type, rowDims, i * stride);
  }
  return result;
}
