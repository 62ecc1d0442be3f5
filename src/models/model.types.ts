/** Element types a tensor can hold, as onnxruntime names them. */
export type ElementType =
  | 'float16'
  | 'float32'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

export const INTEGER_TYPES: ReadonlySet<ElementType> = new Set([
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
]);
export const FLOAT_TYPES: ReadonlySet<ElementType> = new Set(['float16', 'float32', 'float64']);

/** A graph input or output that is a tensor. `-1` marks a dynamic (symbolic or unknown) dimension. */
export interface TensorSpec {
  readonly name: string;
  readonly type: ElementType;
  readonly shape: readonly number[];
}

/** What the runtime reports about a graph input or output; non-tensors (sequences, maps) have no type. */
export type ValueInfo =
  (TensorSpec & { readonly isTensor: true }) | { readonly name: string; readonly isTensor: false };

export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[];

/** A tensor as it crosses the runtime boundary: flat row-major values plus dimensions. */
export interface TensorData {
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TensorValues;
}

export type ModelState = 'LOADING' | 'READY' | 'FAILED';

/**
 * What the service knows about one loaded model version: its tensors and how to read it
 * as a classifier. Built once at load time from the graph's metadata and config.json.
 */
export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /**
   * True when every input and output has a dynamic first dimension, so instances can be stacked
   * into one run. Otherwise each instance is the model's whole input tensor and runs alone.
   */
  readonly batchable: boolean;
  readonly features?: readonly string[];
  readonly labels?: readonly string[];
  readonly labelOutput?: string;
  readonly probabilityOutput?: string;
}
