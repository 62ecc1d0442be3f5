import type { ElementType, TensorValues } from './element-types';

/** A graph input or output that is a tensor. `-1` marks a dynamic (symbolic or unknown) dimension. */
export interface TensorSpec {
  readonly name: string;
  readonly type: ElementType;
  readonly shape: readonly number[];
}

/** What the runtime reports about a graph input or output; non-tensors (sequences, maps) have no type. */
export type ValueInfo =
  (TensorSpec & { readonly isTensor: true }) | { readonly name: string; readonly isTensor: false };

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

/** The shape of one instance of a tensor: without the batch dimension when the model has one. */
export const instanceShape = (spec: TensorSpec, signature: Pick<ModelSignature, 'batchable'>): readonly number[] =>
  signature.batchable ? spec.shape.slice(1) : spec.shape;
