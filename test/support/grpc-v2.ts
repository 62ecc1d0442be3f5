import { decodeRaw, encodeRaw, Values } from './triton-client';
import { call, Clients, grpc } from './grpc';
import { asJson } from './type-cases';

/**
 * A V2 inference request in its REST JSON form, sent as ModelInfer over gRPC, and the answer put
 * back in the JSON form, so that the conformance suites hold both transports to the same
 * expectations. Two ways of carrying tensors: `raw` (raw_input_contents in, raw_output_contents
 * out: what Triton's client sends by default) and `typed` (contents in, and contents out through
 * the binary_data_output parameter set to false).
 */

export type GrpcForm = 'raw' | 'typed';

export interface JsonInferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: { name: string; shape: number[]; datatype: string; data: unknown; parameters?: Record<string, unknown> }[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

export interface JsonInferAnswer {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: { name: string; datatype: string; shape: number[]; data: unknown[]; parameters?: object }[];
}

/** How the answer carried its outputs, read off the message itself. */
export type Carried = 'raw' | 'typed';

type Output = { name: string; datatype: string; shape: string[]; contents?: Record<string, unknown[]> | null };
interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Output[];
  raw_output_contents: Buffer[];
}

/** The contents field of each datatype; FP16 has none. */
const FIELD: Readonly<Record<string, string>> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};
const WIDE = new Set(['INT64', 'UINT64']);

/** A JSON parameter as an InferParameter: the oneof member of its JavaScript type. */
function parameter(value: unknown): object {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'string') return { string_param: value };
  if (typeof value === 'number' && Number.isInteger(value)) return { int64_param: String(value) };
  if (typeof value === 'number') return { double_param: value };
  throw new Error(`no InferParameter for ${JSON.stringify(value)}`);
}
const parameters = (p: Record<string, unknown> | undefined) =>
  p === undefined ? undefined : Object.fromEntries(Object.entries(p).map(([k, v]) => [k, parameter(v)]));

const flat = (data: unknown): unknown[] => (Array.isArray(data) ? data.flatMap(flat) : [data]);

/** `/v2/models/{model}[/versions/{version}]/infer` → model and version. */
function target(path: string): { model_name: string; model_version: string } {
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/.exec(path);
  if (!m) throw new Error(`not a V2 infer path: ${path}`);
  return { model_name: decodeURIComponent(m[1]), model_version: m[2] ?? '' };
}

export function toModelInfer(path: string, body: JsonInferRequest, form: GrpcForm): object {
  const raw: Buffer[] = [];
  const inputs = body.inputs.map((input) => {
    const values = flat(input.data);
    const tensor = {
      name: input.name,
      datatype: input.datatype,
      shape: input.shape.map(String),
      parameters: parameters(input.parameters),
    };
    if (form === 'raw') {
      const clientValues = (WIDE.has(input.datatype) ? values.map((v) => BigInt(v as string)) : values) as Values;
      raw.push(encodeRaw(input.datatype, clientValues));
      return tensor;
    }
    const field = FIELD[input.datatype];
    if (!field) throw new Error(`${input.datatype} has no typed contents`);
    const typed =
      input.datatype === 'BYTES'
        ? values.map((v) => Buffer.from(String(v), 'utf8'))
        : WIDE.has(input.datatype)
          ? values.map(String)
          : values;
    return { ...tensor, contents: { [field]: typed } };
  });
  const requestParameters = { ...body.parameters, ...(form === 'typed' ? { binary_data_output: false } : {}) };
  return {
    ...target(path),
    id: body.id ?? '',
    parameters: parameters(requestParameters),
    inputs,
    outputs: body.outputs?.map((o) => ({ name: o.name, parameters: parameters(o.parameters) })) ?? [],
    raw_input_contents: raw,
  };
}

/** An output's values in the JSON form's spelling: wide integers as numbers or decimal strings. */
function jsonValues(datatype: string, values: readonly unknown[]): unknown[] {
  if (datatype === 'BYTES') return values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
  if (WIDE.has(datatype)) return values.map((v) => asJson(BigInt(v as string | bigint)));
  return [...values];
}

function fromModelInfer(response: InferResponse): { body: JsonInferAnswer; carried: Carried | 'mixed' } {
  const raw = response.raw_output_contents ?? [];
  const carried =
    raw.length === response.outputs.length && response.outputs.every((o) => !o.contents)
      ? 'raw'
      : raw.length === 0 && response.outputs.every((o) => o.contents)
        ? 'typed'
        : 'mixed';
  const outputs = response.outputs.map((o, i) => {
    const values =
      carried === 'raw'
        ? decodeRaw(o.datatype, raw[i])
        : (Object.values(o.contents ?? {}).find((v) => Array.isArray(v) && v.length > 0) ?? []);
    return { name: o.name, datatype: o.datatype, shape: o.shape.map(Number), data: jsonValues(o.datatype, values) };
  });
  return {
    body: {
      model_name: response.model_name,
      model_version: response.model_version,
      ...(response.id !== '' ? { id: response.id } : {}),
      outputs,
    },
    carried,
  };
}

/** ModelInfer of a JSON-form request; the answer back in the JSON form, or the call's error. */
export async function grpcInfer(
  clients: Clients,
  path: string,
  body: JsonInferRequest,
  form: GrpcForm,
): Promise<{ body?: JsonInferAnswer; carried?: Carried | 'mixed'; error?: grpc.ServiceError }> {
  const { response, error } = await call<InferResponse>(
    clients.inference,
    'ModelInfer',
    toModelInfer(path, body, form),
  );
  if (error) return { error };
  return fromModelInfer(response!);
}
