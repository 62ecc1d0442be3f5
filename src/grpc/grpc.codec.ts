import { InvalidInputError } from '../common/domain.errors';
import { findJsonHazard } from '../common/json-guard';
import { ParseVersionPipe } from '../common/parse-version.pipe';
import { ElementType, JsonElement } from '../models/element-types';
import { fromRaw, RawTensorError } from '../models/raw-tensor';
import { TensorInput, shapeText } from '../models/tensor.codec';
import { product } from '../models/tensor-rows';
import type { V2InferRequestDto } from '../inference-protocol/dto/v2.dto';
import type { LoadRequest } from '../models/model-control.service';
import { encodeResponse, UNSUPPORTED_DATATYPES, V2_DATATYPES } from '../inference-protocol/v2.codec';
import { ELEMENT_TYPES, elementType } from '../models/element-types';
import type { TensorResult } from '../prediction/prediction.service';

/**
 * The Open Inference Protocol's gRPC messages, as @grpc/proto-loader hands them over (see
 * grpc.proto.ts: field names as in the .proto, 64-bit integers as decimal strings, bytes as
 * Buffers), decoded into the service's whole tensors, and its answers encoded back. The checks
 * against the model are the service's (tensor.codec.ts); the output side reuses the REST codec
 * (output selection, classification), so both protocols answer the same tensors.
 */

/** One InferParameter: the member its oneof names holds the value. */
export interface InferParameter {
  readonly parameter_choice?: string;
  readonly [member: string]: unknown;
}
type Parameters = Readonly<Record<string, InferParameter>>;

export interface InferTensorContents {
  readonly bool_contents?: readonly boolean[];
  readonly int_contents?: readonly number[];
  readonly int64_contents?: readonly string[];
  readonly uint_contents?: readonly number[];
  readonly uint64_contents?: readonly string[];
  readonly fp32_contents?: readonly number[];
  readonly fp64_contents?: readonly number[];
  readonly bytes_contents?: readonly Buffer[];
}
type ContentsField = keyof InferTensorContents;

export interface ModelInferRequest {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly parameters?: Parameters;
  readonly inputs: readonly {
    readonly name: string;
    readonly datatype: string;
    readonly shape: readonly string[];
    readonly parameters?: Parameters;
    readonly contents?: InferTensorContents | null;
  }[];
  readonly outputs?: readonly { readonly name: string; readonly parameters?: Parameters }[];
  readonly raw_input_contents?: readonly Buffer[];
}

interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: Record<string, unknown[]>;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensor[];
  raw_output_contents: Buffer[];
}

/**
 * The contents field of each element type, typed over every element type so a new one must be
 * placed; FP16 has none (the protocol carries it only raw).
 */
const CONTENTS: Readonly<Record<ElementType, ContentsField | null>> = {
  bool: 'bool_contents',
  uint8: 'uint_contents',
  uint16: 'uint_contents',
  uint32: 'uint_contents',
  uint64: 'uint64_contents',
  int8: 'int_contents',
  int16: 'int_contents',
  int32: 'int_contents',
  int64: 'int64_contents',
  float16: null,
  float32: 'fp32_contents',
  float64: 'fp64_contents',
  string: 'bytes_contents',
};
const CONTENTS_FIELDS = [...new Set(Object.values(CONTENTS).filter((f): f is ContentsField => f !== null))];

const BY_DATATYPE = new Map<string, ElementType>(
  (Object.keys(ELEMENT_TYPES) as ElementType[]).map((type) => [elementType(type).v2, type]),
);

const versionPipe = new ParseVersionPipe();

/** A request's model version: empty means the model's default. */
export function versionOf(raw: string): number | undefined {
  return raw === '' ? undefined : versionPipe.transform(raw);
}

/** A parameter's value, whichever member of the oneof holds it; 64-bit integers as numbers. */
export function parameterValue(parameter: InferParameter | undefined): unknown {
  if (!parameter?.parameter_choice) return undefined;
  const value = parameter[parameter.parameter_choice];
  return parameter.parameter_choice === 'int64_param' || parameter.parameter_choice === 'uint64_param'
    ? Number(value)
    : value;
}

/** The limits on what one request may carry, as HTTP has them for JSON bodies. */
export interface InputLimits {
  /** Most elements in one tensor's typed contents (MAX_ARRAY_LENGTH). */
  readonly maxArrayLength: number;
  /** Longest BYTES element, in bytes (MAX_STRING_LENGTH). */
  readonly maxStringLength: number;
}

function shapeOf(raw: readonly string[], path: string): number[] {
  const shape = raw.map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new InvalidInputError(`The shape of ${path} must be whole numbers of at least 0`, [
      { path: `${path}.shape`, message: `got [${raw.slice(0, 8).join(', ')}${raw.length > 8 ? ', ...' : ''}]` },
    ]);
  }
  return shape;
}

function checkStrings(values: readonly string[], limits: InputLimits, path: string): void {
  const at = values.findIndex((s) => s.length > limits.maxStringLength);
  if (at >= 0) {
    throw new InvalidInputError(`A BYTES element of ${path} is longer than ${limits.maxStringLength} characters`, [
      { path: `${path}[${at}]`, message: `at most ${limits.maxStringLength} characters (MAX_STRING_LENGTH)` },
    ]);
  }
}

/**
 * The request's inputs as whole tensors: typed `contents`, or `raw_input_contents` (one entry per
 * input, in input order, never both). Values are only read here; encodeTensors checks them against
 * the model.
 */
export function decodeInputs(request: ModelInferRequest, limits: InputLimits): TensorInput[] {
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw new InvalidInputError(
      `raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs; send one per input, in input order`,
      [{ path: 'raw_input_contents', message: `expected ${request.inputs.length} entries` }],
    );
  }
  return request.inputs.map((input, i): TensorInput => {
    const path = `inputs[${i}]`;
    const unsupported = UNSUPPORTED_DATATYPES[input.datatype];
    if (unsupported) throw new InvalidInputError(unsupported, [{ path: `${path}.datatype`, message: 'not supported' }]);
    const type = BY_DATATYPE.get(input.datatype);
    if (type === undefined) {
      throw new InvalidInputError(`Input '${input.name}' has an unknown datatype`, [
        { path: `${path}.datatype`, message: `must be one of ${V2_DATATYPES.join(', ')}` },
      ]);
    }
    const shape = shapeOf(input.shape, path);
    const contents = input.contents ?? {};
    const given = CONTENTS_FIELDS.filter((f) => (contents[f]?.length ?? 0) > 0);
    if (raw.length > 0) {
      if (given.length > 0) {
        throw new InvalidInputError(
          `Input '${input.name}' has contents, and the request raw_input_contents; send one`,
          [{ path: `${path}.contents`, message: 'must be absent when raw_input_contents is given' }],
        );
      }
      let values;
      try {
        values = fromRaw(type, raw[i], product(shape));
      } catch (err) {
        if (!(err instanceof RawTensorError)) throw err;
        throw new InvalidInputError(
          `Input '${input.name}': raw_input_contents[${i}] does not fit shape ${shapeText(shape)} of ${input.datatype}`,
          [{ path: `raw_input_contents[${i}]`, message: err.message }],
        );
      }
      if (type === 'string') checkStrings(values as string[], limits, `raw_input_contents[${i}]`);
      return { name: input.name, type, shape, values, source: `raw_input_contents[${i}]` };
    }
    const field = CONTENTS[type];
    if (field === null) {
      throw new InvalidInputError(`Input '${input.name}' is ${input.datatype}, which travels only as raw contents`, [
        { path: `${path}.contents`, message: 'send it in raw_input_contents' },
      ]);
    }
    const stray = given.find((f) => f !== field);
    if (stray) {
      throw new InvalidInputError(`Input '${input.name}' is ${input.datatype}: its values go in contents.${field}`, [
        { path: `${path}.contents.${stray}`, message: `not the field of ${input.datatype}` },
      ]);
    }
    const values = contents[field] ?? [];
    if (values.length > limits.maxArrayLength) {
      throw new InvalidInputError(`contents.${field} of ${path} is longer than ${limits.maxArrayLength} elements`, [
        { path: `${path}.contents.${field}`, message: `at most ${limits.maxArrayLength} elements (MAX_ARRAY_LENGTH)` },
      ]);
    }
    if (field === 'bytes_contents') {
      const strings = (values as readonly Buffer[]).map((b) => b.toString('utf8'));
      checkStrings(strings, limits, `${path}.contents.bytes_contents`);
      return { name: input.name, type, shape, data: strings };
    }
    return { name: input.name, type, shape, data: values };
  });
}

/** A typed tensor's JSON elements in its contents field. */
function typedContents(name: string, datatype: string, data: readonly JsonElement[]): Record<string, unknown[]> {
  const type = BY_DATATYPE.get(datatype)!;
  const field = CONTENTS[type];
  if (field === null) {
    throw new InvalidInputError(`Output '${name}' is ${datatype}, which travels only as raw contents`, [
      { path: 'parameters.binary_data_output', message: `must not be false for a ${datatype} output` },
    ]);
  }
  if (field === 'bytes_contents') return { [field]: data.map((s) => Buffer.from(String(s), 'utf8')) };
  // 64-bit integers beyond 2^53 are already decimal strings, which protobuf's writer takes as they are.
  return { [field]: data as unknown[] };
}

/**
 * The answer: every requested output (all, in the model's order, when none is named), classified
 * when asked, in raw_output_contents unless the request's `binary_data_output` parameter is false
 * (then typed contents; FP16 has none and is refused so).
 */
export function encodeInferResponse(request: ModelInferRequest, result: TensorResult): ModelInferResponse {
  const rawWanted = parameterValue(request.parameters?.binary_data_output);
  const body = {
    id: request.id,
    parameters: { binary_data_output: rawWanted ?? true },
    outputs:
      request.outputs && request.outputs.length > 0
        ? request.outputs.map((o) => {
            const classification = parameterValue(o.parameters?.classification);
            return { name: o.name, parameters: classification === undefined ? undefined : { classification } };
          })
        : undefined,
  } as unknown as V2InferRequestDto;
  const { response, blobs } = encodeResponse(body, result);
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: request.id,
    outputs: response.outputs.map((o) => ({
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      ...(o.data !== undefined ? { contents: typedContents(o.name, o.datatype, o.data as JsonElement[]) } : {}),
    })),
    raw_output_contents: blobs,
  };
}

/** Triton's ModelRepositoryParameter: one member of its oneof holds the value. */
export interface ModelRepositoryParameter {
  readonly parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'bytes_param';
  readonly string_param?: string;
  readonly bytes_param?: Buffer;
  readonly [member: string]: unknown;
}

/**
 * RepositoryModelLoad's parameters as tritonclient.grpc's `load_model(config=, files=)` sends them:
 * `config` as string_param (the configuration's JSON text), `file:<version>/model.onnx` as
 * bytes_param (the file itself, which the REST body carries in base64). Which names a file may
 * have, and what a configuration must say, the ModelControlService decides for both protocols.
 * Other parameters (Triton's own, such as unload_dependents) have no meaning here, as over REST.
 */
export function loadRequestOf(
  parameters: Readonly<Record<string, ModelRepositoryParameter>>,
  limits: InputLimits,
): LoadRequest {
  let config: string | undefined;
  const files = new Map<string, Buffer>();
  for (const [key, parameter] of Object.entries(parameters)) {
    if (key === 'config') {
      if (parameter.parameter_choice !== 'string_param' || typeof parameter.string_param !== 'string') {
        throw new InvalidInputError('parameters.config must be the JSON configuration as text (string_param)', [
          { path: 'parameters.config', message: `got ${parameter.parameter_choice ?? 'no value'}` },
        ]);
      }
      // The limit the REST body's strings have, with the same words.
      const hazard = findJsonHazard({ parameters: { config: parameter.string_param } }, limits);
      if (hazard) throw new InvalidInputError('The request body is invalid', [hazard]);
      config = parameter.string_param;
    } else if (key.startsWith('file:')) {
      if (parameter.parameter_choice !== 'bytes_param' || !Buffer.isBuffer(parameter.bytes_param)) {
        throw new InvalidInputError(`parameters["${key}"] must be the file's bytes (bytes_param)`, [
          { path: `parameters["${key}"]`, message: `got ${parameter.parameter_choice ?? 'no value'}` },
        ]);
      }
      files.set(key.slice('file:'.length), parameter.bytes_param);
    }
  }
  return { config, files };
}
