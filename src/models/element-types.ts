import { FLOAT16_MAX, fromHalfBits, toHalfBits } from './float16';

/**
 * Every element type the service serves, one row each: how its values are held, checked, written
 * as JSON, named by the Open Inference Protocol and described in OpenAPI. Everything else reads
 * this table, so a new element type is one new row here.
 */

/** One element as a codec stores it before packing: a number, a bigint (64-bit integers) or a string. */
export type Scalar = number | bigint | string;
/** One element as JSON: int64/uint64 beyond 2^53 as decimal strings, bool as true/false. */
export type JsonElement = number | string | boolean;

export type NumericValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;
/** A tensor's flat row-major values: a typed array, or plain strings. */
export type TensorValues = NumericValues | string[];

interface NumericArrayConstructor {
  new (length: number): NumericValues;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): NumericValues;
  from(values: ArrayLike<number> | ArrayLike<bigint>): NumericValues;
  readonly BYTES_PER_ELEMENT: number;
}

/** The JSON schema of one element, as OpenAPI writes it. */
export interface ElementSchema {
  readonly type?: 'number' | 'integer' | 'boolean' | 'string';
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly pattern?: string;
  readonly oneOf?: readonly ElementSchema[];
}

export interface ElementTypeRow {
  /** What the values are, for rules that depend on it (a label output is an integer, scores are floats). */
  readonly kind: 'float' | 'integer' | 'bool' | 'string';
  /** The Open Inference Protocol's datatype name. */
  readonly v2: string;
  /** What holds the values (float16 as its 16-bit patterns, bool as 0/1 bytes); strings are a plain array. */
  readonly array?: NumericArrayConstructor;
  /** Bytes per element in a raw tensor; strings have no fixed size. */
  readonly bytes?: number;
  /** Smallest and largest value, for integers. */
  readonly range?: readonly [number, number] | readonly [bigint, bigint];
  /** The JSON value an all-zero element reads as, for examples and warm-up feeds. */
  readonly zero: JsonElement;
  readonly schema: ElementSchema;
  /** Checks one JSON element; returns the value to store, or why it does not fit. */
  readonly parse: (value: unknown) => Scalar | { readonly error: string };
  /**
   * Floats only: the value to store for "NaN", "Infinity" or "-Infinity", the spelling tensor protocols
   * use in JSON for what JSON has no number for; undefined for anything else.
   */
  readonly nonFinite?: (value: unknown) => Scalar | undefined;
  /** One stored element as JSON. */
  readonly json: (stored: Scalar) => JsonElement;
}

/** A value as an error message quotes it: short, and never undefined. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const FLOAT32_MAX = 3.4028234663852886e38;

function float(name: string, v2: string, array: NumericArrayConstructor, max: number, format: string): ElementTypeRow {
  const toStored = name === 'float16' ? toHalfBits : (value: number) => value;
  return {
    kind: 'float',
    v2,
    array,
    bytes: array.BYTES_PER_ELEMENT,
    zero: 0,
    schema: { type: 'number', format },
    parse: (value) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return { error: `must be a finite number, got ${show(value)}` };
      }
      if (Math.abs(value) > max) return { error: `${value} is outside the ${name} range` };
      return toStored(value);
    },
    nonFinite: (value) => (typeof value === 'string' && NON_FINITE.has(value) ? toStored(Number(value)) : undefined),
    json: name === 'float16' ? (bits) => fromHalfBits(bits as number) : (value) => value as number,
  };
}

const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

function integer(name: string, v2: string, array: NumericArrayConstructor, min: number, max: number): ElementTypeRow {
  return {
    kind: 'integer',
    v2,
    array,
    bytes: array.BYTES_PER_ELEMENT,
    range: [min, max],
    zero: 0,
    schema: { type: 'integer', format: max > 2147483647 ? 'int64' : 'int32', minimum: min, maximum: max },
    parse: (value) => {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        return { error: `must be a whole number, got ${show(value)}` };
      }
      if (value < min || value > max) return { error: `${value} is outside the ${name} range [${min}, ${max}]` };
      return value;
    },
    json: (value) => value as number,
  };
}

const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * 64-bit integers: beyond 2^53 they cannot be exact JSON numbers in JavaScript, so they may travel as decimal strings.
 */
function wideInteger(
  name: string,
  v2: string,
  array: NumericArrayConstructor,
  min: bigint,
  max: bigint,
): ElementTypeRow {
  const signed = min < 0n;
  return {
    kind: 'integer',
    v2,
    array,
    bytes: 8,
    range: [min, max],
    zero: 0,
    schema: {
      oneOf: [
        { type: 'integer', format: 'int64', ...(signed ? {} : { minimum: 0 }) },
        { type: 'string', pattern: signed ? '^-?\\d{1,20}$' : '^\\d{1,20}$' },
      ],
    },
    parse: (value) => {
      let big: bigint;
      if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
      else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) big = BigInt(value);
      else return { error: `must be a whole number (as a decimal string beyond 2^53), got ${show(value)}` };
      if (big < min || big > max) return { error: `${big} is outside the ${name} range` };
      return big;
    },
    json: (value) => {
      const big = value as bigint;
      return big >= SAFE_MIN && big <= SAFE_MAX ? Number(big) : big.toString();
    },
  };
}

/** In the Open Inference Protocol's order of datatypes, which is the order OpenAPI lists them in. */
export const ELEMENT_TYPES = {
  bool: {
    kind: 'bool',
    v2: 'BOOL',
    array: Uint8Array,
    bytes: 1,
    zero: false,
    schema: { type: 'boolean' },
    parse: (value) =>
      typeof value === 'boolean' ? (value ? 1 : 0) : { error: `must be true or false, got ${show(value)}` },
    json: (value) => value === 1,
  },
  uint8: integer('uint8', 'UINT8', Uint8Array, 0, 255),
  uint16: integer('uint16', 'UINT16', Uint16Array, 0, 65535),
  uint32: integer('uint32', 'UINT32', Uint32Array, 0, 4294967295),
  uint64: wideInteger('uint64', 'UINT64', BigUint64Array, 0n, 2n ** 64n - 1n),
  int8: integer('int8', 'INT8', Int8Array, -128, 127),
  int16: integer('int16', 'INT16', Int16Array, -32768, 32767),
  int32: integer('int32', 'INT32', Int32Array, -2147483648, 2147483647),
  int64: wideInteger('int64', 'INT64', BigInt64Array, -(2n ** 63n), 2n ** 63n - 1n),
  float16: float('float16', 'FP16', Uint16Array, FLOAT16_MAX, 'float'),
  float32: float('float32', 'FP32', Float32Array, FLOAT32_MAX, 'float'),
  float64: float('float64', 'FP64', Float64Array, Number.MAX_VALUE, 'double'),
  string: {
    kind: 'string',
    v2: 'BYTES',
    zero: '',
    schema: { type: 'string' },
    parse: (value) => (typeof value === 'string' ? value : { error: `must be a string, got ${show(value)}` }),
    json: (value) => value as string,
  },
} as const satisfies Record<string, ElementTypeRow>;

/** Element types as onnxruntime names them. */
export type ElementType = keyof typeof ELEMENT_TYPES;

const ROWS: Readonly<Record<string, ElementTypeRow>> = ELEMENT_TYPES;

export const isElementType = (name: string): name is ElementType => Object.prototype.hasOwnProperty.call(ROWS, name);

export const elementType = (type: ElementType): ElementTypeRow => ROWS[type];

/** Checked elements packed into what holds a tensor of this type. */
export function pack(type: ElementType, values: readonly Scalar[]): TensorValues {
  const { array } = ROWS[type];
  return array ? array.from(values as ArrayLike<number>) : [...(values as readonly string[])];
}

/** A tensor of `size` zeros of this type. */
export function zeros(type: ElementType, size: number): TensorValues {
  const { array, zero } = ROWS[type];
  return array ? new array(size) : new Array<string>(size).fill(zero as string);
}

/** Element `i` of a tensor's values as JSON. */
export const jsonElement = (type: ElementType, data: TensorValues, i: number): JsonElement => ROWS[type].json(data[i]);
