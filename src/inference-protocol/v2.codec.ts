import { InvalidInputError, ModelNotReadyError } from '../common/domain.errors';
import { ELEMENT_TYPES, ElementType, elementType, JsonElement, TensorValues } from '../models/element-types';
import { TensorData, TensorSpec } from '../models/model.types';
import { flatJson, TensorInput } from '../models/tensor.codec';
import { BinaryInputs, binaryOutput } from './v2-binary.codec';
import { ModelDescription, TensorResult, VersionStatisticsEntry } from '../prediction/prediction.service';
import {
  V2InferRequestDto,
  V2InferResponseDto,
  V2ModelConfigDto,
  V2ModelMetadataDto,
  V2ModelStatisticsDto,
  V2ConfigTensorDto,
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

/** Datatypes of the protocol that onnxruntime-node cannot feed, with why, so a client learns it plainly. */
export const UNSUPPORTED_DATATYPES: Readonly<Record<string, string>> = {
  BF16: 'BF16 tensors are not supported: onnxruntime-node cannot create bfloat16 tensors; send FP32 or FP16',
};

/**
 * The request's inputs as whole tensors: JSON `data`, or raw bytes after the JSON header for an
 * input with `parameters.binary_data_size` (the binary tensor data extension), read in input order.
 */
export function decodeInputs(body: V2InferRequestDto, tail: Buffer = EMPTY): TensorInput[] {
  const binary = new BinaryInputs(tail);
  const inputs = body.inputs.map((input, i): TensorInput => {
    const path = `inputs[${i}]`;
    const unsupported = UNSUPPORTED_DATATYPES[input.datatype];
    if (unsupported) throw new InvalidInputError(unsupported, [{ path: `${path}.datatype`, message: 'not supported' }]);
    const type = fromDatatype(input.datatype);
    const size = input.parameters?.binary_data_size;
    if (size === undefined) {
      if (input.data === undefined) {
        throw new InvalidInputError(`Input '${input.name}' has neither data nor parameters.binary_data_size`, [
          { path: `${path}.data`, message: 'required unless the input is sent as binary data' },
        ]);
      }
      return { name: input.name, type, shape: input.shape, data: input.data };
    }
    if (input.data !== undefined) {
      throw new InvalidInputError(`Input '${input.name}' has both data and parameters.binary_data_size; send one`, [
        { path: `${path}.data`, message: 'must be absent when binary_data_size is given' },
      ]);
    }
    const values = binary.take(input.name, path, type, input.datatype, input.shape, size);
    return { name: input.name, type, shape: input.shape, values, source: `${path}.parameters.binary_data_size` };
  });
  binary.finish();
  return inputs;
}

const EMPTY = Buffer.alloc(0);

/** A boolean parameter of the binary extension, if given. */
function flag(value: unknown, path: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidInputError(`${path.split('.').at(-1)} must be true or false`, [
    { path, message: `got ${JSON.stringify(value)}` },
  ]);
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

/** An answer: its JSON, and the bytes of its binary outputs in output order (none for a JSON answer). */
export interface V2Answer {
  readonly response: V2InferResponseDto;
  readonly blobs: Buffer[];
}

/**
 * The outputs the request asks for (all, in the model's order, when it names none), each as JSON or
 * classified, and in binary when the output's `binary_data` (else the request's `binary_data_output`) says so.
 */
export function encodeResponse(body: V2InferRequestDto, result: TensorResult): V2Answer {
  const requested = body.outputs ?? Object.keys(result.outputs).map((name) => ({ name, parameters: undefined }));
  const allBinary = flag(body.parameters?.binary_data_output, 'parameters.binary_data_output') ?? false;
  const blobs: Buffer[] = [];
  const outputs = requested.map((wanted, i): V2OutputTensorDto => {
    const tensor = result.outputs[wanted.name];
    if (!tensor) {
      throw new InvalidInputError(
        `Unknown output '${wanted.name}'; this model's outputs are ${Object.keys(result.outputs).join(', ')}`,
        [{ path: `outputs[${i}].name`, message: 'unknown output' }],
      );
    }
    const { classification: n } = wanted.parameters ?? {};
    const binary = flag(wanted.parameters?.binary_data, `outputs[${i}].parameters.binary_data`) ?? allBinary;
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
      const classes = topClasses({ ...tensor, data: flatJson(tensor) }, n, result.labels);
      if (!binary) return { name: wanted.name, datatype: 'BYTES', ...classes };
      return binaryTensor(wanted.name, 'string', classes.shape, classes.data, blobs);
    }
    if (binary) return binaryTensor(wanted.name, tensor.type, tensor.dims, tensor.data, blobs);
    return {
      name: wanted.name,
      shape: [...tensor.dims],
      datatype: elementType(tensor.type).v2,
      data: v2Json(tensor),
    };
  });
  const response = {
    model_name: result.model,
    model_version: String(result.version),
    ...(body.id !== undefined ? { id: body.id } : {}),
    outputs,
  };
  return { response, blobs };
}

/**
 * An output's values as the protocol's JSON: a tensor protocol carries what the model computed, and
 * JSON has no NaN or infinities, so those floats are written as the strings "NaN", "Infinity" and
 * "-Infinity" (JSON.stringify would turn them into null, a value the model never gave).
 */
export function v2Json(tensor: TensorData): JsonElement[] {
  const data = flatJson(tensor);
  if (elementType(tensor.type).kind !== 'float') return data;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (typeof value === 'number' && !Number.isFinite(value)) data[i] = String(value);
  }
  return data;
}

function binaryTensor(
  name: string,
  type: ElementType,
  dims: readonly number[],
  values: TensorValues,
  blobs: Buffer[],
): V2OutputTensorDto {
  const bytes = binaryOutput(type, values);
  blobs.push(bytes);
  return {
    name,
    shape: [...dims],
    datatype: elementType(type).v2,
    parameters: { binary_data_size: bytes.length },
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

/** The platform and backend names Triton's model configuration gives ONNX models. */
const CONFIG_PLATFORM = 'onnxruntime_onnx';
const CONFIG_BACKEND = 'onnxruntime';

/** Triton's model-config data type of a protocol datatype: TYPE_ and the name, BYTES being TYPE_STRING there. */
const configType = (type: ElementType) => {
  const { v2 } = elementType(type);
  return v2 === 'BYTES' ? 'TYPE_STRING' : `TYPE_${v2}`;
};

/**
 * A model version's configuration as Triton's model-config JSON (the model configuration
 * extension), derived from the graph and config.json: a batchable model's dims leave out the batch
 * dimension, as Triton's do, and max_batch_size is then the batcher's (0 when there is none).
 */
export function encodeConfig(d: ModelDescription): V2ModelConfigDto {
  if (d.versionState !== 'READY' || !d.batching) encodeMetadata(d); // throws why it cannot be described
  const batching = d.batching!;
  const tensors = (specs: readonly TensorSpec[]): V2ConfigTensorDto[] =>
    specs.map((t) => ({
      name: t.name,
      data_type: configType(t.type),
      dims: d.batchable ? t.shape.slice(1) : [...t.shape],
    }));
  return {
    name: d.name,
    platform: CONFIG_PLATFORM,
    backend: CONFIG_BACKEND,
    version_policy: { specific: { versions: [d.version] } },
    max_batch_size: d.batchable ? batching.maxBatchSize : 0,
    input: tensors(d.inputs),
    output: tensors(d.outputs),
    ...(batching.enabled
      ? { dynamic_batching: { max_queue_delay_microseconds: Math.round(batching.maxQueueDelayMs * 1000) } }
      : {}),
    instance_group: [{ name: d.name, kind: 'KIND_CPU', count: batching.concurrency }],
    default_model_filename: 'model.onnx',
    ...(d.labels ? { parameters: { labels: { string_value: d.labels.join(',') } } } : {}),
  };
}

/** Inference statistics in the statistics extension's form, one entry per model version. */
export function encodeStatistics(entries: readonly VersionStatisticsEntry[]): V2ModelStatisticsDto {
  return {
    model_stats: entries.map(({ model, version, statistics: s }) => ({
      name: model,
      version: String(version),
      last_inference: s.last_inference,
      inference_count: s.inference_count,
      execution_count: s.execution_count,
      inference_stats: s.inference_stats,
      batch_stats: [...s.batch_stats.values()].sort((a, b) => a.batch_size - b.batch_size),
    })),
  };
}
