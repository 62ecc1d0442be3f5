import * as http from 'node:http';
import { gunzipSync, gzipSync, deflateSync, inflateSync } from 'node:zlib';

/**
 * Frames requests the way Triton's Python client (tritonclient.http) does, written here from the
 * binary tensor data extension's description: POST with no Content-Type, the JSON header first,
 * then each binary input's raw bytes in input order, `Inference-Header-Content-Length` when any
 * binary data is present; each binary input carries `parameters.binary_data_size`, each requested
 * output `parameters.binary_data` (true by default), and a request that names no outputs asks for
 * them all in binary with `parameters.binary_data_output`. Answers are split the same way. The
 * raw encoding here is this file's own, so that a fault in the service's codec shows as a mismatch.
 */

export type Values = readonly (number | bigint | boolean | string)[];

export interface ClientInput {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly values: Values;
  /** As JSON `data` instead of binary (tritonclient's set_data_from_numpy(binary_data=False)). */
  readonly json?: boolean;
  /** Parameters of the input's own, beside the framing's binary_data_size. */
  readonly parameters?: Record<string, unknown>;
}

export interface ClientOutput {
  readonly name: string;
  /** tritonclient's default is true. */
  readonly binary?: boolean;
  readonly classification?: number;
  /** Parameters of the output's own, beside binary_data and classification. */
  readonly parameters?: Record<string, unknown>;
}

export interface ClientOptions {
  readonly outputs?: readonly ClientOutput[];
  /** tritonclient's request_compression_algorithm. */
  readonly compress?: 'gzip' | 'deflate';
  /** tritonclient's response_compression_algorithm (sent as Accept-Encoding). */
  readonly acceptEncoding?: string;
  readonly headers?: Record<string, string>;
  readonly id?: string;
  /** The request's parameters (tritonclient's infer(parameters=...)), beside binary_data_output. */
  readonly parameters?: Record<string, unknown>;
}

const SIZES: Record<string, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

/** Half precision bits of a number that is exactly representable as one (the tests use such values). */
function halfBits(value: number): number {
  if (value === 0) return Object.is(value, -0) ? 0x8000 : 0;
  const sign = value < 0 ? 0x8000 : 0;
  const abs = Math.abs(value);
  const exponent = Math.floor(Math.log2(abs));
  if (exponent < -14) return sign | Math.round(abs / 2 ** -24);
  return sign | ((exponent + 15) << 10) | Math.round((abs / 2 ** exponent - 1) * 1024);
}

function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A tensor's values as the raw bytes the extension carries. */
export function encodeRaw(datatype: string, values: Values): Buffer {
  if (datatype === 'BYTES') {
    return Buffer.concat(
      values.map((v) => {
        const bytes = Buffer.from(String(v), 'utf8');
        const length = Buffer.alloc(4);
        length.writeUInt32LE(bytes.length);
        return Buffer.concat([length, bytes]);
      }),
    );
  }
  const size = SIZES[datatype];
  const out = Buffer.alloc(size * values.length);
  values.forEach((v, i) => {
    const at = i * size;
    switch (datatype) {
      case 'BOOL':
        return out.writeUInt8(v ? 1 : 0, at);
      case 'UINT8':
        return out.writeUInt8(Number(v), at);
      case 'INT8':
        return out.writeInt8(Number(v), at);
      case 'UINT16':
        return out.writeUInt16LE(Number(v), at);
      case 'INT16':
        return out.writeInt16LE(Number(v), at);
      case 'FP16':
        return out.writeUInt16LE(halfBits(Number(v)), at);
      case 'UINT32':
        return out.writeUInt32LE(Number(v), at);
      case 'INT32':
        return out.writeInt32LE(Number(v), at);
      case 'FP32':
        return out.writeFloatLE(Number(v), at);
      case 'UINT64':
        return out.writeBigUInt64LE(BigInt(v), at);
      case 'INT64':
        return out.writeBigInt64LE(BigInt(v), at);
      case 'FP64':
        return out.writeDoubleLE(Number(v), at);
    }
  });
  return out;
}

/** Raw bytes back into values: 64-bit integers as bigints, BOOL as booleans, BYTES as strings. */
export function decodeRaw(datatype: string, bytes: Buffer): Values {
  if (datatype === 'BYTES') {
    const out: string[] = [];
    for (let at = 0; at < bytes.length;) {
      const length = bytes.readUInt32LE(at);
      out.push(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
      at += 4 + length;
    }
    return out;
  }
  const size = SIZES[datatype];
  const out: (number | bigint | boolean)[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    switch (datatype) {
      case 'BOOL':
        out.push(bytes.readUInt8(at) !== 0);
        break;
      case 'UINT8':
        out.push(bytes.readUInt8(at));
        break;
      case 'INT8':
        out.push(bytes.readInt8(at));
        break;
      case 'UINT16':
        out.push(bytes.readUInt16LE(at));
        break;
      case 'INT16':
        out.push(bytes.readInt16LE(at));
        break;
      case 'FP16':
        out.push(fromHalf(bytes.readUInt16LE(at)));
        break;
      case 'UINT32':
        out.push(bytes.readUInt32LE(at));
        break;
      case 'INT32':
        out.push(bytes.readInt32LE(at));
        break;
      case 'FP32':
        out.push(bytes.readFloatLE(at));
        break;
      case 'UINT64':
        out.push(bytes.readBigUInt64LE(at));
        break;
      case 'INT64':
        out.push(bytes.readBigInt64LE(at));
        break;
      case 'FP64':
        out.push(bytes.readDoubleLE(at));
        break;
    }
  }
  return out;
}

/** The request tritonclient would send: its body and headers. */
export function frameRequest(inputs: readonly ClientInput[], options: ClientOptions = {}) {
  const blobs: Buffer[] = [];
  const header: Record<string, unknown> = {
    ...(options.id !== undefined ? { id: options.id } : {}),
    inputs: inputs.map((input) => {
      const base = { name: input.name, shape: input.shape, datatype: input.datatype };
      if (input.json) {
        const data = input.values.map((v) => (typeof v === 'bigint' ? v.toString() : v));
        return { ...base, data, ...(input.parameters ? { parameters: input.parameters } : {}) };
      }
      const raw = encodeRaw(input.datatype, input.values);
      blobs.push(raw);
      return { ...base, parameters: { ...input.parameters, binary_data_size: raw.length } };
    }),
  };
  if (options.outputs) {
    header.outputs = options.outputs.map((o) => ({
      name: o.name,
      parameters: {
        ...o.parameters,
        binary_data: o.binary ?? true,
        ...(o.classification !== undefined ? { classification: o.classification } : {}),
      },
    }));
  }
  if (!options.outputs || options.parameters) {
    header.parameters = { ...options.parameters, ...(options.outputs ? {} : { binary_data_output: true }) };
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  let body = Buffer.concat([json, ...blobs]);
  const headers: Record<string, string> = { ...options.headers };
  if (blobs.length > 0) headers['Inference-Header-Content-Length'] = String(json.length);
  if (options.compress === 'gzip') body = gzipSync(body);
  if (options.compress === 'deflate') body = deflateSync(body);
  if (options.compress) headers['Content-Encoding'] = options.compress;
  if (options.acceptEncoding) headers['Accept-Encoding'] = options.acceptEncoding;
  headers['Content-Length'] = String(body.length);
  return { body, headers, headerLength: json.length };
}

export interface ClientAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The answer's JSON (its header part when binary outputs follow). */
  readonly json: Record<string, unknown>;
  /** Each output's values: from `data`, or decoded from its binary bytes. */
  readonly outputs: Record<string, { datatype: string; shape: number[]; values: Values; binary: boolean }>;
  /** The bytes on the wire, before decompression. */
  readonly wireBytes: number;
}

/** Splits an answer as tritonclient does: Inference-Header-Content-Length, then each binary output in order. */
export function parseAnswer(status: number, headers: http.IncomingHttpHeaders, wire: Buffer): ClientAnswer {
  const encoding = headers['content-encoding'];
  const body = encoding === 'gzip' ? gunzipSync(wire) : encoding === 'deflate' ? inflateSync(wire) : wire;
  const headerLength = headers['inference-header-content-length'];
  const jsonLength = headerLength === undefined ? body.length : Number(headerLength);
  const json = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as Record<string, unknown>;
  const outputs: ClientAnswer['outputs'] = {};
  let at = jsonLength;
  for (const o of (json.outputs as Record<string, unknown>[] | undefined) ?? []) {
    const size = (o.parameters as { binary_data_size?: number } | undefined)?.binary_data_size;
    const datatype = o.datatype as string;
    if (size === undefined) {
      outputs[o.name as string] = { datatype, shape: o.shape as number[], values: o.data as Values, binary: false };
    } else {
      const values = decodeRaw(datatype, body.subarray(at, at + size));
      at += size;
      outputs[o.name as string] = { datatype, shape: o.shape as number[], values, binary: true };
    }
  }
  if (status === 200 && at !== body.length) throw new Error(`${body.length - at} bytes left over in the answer`);
  return { status, headers, json, outputs, wireBytes: wire.length };
}

/** Sends a request over a fresh connection, exactly as given (no Content-Type unless the headers say). */
export function send(
  port: number,
  path: string,
  body: Buffer | undefined,
  headers: Record<string, string>,
  method = 'POST',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** tritonclient's infer(): frame, send, split. */
export async function infer(
  port: number,
  model: string,
  inputs: readonly ClientInput[],
  options: ClientOptions = {},
): Promise<ClientAnswer> {
  const { body, headers } = frameRequest(inputs, options);
  const res = await send(port, `/v2/models/${model}/infer`, body, headers);
  return parseAnswer(res.status, res.headers, res.body);
}
