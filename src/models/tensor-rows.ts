import { NumericValues, TensorValues } from './element-types';
import { TensorData } from './model.types';

/**
 * Row operations on tensors whose first dimension is the batch: what the batcher needs to stack
 * requests into one run and hand each its rows back, and what the prediction cache needs to serve
 * some rows of a batch from the cache and run the others.
 */

/** Elements in a tensor of these dimensions. */
export const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Values per row: the product of every dimension after the first. */
export const rowSize = (tensor: TensorData) => product(tensor.dims.slice(1));

/** Values [start, end) of a flat tensor, without copying typed arrays. */
export const sliceValues = (data: TensorValues, start: number, end: number): TensorValues =>
  Array.isArray(data) ? data.slice(start, end) : data.subarray(start, end);

/** Rows [start, end) of a tensor, sharing its memory. */
export function sliceRows(tensor: TensorData, start: number, end: number): TensorData {
  const stride = rowSize(tensor);
  return {
    type: tensor.type,
    dims: [end - start, ...tensor.dims.slice(1)],
    data: sliceValues(tensor.data, start * stride, end * stride),
  };
}

/** Stacks tensors of the same type and inner dimensions along the first dimension. */
export function concatRows(parts: readonly TensorData[]): TensorData {
  const [first] = parts;
  if (parts.length === 1) return first;
  const dims = [parts.reduce((n, p) => n + p.dims[0], 0), ...first.dims.slice(1)];
  if (Array.isArray(first.data)) return { type: first.type, dims, data: parts.flatMap((p) => p.data as string[]) };
  const data = new (first.data.constructor as new (n: number) => NumericValues)(
    parts.reduce((n, p) => n + p.data.length, 0),
  );
  let offset = 0;
  for (const p of parts) {
    (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p.data, offset);
    offset += p.data.length;
  }
  return { type: first.type, dims, data };
}

/** The given rows of every tensor of a feed, in that order, as one feed. */
export function gatherRows(
  feeds: Readonly<Record<string, TensorData>>,
  rows: readonly number[],
): Record<string, TensorData> {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => [name, concatRows(rows.map((r) => sliceRows(t, r, r + 1)))]),
  );
}

/**
 * Splits every tensor of a run's outputs into `count` one-row outputs; undefined when some output has no batch
 * dimension.
 */
export function splitRows(
  outputs: Readonly<Record<string, TensorData>>,
  count: number,
): Record<string, TensorData>[] | undefined {
  const tensors = Object.entries(outputs);
  if (tensors.some(([, t]) => t.dims[0] !== count)) return undefined;
  return Array.from({ length: count }, (_, i) =>
    Object.fromEntries(tensors.map(([name, t]) => [name, sliceRows(t, i, i + 1)])),
  );
}
