import { ErrorDetail, InvalidInputError } from '../common/domain.errors';
import { elementType, ElementType, JsonElement, pack, Scalar, show, TensorValues } from './element-types';
import { ModelSignature, TensorData } from './model.types';
import { product } from './tensor-rows';

/**
 * The protocol-neutral core of reading tensors: JSON values checked against an element type and a
 * shape, whole tensors checked against a model's inputs, and tensors written back as JSON. Every
 * problem is reported with the path of the offending field, so a client knows what to fix.
 */

/** JSON value of a tensor: a number, string, boolean or nested array of them. */
export type JsonTensor = JsonElement | JsonTensor[];

/** One call to the runtime: its feeds and how many instances it carries. */
export interface EncodedRun {
  readonly feeds: Record<string, TensorData>;
  readonly count: number;
}

/** A tensor read from JSON: its shape and checked values, not yet packed. */
export interface ParsedTensor {
  readonly shape: number[];
  readonly values: Scalar[];
}

/** At most this many problems are reported for one request: enough to fix it, bounded for a hostile one. */
export const MAX_DETAILS = 20;

/** The problems found in one request, each with its path; InvalidInputError carries them to the client. */
export class Problems {
  readonly details: ErrorDetail[] = [];
  add(path: string, message: string): void {
    if (this.details.length < MAX_DETAILS) this.details.push({ path: path || 'body', message });
  }
  get any(): boolean {
    return this.details.length > 0;
  }
  /** Throws InvalidInputError with every problem found, if there is any. */
  throwIfAny(message: string): void {
    if (this.any) throw new InvalidInputError(message, this.details);
  }
  get full(): boolean {
    return this.details.length >= MAX_DETAILS;
  }
}

export const NOT_THE_INPUTS = "The request does not match the model's inputs";

export const shapeText = (dims: readonly number[]) => `[${dims.map((d) => (d === -1 ? '*' : d)).join(', ')}]`;

/** Checks one element against the element type; returns the value to store or an error message. */
export const checkElement = (value: unknown, type: ElementType) => elementType(type).parse(value);

/**
 * Reads a nested array (or a scalar) into a shape and flat values, checking that it is rectangular,
 * that it fits the expected shape (-1 = any size), and that every element fits the type. A flat
 * array is accepted for a fully fixed multi-dimensional shape when the element count matches.
 */
export function readTensor(
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
  const { parse } = elementType(type);
  // An element's path is spelled only for a problem: the innermost rows hold nearly every element.
  const element = (v: unknown, at: string, index?: number): void => {
    const result = parse(v);
    if (typeof result === 'object') problems.add(index === undefined ? at : `${at}[${index}]`, result.error);
    else values.push(result);
  };
  const walk = (v: unknown, depth: number, at: string): void => {
    if (depth === shape.length) return element(v, at);
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      problems.add(
        at,
        `expected an array of ${shape[depth]} items (rows must all have the same length), got ${show(v)}`,
      );
      return;
    }
    if (depth < shape.length - 1) {
      for (let i = 0; i < v.length && !problems.full; i++) walk(v[i], depth + 1, `${at}[${i}]`);
      return;
    }
    for (let i = 0; i < v.length && !problems.full; i++) element(v[i], at, i);
  };
  walk(value, 0, path);
  if (problems.details.length > before) return undefined;
  return { shape: flatFits ? [...expected] : shape, values };
}

/**
 * A whole tensor as a tensor protocol (Open Inference Protocol) sends it: batch dimension included.
 * Its values come either as JSON (`data`, checked element by element) or already typed (`values`,
 * from raw bytes, whose elements cannot be out of range), never both.
 */
export type TensorInput = JsonTensorInput | TypedTensorInput;

interface TensorInputBase {
  readonly name: string;
  readonly type: ElementType;
  readonly shape: readonly number[];
}

export interface JsonTensorInput extends TensorInputBase {
  /** Row-major values, flat or nested. */
  readonly data: unknown;
  readonly values?: undefined;
}

export interface TypedTensorInput extends TensorInputBase {
  /** Row-major values held as the element type holds them (see element-types.ts). */
  readonly values: TensorValues;
  /** Where the values came from, for messages (`inputs[0] binary data`). */
  readonly source: string;
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
  problems.throwIfAny(NOT_THE_INPUTS);

  const feeds: Record<string, TensorData> = {};
  for (const spec of signature.inputs) {
    const i = given.get(spec.name)!;
    const input = inputs[i];
    const { type, shape } = input;
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
    const size = product(shape);
    if (input.values !== undefined) {
      // Raw values were sized from this very shape by their decoder; checked again so no caller can skip it.
      if (input.values.length !== size) {
        problems.add(input.source, `shape ${shapeText(shape)} holds ${size} values; got ${input.values.length}`);
      } else feeds[spec.name] = { type, dims: [...shape], data: input.values };
      continue;
    }
    const { data } = input;
    if (!Array.isArray(data)) {
      problems.add(`${path}.data`, `data must be an array, got ${show(data)}`);
      continue;
    }
    const flat = flatten(data);
    if (flat.length !== size) {
      problems.add(`${path}.data`, `shape ${shapeText(shape)} holds ${size} values; data has ${flat.length}`);
      continue;
    }
    const values: Scalar[] = new Array(size);
    let bad = false;
    // A tensor protocol carries NaN and infinities (as strings in JSON), as it does in its answers.
    const { nonFinite, parse } = elementType(type);
    for (let k = 0; k < size && !problems.full; k++) {
      const value = nonFinite?.(flat[k]) ?? parse(flat[k]);
      if (typeof value === 'object') {
        problems.add(`${path}.data[${k}]`, value.error);
        bad = true;
      } else values[k] = value;
    }
    // Once any problem is found the request is refused; packing values left unchecked would only fail.
    if (!bad && !problems.any) feeds[spec.name] = { type, dims: [...shape], data: pack(type, values) };
  }
  problems.throwIfAny(NOT_THE_INPUTS);

  if (!signature.batchable) return { feeds, count: 1 };
  const rows = new Set(Object.values(feeds).map((t) => t.dims[0]));
  if (rows.size > 1) {
    throw new InvalidInputError('The inputs disagree on the batch size', [
      { path: 'inputs', message: `first dimensions ${[...rows].join(', ')}; they must be equal` },
    ]);
  }
  return { feeds, count: [...rows][0] };
}

/** A tensor's values from `offset` as nested JSON arrays of the given dimensions. */
export function nestedJson(data: TensorValues, type: ElementType, dims: readonly number[], offset = 0): JsonTensor {
  const { json } = elementType(type);
  const nest = (at: number, depth: number): JsonTensor => {
    if (depth === dims.length) return json(data[at]);
    const n = dims[depth];
    const stride = product(dims.slice(depth + 1));
    const out: JsonTensor[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = nest(at + i * stride, depth + 1);
    return out;
  };
  return nest(offset, 0);
}

/** A tensor's values as a flat JSON array, element by element as every protocol writes them. */
export function flatJson(tensor: TensorData): JsonElement[] {
  const { json } = elementType(tensor.type);
  return Array.from({ length: tensor.data.length }, (_, i) => json(tensor.data[i]));
}
