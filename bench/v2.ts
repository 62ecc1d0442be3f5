/**
 * The Open Inference Protocol's cells: what they send and what they expect back. The service runs on
 * a model repository of its own, an image-sized float model (the `image` fixture, one convolution
 * over [N, 3, 224, 224] FP32) and digits, and is loaded with V2 infer requests of one instance each,
 * as JSON and as binary tensors (the binary tensor data extension, with every output asked for in
 * binary, as Triton's client sends by default). Before the cells run, every body is sent once in
 * each form: the two answers must hold the same values, and those values the model's own.
 */
import * as fs from 'node:fs';
import { bundled, fixture, makeRepository } from '../src/testing/model-repository';
import { serviceEnv, singleRows } from './workload';

export const V2_MODELS = ['image', 'digits'] as const;
export type V2ModelName = (typeof V2_MODELS)[number];
export const V2_FORMS = ['json', 'binary'] as const;
export type V2Form = (typeof V2_FORMS)[number];
/** The cells: one client, and a few at once (enough to fill the batcher). */
export const V2_CONCURRENCIES: readonly number[] = [1, 8];
/** Different images per cell, cycled by every connection, as the other cells cycle their bodies. */
const IMAGE_BODIES = 4;

export const V2_LABEL = 'service, V2 JSON and binary, batching on, Fastify';

/**
 * The service's settings for these cells: those of the `on` target (Fastify, batching on, the cache
 * off so that every request runs), on their own model repository.
 */
export function v2Env(port: number, repository: string): Record<string, string> {
  return {
    ...serviceEnv(port, 'on', repository),
    // An image as JSON is some 3 MB, past the default 1mb: raised so that JSON can be measured at all.
    BODY_LIMIT: '16mb',
  };
}

/** A throw-away repository holding the two models (test/fixtures/models/image, models/digits). */
export const v2Repository = (): Promise<string> =>
  makeRepository({ image: fixture('image'), digits: bundled('digits') });

export const removeRepository = (dir: string): Promise<void> => fs.promises.rm(dir, { recursive: true, force: true });

export interface V2Request {
  body: Buffer;
  headers: Record<string, string>;
}

/** One model's bodies in both forms, checked. */
export interface V2Workload {
  model: V2ModelName;
  path: string;
  requests: Record<V2Form, V2Request[]>;
}

interface TensorMeta {
  name: string;
  datatype: string;
  shape: number[];
}

interface Output {
  name: string;
  datatype: string;
  shape: number[];
  values: number[];
}

/** One instance's float32 values and what the model must answer for them. */
interface Instance {
  values: Float32Array;
  check(outputs: Record<string, Output>): string | null;
}

function imageInstances(size: number): Instance[] {
  return Array.from({ length: IMAGE_BODIES }, (_, b) => {
    // Pixel-like values in [0, 1], a different pattern per body.
    const values = Float32Array.from({ length: size }, (_, i) => ((i * (37 + 2 * b)) % 256) / 255);
    const mean = values.reduce((a, v) => a + v, 0) / size;
    return {
      values,
      // test/fixtures/README.md: features[k] = (k + 1) · mean(image), up to float32 rounding.
      check: (outputs) => {
        const got = outputs.features?.values ?? [];
        const want = [1, 2, 3, 4].map((k) => k * mean);
        const ok = got.length === 4 && got.every((v, k) => Math.abs(v - want[k]) <= 1e-4 * want[k]);
        return ok ? null : `features ${JSON.stringify(got)}, expected about ${JSON.stringify(want)}`;
      },
    };
  });
}

function digitsInstances(repoRoot: string): Instance[] {
  return singleRows(repoRoot, 'digits').map((row) => ({
    values: Float32Array.from(row.features),
    check: (outputs) => {
      const got = outputs.output_label?.values ?? [];
      return got.length === 1 && got[0] === row.label
        ? null
        : `output_label ${JSON.stringify(got)}, scikit-learn predicts ${row.label}`;
    },
  }));
}

/** The request in both forms, for a batch of one. */
function forms(input: TensorMeta, values: Float32Array): Record<V2Form, V2Request> {
  const shape = [1, ...input.shape.slice(1)];
  const tensor = { name: input.name, shape, datatype: input.datatype };
  // As a client serialises a float32 array to JSON: each value widened to the double it is.
  const json = Buffer.from(JSON.stringify({ inputs: [{ ...tensor, data: Array.from(values) }] }));
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ ...tensor, parameters: { binary_data_size: values.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  const raw = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return {
    json: { body: json, headers: { 'content-type': 'application/json' } },
    binary: {
      body: Buffer.concat([header, raw]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
    },
  };
}

/** The outputs of a V2 answer in either form, binary ones decoded (the two models answer FP32 and INT64). */
function outputsOf(form: V2Form, headers: Headers, body: Buffer): Record<string, Output> {
  const type = headers.get('content-type') ?? '';
  const headerLength = headers.get('inference-header-content-length');
  if (form === 'binary' && (!type.startsWith('application/octet-stream') || headerLength === null)) {
    throw new Error(`a binary answer needs octet-stream and Inference-Header-Content-Length, got "${type}"`);
  }
  const jsonLength = headerLength === null ? body.length : Number(headerLength);
  const answer = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as {
    outputs: (TensorMeta & { data?: number[]; parameters?: { binary_data_size?: number } })[];
  };
  const out: Record<string, Output> = {};
  let at = jsonLength;
  for (const o of answer.outputs) {
    const size = o.parameters?.binary_data_size;
    if (form === 'binary' && size === undefined) throw new Error(`output ${o.name} answered as JSON, not binary`);
    let values: number[];
    if (size === undefined) values = (o.data ?? []).map(Number);
    else {
      const bytes = body.subarray(at, at + size);
      at += size;
      if (o.datatype === 'FP32') values = Array.from({ length: size / 4 }, (_, i) => bytes.readFloatLE(i * 4));
      else if (o.datatype === 'INT64')
        values = Array.from({ length: size / 8 }, (_, i) => Number(bytes.readBigInt64LE(i * 8)));
      else throw new Error(`output ${o.name}: no decoder for ${o.datatype} here`);
    }
    out[o.name] = { name: o.name, datatype: o.datatype, shape: o.shape, values };
  }
  if (at !== body.length) throw new Error(`${body.length - at} bytes left over after the answer's binary outputs`);
  return out;
}

/** The same tensors, to the float32 bit: JSON carries float32 values as the doubles they widen to. */
function sameOutputs(a: Record<string, Output>, b: Record<string, Output>): boolean {
  const names = Object.keys(a).sort();
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(b).sort())) return false;
  return names.every(
    (n) =>
      a[n].datatype === b[n].datatype &&
      JSON.stringify(a[n].shape) === JSON.stringify(b[n].shape) &&
      a[n].values.length === b[n].values.length &&
      a[n].values.every((v, i) => Math.fround(v) === Math.fround(b[n].values[i])),
  );
}

/**
 * Builds each model's bodies from its V2 metadata and sends every one once in each form. Throws on
 * the first wrong answer, naming it: a fast wrong service is not a result.
 */
export async function v2Workloads(repoRoot: string, baseUrl: string): Promise<V2Workload[]> {
  const out: V2Workload[] = [];
  for (const model of V2_MODELS) {
    const metaRes = await fetch(`${baseUrl}/v2/models/${model}`);
    const meta = (await metaRes.json()) as { inputs?: TensorMeta[] };
    const input = meta.inputs?.[0];
    if (metaRes.status !== 200 || !input || meta.inputs?.length !== 1 || input.datatype !== 'FP32') {
      throw new Error(`V2 ${model}: expected one FP32 input, got HTTP ${metaRes.status} ${JSON.stringify(meta)}`);
    }
    const size = input.shape.slice(1).reduce((a, b) => a * b, 1);
    const instances = model === 'image' ? imageInstances(size) : digitsInstances(repoRoot);
    const workload: V2Workload = { model, path: `/v2/models/${model}/infer`, requests: { json: [], binary: [] } };
    for (const [i, instance] of instances.entries()) {
      const requests = forms(input, instance.values);
      const answers = {} as Record<V2Form, Record<string, Output>>;
      for (const form of V2_FORMS) {
        const res = await fetch(baseUrl + workload.path, { method: 'POST', ...requests[form] });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200)
          throw new Error(`V2 ${model} ${form} body ${i}: HTTP ${res.status} ${body.toString().slice(0, 300)}`);
        answers[form] = outputsOf(form, res.headers, body);
        const wrong = instance.check(answers[form]);
        if (wrong) throw new Error(`V2 ${model} ${form} body ${i}: ${wrong}`);
        workload.requests[form].push(requests[form]);
      }
      if (!sameOutputs(answers.json, answers.binary))
        throw new Error(`V2 ${model} body ${i}: the binary answer's values differ from the JSON answer's`);
    }
    out.push(workload);
  }
  return out;
}
