import { InvalidInputError, ModelNotReadyError } from '../common/domain.errors';
import { ELEMENT_TYPES, ElementType, elementType, JsonElement } from '../models/element-types';
import { TensorSpec } from '../models/model.types';
import { flatJson, TensorInput } from '../models/tensor.codec';
import { ModelDescription, TensorResult } from '../prediction/prediction.service';
import {
  V2InferRequestDto,
  V2InferResponseDto,
  V2ModelMetadataDto,
  V2OutputTensorDto,
  V2TensorMetadataDto,
} from './dto/v2.dto';

/**
 * The Open Inference Protocol's side of inference: its requests decoded into the service's whole
 * tensors, and the service's answers encoded as its responses (output selection, the
 * classification extension, model metadata). The checks against the model are the service's.
 */

/** The protocol's tensor datatypes, in its own order. */
export const V2_DATATYPES: readonly string[] = Object.values(ELEMENT_TYPES).map((row) => row.v2);

const BY_DATATYPE = new Map<string, ElementType>(
  (Object.keys(ELEMENT_TYPES) as ElementType[]).map((type) => [elementType(type).v2, type]),
);

/** The element type of a datatype the request DTO has already checked is one of V2_DATATYPES. */
const fromDatatype = (datatype: string): ElementType => BY_DATATYPE.get(datatype)!;

/** The platform name Triton's clients know ONNX models by. */
const PLATFORM = 'onnx_onnxv1';

export function decodeInputs(body: V2InferRequestDto): TensorInput[] {
  return body.inputs.map((i) => ({ name: i.name, type: fromDatatype(i.datatype), shape: i.shape, data: i.data }));
}

/**
 * The classification extension: each row of a score tensor becomes its top `n` classes as
 * `"<score>:<index>[:<label>]"`, highest first.
 */
export function topClasses(
  tensor: { dims: readonly number[]; data: ArrayLike<JsonElement> },
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
    for (const k of order.slice(0, top)) {
      data.push(`${scores[k].toFixed(6)}:${k}${labels?.[k] !== undefined ? `:${labels[k]}` : ''}`);
    }
  }
  return { shape: tensor.dims.length > 1 ? [...tensor.dims.slice(0, -1), top] : [top], data };
}

/** The outputs the request asks for (all, in the model's order, when it names none), each as JSON or classified. */
export function encodeResponse(body: V2InferRequestDto, result: TensorResult): V2InferResponseDto {
  const requested = body.outputs ?? Object.keys(result.outputs).map((name) => ({ name, parameters: undefined }));
  const outputs = requested.map((wanted, i): V2OutputTensorDto => {
    const tensor = result.outputs[wanted.name];
    if (!tensor) {
      throw new InvalidInputError(
        `Unknown output '${wanted.name}'; this model's outputs are ${Object.keys(result.outputs).join(', ')}`,
        [{ path: `outputs[${i}].name`, message: 'unknown output' }],
      );
    }
    const { binary_data: binary, classification: n } = wanted.parameters ?? {};
    if (binary !== undefined && binary !== false) {
      throw new InvalidInputError('Binary tensor data is not supported; send and receive JSON', [
        { path: `outputs[${i}].parameters.binary_data`, message: 'must be false' },
      ]);
    }
    if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
      throw new InvalidInputError('classification must be a positive integer', [
        { path: `outputs[${i}].parameters.classification`, message: `got ${JSON.stringify(n)}` },
      ]);
    }
    if (n !== undefined) {
      const { kind } = elementType(tensor.type);
      if (kind === 'string' || kind === 'bool') {
        throw new InvalidInputError(`Output '${wanted.name}' holds ${tensor.type}, not scores to classify`, [
          { path: `outputs[${i}].parameters.classification`, message: 'needs a numeric output' },
        ]);
      }
      return {
        name: wanted.name,
        datatype: 'BYTES',
        ...topClasses({ ...tensor, data: flatJson(tensor) }, n, result.labels),
      };
    }
    return {
      name: wanted.name,
      shape: [...tensor.dims],
      datatype: elementType(tensor.type).v2,
      data: flatJson(tensor),
    };
  });
  return {
    model_name: result.model,
    model_version: String(result.version),
    ...(body.id !== undefined ? { id: body.id } : {}),
    outputs,
  };
}

const tensorMetadata = (specs: readonly TensorSpec[]): V2TensorMetadataDto[] =>
  specs.map((t) => ({ name: t.name, datatype: elementType(t.type).v2, shape: [...t.shape] }));

/** A model version's metadata; without a loaded session there are no tensors to describe, so it says why. */
export function encodeMetadata(d: ModelDescription): V2ModelMetadataDto {
  if (d.versionState !== 'READY') {
    const reason = d.versions.find((v) => v.version === d.version)?.reason;
    throw new ModelNotReadyError(
      `Model '${d.name}' version ${d.version} is ${d.versionState}${reason ? `: ${reason}` : ''}`,
    );
  }
  return {
    name: d.name,
    versions: d.versions.map((v) => String(v.version)),
    platform: PLATFORM,
    inputs: tensorMetadata(d.inputs),
    outputs: tensorMetadata(d.outputs),
  };
}
