import { ElementType, TensorData } from '../models/model.types';
import { jsonValue } from '../models/tensor.codec';

/** The Open Inference Protocol's tensor datatypes and the element types onnxruntime names them by. */
export const V2_DATATYPES = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<string, ElementType>;

export type V2Datatype = keyof typeof V2_DATATYPES;
export const V2_DATATYPE_NAMES = Object.keys(V2_DATATYPES) as V2Datatype[];

const BY_ELEMENT_TYPE = Object.fromEntries(Object.entries(V2_DATATYPES).map(([k, v]) => [v, k])) as Record<
  ElementType,
  V2Datatype
>;

export const toV2Datatype = (type: ElementType): V2Datatype => BY_ELEMENT_TYPE[type];
export const fromV2Datatype = (datatype: V2Datatype): ElementType => V2_DATATYPES[datatype];

export type V2Value = number | string | boolean;

/** Flat JSON values of a tensor, element by element as every protocol writes them (see jsonValue). */
export function v2Data(tensor: TensorData): V2Value[] {
  return Array.from({ length: tensor.data.length }, (_, i) => jsonValue(tensor.data, i, tensor.type));
}

/**
 * The classification extension: each row of a score tensor becomes its top `n` classes as
 * `"<score>:<index>[:<label>]"`, highest first.
 */
export function classify(
  tensor: { dims: readonly number[]; data: ArrayLike<V2Value> },
  n: number,
  labels?: readonly string[],
): { shape: number[]; data: string[] } {
  const classes = tensor.dims.at(-1) ?? 1;
  const rows = classes === 0 ? 0 : tensor.data.length / classes;
  const top = Math.min(n, classes);
  const data: string[] = [];
  for (let r = 0; r < rows; r++) {
    const scores = Array.from({ length: classes }, (_, k) => Number(tensor.data[r * classes + k]));
    const order = scores.map((_, k) => k).sort((a, b) => scores[b] - scores[a] || a - b);
    for (const k of order.slice(0, top))
      data.push(`${scores[k].toFixed(6)}:${k}${labels?.[k] !== undefined ? `:${labels[k]}` : ''}`);
  }
  return { shape: tensor.dims.length > 1 ? [...tensor.dims.slice(0, -1), top] : [top], data };
}
