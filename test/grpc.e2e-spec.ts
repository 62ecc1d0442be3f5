import { INestApplication } from '@nestjs/common';
import { loadSync } from '@grpc/proto-loader';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { GrpcServer } from '../src/grpc/grpc.server';
import { ModelRegistry } from '../src/models/model.registry';
import { bundled, fixture, makeRepository, ROOT, startApp } from './support/app';
import { waitFor } from './support/process';
import { call, Clients, connect, grpc, ok } from './support/grpc';
import { TYPE_CASES } from './support/type-cases';

/**
 * The Open Inference Protocol over gRPC, through a @grpc/grpc-js client made from the .proto files at
 * test time: every RPC, every element type raw and typed, the error statuses with the REST routes'
 * messages, deadlines, cancellation, keys, rate limits, message limits, health, reflection, and
 * shutdown with calls in flight. Answers are checked against the REST routes of the same app.
 */

type Outcome = Awaited<ReturnType<typeof call>>;
type Output = { name: string; datatype: string; shape: string[]; contents?: Record<string, unknown[]> };
type InferResponse = {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Output[];
  raw_output_contents: Buffer[];
};

const IRIS_ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.0, 5.2, 2.3],
];
const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const readF32 = (b: Buffer) => Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));

const irisRequest = (extra: object = {}) => ({
  model_name: 'iris',
  inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: IRIS_ROWS.flat() } }],
  ...extra,
});

function expectStatus(outcome: Outcome, code: grpc.status, message?: string | RegExp): void {
  expect(outcome.error && grpc.status[outcome.error.code]).toBe(grpc.status[code]);
  if (message !== undefined)
    expect(outcome.error!.details).toEqual(typeof message === 'string' ? message : expect.stringMatching(message));
}

type IndexRow = { name: string; version: string; state: string; reason: string };

/** RepositoryIndex over gRPC, every row as the message has it (absent strings are ''). */
async function grpcIndex(rpc: Clients['inference'], metadata: Record<string, string> = {}): Promise<IndexRow[]> {
  const outcome = await call<{ models: IndexRow[] }>(rpc, 'RepositoryIndex', {}, { metadata });
  expect(outcome.error).toBeUndefined();
  return outcome.response!.models.map(({ name, version, state, reason }) => ({ name, version, state, reason }));
}

/** POST /v2/repository/index of the same app, in the gRPC message's terms. */
async function restIndex(app: INestApplication, key?: string): Promise<IndexRow[]> {
  const req = request(app.getHttpServer()).post('/v2/repository/index');
  const res = await (key ? req.set('Authorization', `Bearer ${key}`) : req);
  expect(res.status).toBe(200);
  return (res.body as Partial<IndexRow>[]).map((r) => ({
    name: r.name!,
    version: r.version ?? '',
    state: r.state!,
    reason: r.reason ?? '',
  }));
}

async function grpcApp(env: Record<string, string> = {}): Promise<{ app: INestApplication; clients: Clients }> {
  const app = await startApp(env);
  return { app, clients: connect(app.get(GrpcServer).port!) };
}

describe('gRPC: the inference service on the bundled models', () => {
  let app: INestApplication;
  let clients: Clients;
  let rpc: Clients['inference'];

  beforeAll(async () => {
    ({ app, clients } = await grpcApp());
    rpc = clients.inference;
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  it('answers liveness, readiness, server and model metadata as the REST routes do', async () => {
    expect(await ok(rpc, 'ServerLive', {})).toEqual({ live: true });
    expect(await ok(rpc, 'ServerReady', {})).toEqual({ ready: true });
    expect(await ok(rpc, 'ModelReady', { name: 'iris' })).toEqual({ ready: true });
    expect(await ok(rpc, 'ModelReady', { name: 'iris', version: '1' })).toEqual({ ready: true });
    const server = await ok(rpc, 'ServerMetadata', {});
    const rest = await request(app.getHttpServer()).get('/v2');
    expect(server).toEqual(rest.body);
    const metadata = await ok<Record<string, unknown>>(rpc, 'ModelMetadata', { name: 'iris' });
    const restMetadata = (await request(app.getHttpServer()).get('/v2/models/iris')).body;
    // int64 shapes arrive as decimal strings from this client.
    const numeric = (m: Record<string, unknown>) =>
      JSON.parse(JSON.stringify(m), (k, v) => (k === 'shape' ? v.map(Number) : v));
    expect(numeric(metadata)).toEqual(restMetadata);
  });

  it('infers from typed contents and answers raw_output_contents by default, as REST answers, with the id echoed', async () => {
    const answer = await ok<InferResponse>(rpc, 'ModelInfer', irisRequest({ id: 'req-7' }));
    const rest = await request(app.getHttpServer())
      .post('/v2/models/iris/infer')
      .send({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: IRIS_ROWS.flat() }] });
    expect(answer.id).toBe('req-7');
    expect(answer.model_name).toBe('iris');
    expect(answer.model_version).toBe(rest.body.model_version);
    expect(answer.outputs.map((o) => o.name)).toEqual(rest.body.outputs.map((o: { name: string }) => o.name));
    expect(answer.outputs.every((o) => o.contents === null || o.contents === undefined)).toBe(true);
    expect(answer.raw_output_contents).toHaveLength(answer.outputs.length);
    const probabilities = answer.outputs.findIndex((o) => o.datatype === 'FP32');
    const restProbabilities = rest.body.outputs.find((o: { datatype: string }) => o.datatype === 'FP32');
    expect(answer.outputs[probabilities].shape.map(Number)).toEqual(restProbabilities.shape);
    expect(readF32(answer.raw_output_contents[probabilities])).toEqual(restProbabilities.data);
  });

  it('takes raw_input_contents, and answers typed contents when binary_data_output is false', async () => {
    const raw = await ok<InferResponse>(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4] }],
      raw_input_contents: [f32(IRIS_ROWS.flat())],
      parameters: { binary_data_output: { bool_param: false } },
    });
    expect(raw.raw_output_contents).toEqual([]);
    const typed = await ok<InferResponse>(rpc, 'ModelInfer', irisRequest());
    const fp32 = raw.outputs.find((o) => o.datatype === 'FP32')!;
    const index = typed.outputs.findIndex((o) => o.datatype === 'FP32');
    expect(fp32.contents!.fp32_contents).toEqual(readF32(typed.raw_output_contents[index]));
  });

  it('answers the classification extension as BYTES, raw and typed', async () => {
    const outputs = [{ name: 'output_probability', parameters: { classification: { int64_param: '2' } } }];
    const rest = await request(app.getHttpServer())
      .post('/v2/models/iris/infer')
      .send({
        inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: IRIS_ROWS.flat() }],
        outputs: [{ name: 'output_probability', parameters: { classification: 2 } }],
      });
    expect(rest.status).toBe(200);
    const typed = await ok<InferResponse>(
      rpc,
      'ModelInfer',
      irisRequest({ outputs, parameters: { binary_data_output: { bool_param: false } } }),
    );
    expect(typed.outputs[0].datatype).toBe('BYTES');
    expect((typed.outputs[0].contents!.bytes_contents as Buffer[]).map(String)).toEqual(rest.body.outputs[0].data);
    const raw = await ok<InferResponse>(rpc, 'ModelInfer', irisRequest({ outputs }));
    const strings: string[] = [];
    const bytes = raw.raw_output_contents[0];
    for (let at = 0; at < bytes.length;) {
      const length = bytes.readUInt32LE(at);
      strings.push(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
      at += 4 + length;
    }
    expect(strings).toEqual(rest.body.outputs[0].data);
  });

  it('maps domain errors to statuses with the REST messages', async () => {
    const rest = async (body: object, model = 'iris') =>
      (await request(app.getHttpServer()).post(`/v2/models/${model}/infer`).send(body)).body.error as string;

    const unknown = await call(rpc, 'ModelInfer', { ...irisRequest(), model_name: 'nope' });
    expectStatus(
      unknown,
      grpc.status.NOT_FOUND,
      await rest({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'nope'),
    );
    expectStatus(await call(rpc, 'ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND);
    expectStatus(await call(rpc, 'ModelReady', { name: 'nope' }), grpc.status.NOT_FOUND);
    expectStatus(await call(rpc, 'ModelReady', { name: 'iris', version: '9' }), grpc.status.NOT_FOUND);
    expectStatus(
      await call(rpc, 'ModelReady', { name: 'iris', version: 'x' }),
      grpc.status.INVALID_ARGUMENT,
      /positive integer/,
    );

    const wrongShape = await call(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }],
    });
    expectStatus(
      wrongShape,
      grpc.status.INVALID_ARGUMENT,
      await rest({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }),
    );
    expect(wrongShape.error!.metadata.get('error-code')).toEqual(['INVALID_INPUT']);

    const rawMismatch = await call(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4] }],
      raw_input_contents: [f32([1, 2, 3])],
    });
    expectStatus(rawMismatch, grpc.status.INVALID_ARGUMENT, /raw_input_contents\[0\].*32 bytes.*got 12/);
    const both = await call(rpc, 'ModelInfer', { ...irisRequest(), raw_input_contents: [f32(IRIS_ROWS.flat())] });
    expectStatus(both, grpc.status.INVALID_ARGUMENT, /send one/);
    const count = await call(rpc, 'ModelInfer', { ...irisRequest(), raw_input_contents: [f32([1]), f32([2])] });
    expectStatus(count, grpc.status.INVALID_ARGUMENT, /2 entries for 1 inputs/);
    const wrongField = await call(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }],
    });
    expectStatus(wrongField, grpc.status.INVALID_ARGUMENT, /contents\.fp32_contents/);
    const bf16 = await call(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'BF16', shape: [1, 4] }],
      raw_input_contents: [Buffer.alloc(8)],
    });
    expectStatus(bf16, grpc.status.INVALID_ARGUMENT, /BF16/);
    const hostileShape = await call(rpc, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'BYTES', shape: ['9007199254740991', '-1'] }],
      raw_input_contents: [Buffer.alloc(4)],
    });
    expectStatus(hostileShape, grpc.status.INVALID_ARGUMENT);
    const unknownOutput = await call(rpc, 'ModelInfer', irisRequest({ outputs: [{ name: 'nope' }] }));
    expectStatus(unknownOutput, grpc.status.INVALID_ARGUMENT, /Unknown output 'nope'/);
  });

  it('answers the configuration, statistics and repository index extensions from the REST code', async () => {
    const config = await ok<{ config: Record<string, unknown> }>(rpc, 'ModelConfig', { name: 'iris' });
    const restConfig = (await request(app.getHttpServer()).get('/v2/models/iris/config')).body;
    expect(config.config.name).toBe(restConfig.name);
    expect(config.config.platform).toBe(restConfig.platform);
    expect(config.config.backend).toBe(restConfig.backend);
    expect(Number(config.config.max_batch_size)).toBe(restConfig.max_batch_size);
    expect((config.config.input as { data_type: string }[]).map((i) => i.data_type)).toEqual(
      restConfig.input.map((i: { data_type: string }) => i.data_type),
    );

    await ok(rpc, 'ModelInfer', irisRequest());
    const stats = await ok<{ model_stats: { name: string; version: string; inference_count: string }[] }>(
      rpc,
      'ModelStatistics',
      {
        name: 'iris',
      },
    );
    const restStats = (await request(app.getHttpServer()).get('/v2/models/iris/stats')).body;
    expect(stats.model_stats.map((s) => [s.name, s.version, Number(s.inference_count)])).toEqual(
      restStats.model_stats.map((s: { name: string; version: string; inference_count: number }) => [
        s.name,
        s.version,
        s.inference_count,
      ]),
    );
    const all = await ok<{ model_stats: unknown[] }>(rpc, 'ModelStatistics', {});
    expect(all.model_stats.length).toBeGreaterThan(stats.model_stats.length - 1);

    const index = await ok<{ models: { name: string; version: string; state: string }[] }>(rpc, 'RepositoryIndex', {
      ready: true,
    });
    expect(index.models.map((m) => m.name)).toEqual(expect.arrayContaining(['iris', 'digits']));
    expect(index.models.every((m) => m.state === 'READY')).toBe(true);
    expect(await grpcIndex(rpc)).toEqual(await restIndex(app));
  });

  it('refuses model control in MODEL_CONTROL_MODE=none as REST does, and answers UNIMPLEMENTED for RPCs it does not serve', async () => {
    for (const [method, route] of [
      ['RepositoryModelLoad', 'load'],
      ['RepositoryModelUnload', 'unload'],
    ]) {
      const rest = await request(app.getHttpServer()).post(`/v2/repository/models/iris/${route}`);
      expect(rest.status).toBe(400);
      expect(rest.body.error).toMatch(/needs MODEL_CONTROL_MODE=explicit; .*=none/);
      const outcome = await call(rpc, method, { model_name: 'iris' });
      expectStatus(outcome, grpc.status.FAILED_PRECONDITION, rest.body.error);
      expect(outcome.error!.metadata.get('error-code')).toEqual(['MODEL_CONTROL_DISABLED']);
    }
    expect(await ok(rpc, 'ModelReady', { name: 'iris' })).toEqual({ ready: true });
    // A method of Triton's proto that this one leaves out (its shared-memory RPCs), called by path.
    const outcome = await new Promise<Outcome>((resolve) =>
      rpc.makeUnaryRequest(
        '/inference.GRPCInferenceService/SystemSharedMemoryStatus',
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        (error) => resolve(error ? { error } : { response: {} }),
      ),
    );
    expectStatus(outcome, grpc.status.UNIMPLEMENTED);
    expect(outcome.error!.details).toMatch(/SystemSharedMemoryStatus/);
  });

  it('answers grpc.health.v1 from readiness, and NOT_FOUND for an unknown service', async () => {
    expect(await ok(clients.health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await ok(clients.health, 'Check', { service: 'inference.GRPCInferenceService' })).toEqual({
      status: 'SERVING',
    });
    expect(await ok(clients.health, 'Check', { service: 'liveness' })).toEqual({ status: 'SERVING' });
    expectStatus(await call(clients.health, 'Check', { service: 'nope' }), grpc.status.NOT_FOUND);
  });

  it('lists its services through server reflection', async () => {
    const reflection = grpc.loadPackageDefinition(
      loadSync(path.join(ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto'), {
        keepCase: true,
      }),
    ) as unknown as { grpc: { reflection: { v1alpha: { ServerReflection: grpc.ServiceClientConstructor } } } };
    type Listing = { list_services_response?: { service: { name: string }[] } };
    const client = new reflection.grpc.reflection.v1alpha.ServerReflection(
      `127.0.0.1:${app.get(GrpcServer).port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Listing> };
    const stream = client.ServerReflectionInfo();
    const answer = new Promise<string[]>((resolve, reject) => {
      stream.on('data', (d: Listing) => resolve(d.list_services_response!.service.map((s) => s.name)));
      stream.on('error', reject);
    });
    stream.write({ list_services: '' });
    const services = await answer;
    stream.end();
    client.close();
    expect(services).toEqual(expect.arrayContaining(['inference.GRPCInferenceService', 'grpc.health.v1.Health']));
  });
});

describe('gRPC: every element type, raw and typed', () => {
  let app: INestApplication;
  let clients: Clients;

  beforeAll(async () => {
    const dir = await makeRepository({ types: fixture('types'), fp16: fixture('fp16') });
    ({ app, clients } = await grpcApp({ MODEL_REPOSITORY: dir, CACHE_ENABLED: 'false' }));
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  /** Raw little-endian bytes of a case's data, written here independently of the service. */
  function rawOf(datatype: string, data: readonly (number | string | boolean)[]): Buffer {
    const width: Record<string, [number, string]> = {
      FP32: [4, 'writeFloatLE'],
      FP64: [8, 'writeDoubleLE'],
      INT8: [1, 'writeInt8'],
      INT16: [2, 'writeInt16LE'],
      INT32: [4, 'writeInt32LE'],
      INT64: [8, 'writeBigInt64LE'],
      UINT8: [1, 'writeUInt8'],
      UINT16: [2, 'writeUInt16LE'],
      UINT32: [4, 'writeUInt32LE'],
      UINT64: [8, 'writeBigUInt64LE'],
    };
    if (datatype === 'BOOL') return Buffer.from(data.map((b) => (b ? 1 : 0)));
    if (datatype === 'BYTES') {
      return Buffer.concat(
        data.map((s) => {
          const utf8 = Buffer.from(String(s), 'utf8');
          const length = Buffer.alloc(4);
          length.writeUInt32LE(utf8.length);
          return Buffer.concat([length, utf8]);
        }),
      );
    }
    const [size, write] = width[datatype];
    const out = Buffer.alloc(size * data.length);
    data.forEach((v, i) =>
      (out as unknown as Record<string, (v: unknown, at: number) => void>)[write](
        size === 8 && /INT64/.test(datatype) ? BigInt(v) : Number(v),
        i * size,
      ),
    );
    return out;
  }

  const FIELD: Record<string, string> = {
    BOOL: 'bool_contents',
    INT8: 'int_contents',
    INT16: 'int_contents',
    INT32: 'int_contents',
    INT64: 'int64_contents',
    UINT8: 'uint_contents',
    UINT16: 'uint_contents',
    UINT32: 'uint_contents',
    UINT64: 'uint64_contents',
    FP32: 'fp32_contents',
    FP64: 'fp64_contents',
    BYTES: 'bytes_contents',
  };
  const typedValue = (datatype: string, v: number | string | boolean) =>
    datatype === 'BYTES' ? Buffer.from(String(v), 'utf8') : /INT64/.test(datatype) ? String(v) : v;

  it('answers every case raw in and raw out, as the fixture computes it', async () => {
    const answer = await ok<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'types',
      inputs: TYPE_CASES.map((c) => ({ name: `${c.name}_in`, datatype: c.datatype, shape: [2, 2] })),
      raw_input_contents: TYPE_CASES.map((c) => rawOf(c.datatype, c.data)),
      outputs: TYPE_CASES.map((c) => ({ name: `${c.name}_out` })),
    });
    TYPE_CASES.forEach((c, i) => {
      expect(answer.outputs[i]).toMatchObject({ name: `${c.name}_out`, datatype: c.datatype, shape: ['2', '2'] });
      const expected =
        c.datatype === 'FP32'
          ? Buffer.from(new Float32Array(c.expected as number[]).buffer)
          : rawOf(c.datatype, c.expected);
      expect([c.name, answer.raw_output_contents[i]]).toEqual([c.name, expected]);
    });
  });

  it('answers every case typed in and typed out', async () => {
    const answer = await ok<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'types',
      inputs: TYPE_CASES.map((c) => ({
        name: `${c.name}_in`,
        datatype: c.datatype,
        shape: [2, 2],
        contents: { [FIELD[c.datatype]]: c.data.map((v) => typedValue(c.datatype, v)) },
      })),
      outputs: TYPE_CASES.map((c) => ({ name: `${c.name}_out` })),
      parameters: { binary_data_output: { bool_param: false } },
    });
    expect(answer.raw_output_contents).toEqual([]);
    TYPE_CASES.forEach((c, i) => {
      const got = answer.outputs[i].contents![FIELD[c.datatype]];
      const expected = c.expected.map((v) => typedValue(c.datatype, v));
      if (c.datatype === 'FP32') expect([c.name, got]).toEqual([c.name, (c.expected as number[]).map(Math.fround)]);
      else expect([c.name, got]).toEqual([c.name, expected]);
    });
  });

  it('takes FP16 only raw, both ways', async () => {
    const half = (bits: number[]) => Buffer.from(new Uint16Array(bits).buffer);
    // 1, 2, -1, 0 → 3, 5, -1, 1 in half precision bits.
    const answer = await ok<InferResponse>(clients.inference, 'ModelInfer', {
      model_name: 'fp16',
      inputs: [{ name: 'f16_in', datatype: 'FP16', shape: [2, 2] }],
      raw_input_contents: [half([0x3c00, 0x4000, 0xbc00, 0x0000])],
    });
    expect(answer.outputs[0]).toMatchObject({ datatype: 'FP16', shape: ['2', '2'] });
    expect(answer.raw_output_contents[0]).toEqual(half([0x4200, 0x4500, 0xbc00, 0x3c00]));
    const typedIn = await call(clients.inference, 'ModelInfer', {
      model_name: 'fp16',
      inputs: [{ name: 'f16_in', datatype: 'FP16', shape: [1, 2], contents: { fp32_contents: [1, 2] } }],
    });
    expectStatus(typedIn, grpc.status.INVALID_ARGUMENT, /only as raw contents/);
    const typedOut = await call(clients.inference, 'ModelInfer', {
      model_name: 'fp16',
      inputs: [{ name: 'f16_in', datatype: 'FP16', shape: [1, 2] }],
      raw_input_contents: [half([0x3c00, 0x4000])],
      parameters: { binary_data_output: { bool_param: false } },
    });
    expectStatus(typedOut, grpc.status.INVALID_ARGUMENT, /only as raw contents/);
  });

  it('refuses typed values out of their type range with the REST message', async () => {
    const outcome = await call(clients.inference, 'ModelInfer', {
      model_name: 'types',
      inputs: TYPE_CASES.map((c) => ({
        name: `${c.name}_in`,
        datatype: c.datatype,
        shape: [2, 2],
        contents: { [FIELD[c.datatype]]: c.data.map((v) => (c.name === 'i8' ? 300 : typedValue(c.datatype, v))) },
      })),
    });
    expectStatus(outcome, grpc.status.INVALID_ARGUMENT, /300 is outside the int8 range/);
  });
});

describe('gRPC: deadlines, cancellation, backpressure and message limits', () => {
  let app: INestApplication;
  let clients: Clients;
  const SLOW_WIDTH = 2400;
  // Each call's input differs, so that no layer may answer one call with another's run.
  let fill = 1;
  const slow = () => ({
    model_name: 'slow',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, SLOW_WIDTH] }],
    raw_input_contents: [f32(new Array(SLOW_WIDTH).fill(fill++))],
  });

  beforeAll(async () => {
    const dir = await makeRepository(
      { iris: bundled('iris'), slow: fixture('slow') },
      { 'slow/config.json': JSON.stringify({ batching: { max_queue_size: 2 } }) },
    );
    ({ app, clients } = await grpcApp({
      MODEL_REPOSITORY: dir,
      INFERENCE_WORKERS: '1',
      CACHE_ENABLED: 'false',
      GRPC_MAX_MESSAGE_BYTES: '65536',
    }));
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  /** Starts a slow call and waits until the only worker runs it, so the next ones queue. */
  async function occupyWorker() {
    const batcher = app.get(ModelRegistry).servingVersion('slow').batcher;
    const running = call(clients.inference, 'ModelInfer', slow());
    await waitFor(() => batcher.stats.inFlight > 0, 20000, 'the slow call to run');
    // Wrapped, because an async function returning a promise would wait for it.
    return { running };
  }

  it('answers DEADLINE_EXCEEDED for a call whose grpc-timeout passes while it is queued, and never runs it', async () => {
    const batcher = app.get(ModelRegistry).servingVersion('slow').batcher;
    const { running } = await occupyWorker();
    const runsBefore = batcher.stats.runs;
    const late = await call(clients.inference, 'ModelInfer', slow(), { deadlineMs: 50 });
    expectStatus(late, grpc.status.DEADLINE_EXCEEDED);
    expect((await running).error).toBeUndefined();
    expect(batcher.stats.runs - runsBefore).toBeLessThanOrEqual(1);
  });

  it('drops a cancelled call from the queue', async () => {
    const batcher = app.get(ModelRegistry).servingVersion('slow').batcher;
    const { running } = await occupyWorker();
    const queued = call(clients.inference, 'ModelInfer', slow());
    await waitFor(() => batcher.depth > 0, 20000, 'a call to queue');
    queued.cancel();
    expectStatus(await queued, grpc.status.CANCELLED);
    await waitFor(() => batcher.depth === 0, 20000, 'the cancelled call to leave the queue');
    const runsBefore = batcher.stats.runs;
    expect((await running).error).toBeUndefined();
    // The cancelled call's run never started: only the running one finished since.
    await new Promise((r) => setTimeout(r, 50));
    expect(batcher.stats.runs - runsBefore).toBeLessThanOrEqual(1);
    expect(batcher.stats.inFlight).toBe(0);
  });

  it('answers UNAVAILABLE when the queue is full, with the REST message', async () => {
    const { running } = await occupyWorker();
    const queued = [call(clients.inference, 'ModelInfer', slow()), call(clients.inference, 'ModelInfer', slow())];
    const batcher = app.get(ModelRegistry).servingVersion('slow').batcher;
    await waitFor(() => batcher.depth >= 2, 20000, 'two calls to queue');
    const full = await call(clients.inference, 'ModelInfer', slow());
    expectStatus(full, grpc.status.UNAVAILABLE, /queue/i);
    expect(full.error!.metadata.get('error-code')).toEqual(['QUEUE_FULL']);
    await Promise.all([running, ...queued]);
  });

  it('refuses a message over GRPC_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED and keeps serving', async () => {
    const big = await call(clients.inference, 'ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [5000, 4] }],
      raw_input_contents: [Buffer.alloc(80000)],
    });
    expectStatus(big, grpc.status.RESOURCE_EXHAUSTED);
    expect(await ok(clients.inference, 'ModelInfer', irisRequest())).toBeDefined();
  });

  it('answers garbage bytes with INTERNAL or INVALID_ARGUMENT, never a crash', async () => {
    const outcome = await new Promise<Outcome>((resolve) =>
      clients.inference.makeUnaryRequest(
        '/inference.GRPCInferenceService/ModelInfer',
        () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]),
        (b: Buffer) => b,
        {},
        (error) => resolve(error ? { error } : { response: {} }),
      ),
    );
    expect(outcome.error).toBeDefined();
    expect(await ok(clients.inference, 'ServerLive', {})).toEqual({ live: true });
  });
});

describe('gRPC: API keys and rate limits', () => {
  const KEY = 'grpc-test-key-0123456789';
  const ADMIN = 'grpc-admin-key-0123456789';
  let app: INestApplication;
  let clients: Clients;

  beforeAll(async () => {
    ({ app, clients } = await grpcApp({ API_KEYS: `${KEY},${ADMIN}:admin`, RATE_LIMIT_RPM: '6' }));
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  it('needs a key from metadata, with the HTTP messages; the probes are open and never limited', async () => {
    for (let i = 0; i < 10; i++) expect(await ok(clients.inference, 'ServerLive', {})).toEqual({ live: true });
    expect(await ok(clients.inference, 'ServerReady', {})).toEqual({ ready: true });
    const none = await call(clients.inference, 'ServerMetadata', {});
    const restNone = await request(app.getHttpServer()).get('/v2/models/iris');
    expectStatus(none, grpc.status.UNAUTHENTICATED, restNone.body.error);
    expectStatus(
      await call(clients.inference, 'ServerMetadata', {}, { metadata: { 'x-api-key': 'wrong-key-0123456789abc' } }),
      grpc.status.UNAUTHENTICATED,
      'The API key is not valid',
    );
    expectStatus(
      await call(clients.inference, 'ServerMetadata', {}, { metadata: { authorization: `Bearer ${ADMIN}` } }),
      grpc.status.PERMISSION_DENIED,
      /inference scope/,
    );
    expect(await ok(clients.inference, 'ServerMetadata', {}, { authorization: `Bearer ${KEY}` })).toMatchObject({
      extensions: expect.any(Array),
    });
  });

  it('counts a key over gRPC and HTTP together and answers RESOURCE_EXHAUSTED over the limit', async () => {
    // One call was counted by the test above; the budget is 6 per minute per key.
    const answers = [];
    for (let i = 0; i < 3; i++)
      answers.push(await call(clients.inference, 'ServerMetadata', {}, { metadata: { 'x-api-key': KEY } }));
    for (let i = 0; i < 2; i++) await request(app.getHttpServer()).get('/v2').set('X-API-Key', KEY);
    const over = await call(clients.inference, 'ServerMetadata', {}, { metadata: { 'x-api-key': KEY } });
    expect(answers.every((a) => a.error === undefined)).toBe(true);
    expectStatus(over, grpc.status.RESOURCE_EXHAUSTED, /Rate limit of 6 requests per minute/);
    expect(Number(over.error!.metadata.get('retry-after')[0])).toBeGreaterThan(0);
  });
});

describe('gRPC: model control (MODEL_CONTROL_MODE=explicit, API keys)', () => {
  const KEY = 'grpc-inference-key-0123456789';
  const ADMIN = 'grpc-admin-key-0123456789ab';
  const VERSIONS = fixture('iris_versions');
  const asAdmin = { metadata: { authorization: `Bearer ${ADMIN}` } };
  const asInference = { metadata: { 'x-api-key': KEY } };
  let dir: string;
  let app: INestApplication;
  let clients: Clients;
  let rpc: Clients['inference'];

  /** Inference on `model` over gRPC and over REST; the gRPC answer, with REST's beside it. */
  async function inferBoth(model: string) {
    const grpcAnswer = await call<InferResponse>(
      rpc,
      'ModelInfer',
      { ...irisRequest(), model_name: model, parameters: { binary_data_output: { bool_param: false } } },
      asInference,
    );
    const rest = await request(app.getHttpServer())
      .post(`/v2/models/${model}/infer`)
      .set('X-API-Key', KEY)
      .set('Cache-Control', 'no-store')
      .send({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], data: IRIS_ROWS.flat() }] });
    return { grpcAnswer, rest };
  }

  beforeAll(async () => {
    // iris, and `iv` with only version 1 on disk and no default_version: the highest version serves.
    const config = JSON.parse(await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete config.default_version;
    dir = await makeRepository({ iris: bundled('iris'), iv: VERSIONS }, { 'iv/config.json': JSON.stringify(config) });
    await fs.rm(path.join(dir, 'iv', '2'), { recursive: true });
    ({ app, clients } = await grpcApp({
      MODEL_REPOSITORY: dir,
      MODEL_CONTROL_MODE: 'explicit',
      API_KEYS: `${KEY},${ADMIN}:inference+admin`,
      INFERENCE_WORKERS: '1',
    }));
    rpc = clients.inference;
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  it('needs the admin scope for load and unload, with the REST messages; the index needs only a key', async () => {
    for (const [method, route] of [
      ['RepositoryModelLoad', 'load'],
      ['RepositoryModelUnload', 'unload'],
    ]) {
      const rest = await request(app.getHttpServer()).post(`/v2/repository/models/iv/${route}`).set('X-API-Key', KEY);
      expect(rest.status).toBe(403);
      expect(rest.body.error).toMatch(/admin scope/);
      expectStatus(
        await call(rpc, method, { model_name: 'iv' }, asInference),
        grpc.status.PERMISSION_DENIED,
        rest.body.error,
      );
      const anonymous = await request(app.getHttpServer()).post(`/v2/repository/models/iv/${route}`);
      expect(anonymous.status).toBe(401);
      expectStatus(await call(rpc, method, { model_name: 'iv' }), grpc.status.UNAUTHENTICATED, anonymous.body.error);
    }
    // Nothing was unloaded by the refused calls.
    expect(await ok(rpc, 'ModelReady', { name: 'iv' }, { 'x-api-key': KEY })).toEqual({ ready: true });
    expect(await grpcIndex(rpc, asInference.metadata)).toEqual([
      { name: 'iris', version: '1', state: 'READY', reason: '' },
      { name: 'iv', version: '1', state: 'READY', reason: '' },
    ]);
  });

  it('loads a version copied into the repository: it serves unversioned calls once the load answers', async () => {
    expect((await inferBoth('iv')).grpcAnswer.response!.model_version).toBe('1');
    const staging = path.join(dir, 'iv', '.staging-2');
    await fs.mkdir(staging);
    await fs.copyFile(path.join(VERSIONS, '2', 'model.onnx'), path.join(staging, 'model.onnx'));
    await fs.rename(staging, path.join(dir, 'iv', '2'));

    expect(await ok(rpc, 'RepositoryModelLoad', { model_name: 'iv' }, asAdmin.metadata)).toEqual({});
    const { grpcAnswer, rest } = await inferBoth('iv');
    expect(rest.status).toBe(200);
    expect(rest.body.model_version).toBe('2');
    expect(grpcAnswer.response!.model_version).toBe('2');
    const probabilities = (r: { outputs: { datatype: string; contents?: Record<string, unknown[]> }[] }) =>
      r.outputs.find((o) => o.datatype === 'FP32')!.contents!.fp32_contents;
    expect(probabilities(grpcAnswer.response!)).toEqual(
      rest.body.outputs.find((o: { datatype: string }) => o.datatype === 'FP32').data,
    );
    expect(await ok(rpc, 'ModelReady', { name: 'iv', version: '1' }, asInference.metadata)).toEqual({ ready: true });
    expect(await grpcIndex(rpc, asInference.metadata)).toEqual(await restIndex(app, KEY));
  });

  it('answers a load that fails with INVALID_ARGUMENT and the REST message; the index shows FAILED with its reason', async () => {
    const staging = path.join(dir, 'iv', '.staging-3');
    await fs.mkdir(staging);
    await fs.writeFile(path.join(staging, 'model.onnx'), 'this is not an ONNX model');
    await fs.rename(staging, path.join(dir, 'iv', '3'));

    const outcome = await call(rpc, 'RepositoryModelLoad', { model_name: 'iv' }, asAdmin);
    expectStatus(outcome, grpc.status.INVALID_ARGUMENT, /version 3: .*iv\/3\/model\.onnx/);
    expect(outcome.error!.metadata.get('error-code')).toEqual(['MODEL_LOAD_FAILED']);
    const rest = await request(app.getHttpServer())
      .post('/v2/repository/models/iv/load')
      .set('Authorization', `Bearer ${ADMIN}`);
    expect(rest.status).toBe(400);
    expect(outcome.error!.details).toBe(rest.body.error);

    const index = await grpcIndex(rpc, asInference.metadata);
    expect(index).toEqual(await restIndex(app, KEY));
    expect(index).toEqual(
      expect.arrayContaining([
        { name: 'iv', version: '2', state: 'READY', reason: '' },
        { name: 'iv', version: '3', state: 'FAILED', reason: expect.stringMatching(/Protobuf parsing failed/) },
      ]),
    );
    // Version 2 keeps serving.
    expect((await inferBoth('iv')).grpcAnswer.response!.model_version).toBe('2');
    await fs.rm(path.join(dir, 'iv', '3'), { recursive: true });
  });

  it("takes tritonclient's load_model(config=, files=): config as string_param, the model as bytes_param", async () => {
    const bytes = await fs.readFile(path.join(VERSIONS, '2', 'model.onnx'));
    const config = await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8');
    const parameters = {
      config: { string_param: config },
      'file:1/model.onnx': { bytes_param: bytes },
      // Triton's own, which means nothing here and is not refused, as over REST.
      unload_dependents: { bool_param: true },
    };
    expect(await ok(rpc, 'RepositoryModelLoad', { model_name: 'uploaded', parameters }, asAdmin.metadata)).toEqual({});
    expect(await fs.readFile(path.join(dir, 'uploaded', '1', 'model.onnx'))).toEqual(bytes);
    expect((await fs.readdir(path.join(dir, 'uploaded'))).sort()).toEqual(['1', 'config.json']);
    const { grpcAnswer, rest } = await inferBoth('uploaded');
    expect(grpcAnswer.error).toBeUndefined();
    expect(grpcAnswer.response).toMatchObject({ model_name: 'uploaded', model_version: '1' });
    expect(rest.body.model_version).toBe('1');
    const v1 = await request(app.getHttpServer())
      .post('/v1/models/uploaded/predict')
      .set('X-API-Key', KEY)
      .send({ features: IRIS_ROWS[0] });
    expect(v1.body).toMatchObject({ model: 'uploaded', version: 1, label: 'setosa' });
  });

  it('refuses a bad upload with INVALID_ARGUMENT and writes nothing', async () => {
    const bytes = await fs.readFile(path.join(VERSIONS, '1', 'model.onnx'));
    const traversal = await call(
      rpc,
      'RepositoryModelLoad',
      { model_name: 'uploaded', parameters: { 'file:../../escape.onnx': { bytes_param: bytes } } },
      asAdmin,
    );
    const restTraversal = await request(app.getHttpServer())
      .post('/v2/repository/models/uploaded/load')
      .set('Authorization', `Bearer ${ADMIN}`)
      .send({ parameters: { 'file:../../escape.onnx': bytes.toString('base64') } });
    expect(restTraversal.status).toBe(400);
    expectStatus(traversal, grpc.status.INVALID_ARGUMENT, restTraversal.body.error);
    await expect(fs.stat(path.join(dir, '..', 'escape.onnx'))).rejects.toThrow();

    const badConfig = await call(
      rpc,
      'RepositoryModelLoad',
      { model_name: 'fresh', parameters: { config: { string_param: '{"batching": 7' } } },
      asAdmin,
    );
    const restBadConfig = await request(app.getHttpServer())
      .post('/v2/repository/models/fresh/load')
      .set('Authorization', `Bearer ${ADMIN}`)
      .send({ parameters: { config: '{"batching": 7' } });
    expect(restBadConfig.status).toBe(400);
    expectStatus(badConfig, grpc.status.INVALID_ARGUMENT, restBadConfig.body.error);
    // The wrong member of the oneof, for either parameter.
    expectStatus(
      await call(
        rpc,
        'RepositoryModelLoad',
        { model_name: 'fresh', parameters: { config: { bytes_param: Buffer.from('{}') } } },
        asAdmin,
      ),
      grpc.status.INVALID_ARGUMENT,
      /parameters\.config must be the JSON configuration as text \(string_param\)/,
    );
    expectStatus(
      await call(
        rpc,
        'RepositoryModelLoad',
        { model_name: 'fresh', parameters: { 'file:1/model.onnx': { string_param: 'AAAA' } } },
        asAdmin,
      ),
      grpc.status.INVALID_ARGUMENT,
      /must be the file's bytes \(bytes_param\)/,
    );
    await expect(fs.stat(path.join(dir, 'fresh'))).rejects.toThrow();
  });

  it('answers a model that is not in the repository, or an empty name, as REST does', async () => {
    const rest = await request(app.getHttpServer())
      .post('/v2/repository/models/nosuch/load')
      .set('Authorization', `Bearer ${ADMIN}`);
    expect(rest.status).toBe(404);
    expectStatus(
      await call(rpc, 'RepositoryModelLoad', { model_name: 'nosuch' }, asAdmin),
      grpc.status.NOT_FOUND,
      rest.body.error,
    );
    expectStatus(
      await call(rpc, 'RepositoryModelLoad', { model_name: '' }, asAdmin),
      grpc.status.NOT_FOUND,
      /is not a model name/,
    );
  });

  it('unloads: the model answers NOT_FOUND with the REST message, the index says why, the others serve on', async () => {
    const unload = { model_name: 'iv', parameters: { unload_dependents: { bool_param: false } } };
    expect(await ok(rpc, 'RepositoryModelUnload', unload, asAdmin.metadata)).toEqual({});
    const { grpcAnswer, rest } = await inferBoth('iv');
    expect(rest.status).toBe(404);
    expectStatus(grpcAnswer, grpc.status.NOT_FOUND, rest.body.error);
    const restReady = await request(app.getHttpServer()).get('/v2/models/iv/ready').set('X-API-Key', KEY);
    expect(restReady.status).toBe(404);
    expectStatus(
      await call(rpc, 'ModelReady', { name: 'iv' }, asInference),
      grpc.status.NOT_FOUND,
      restReady.body.error,
    );
    const index = await grpcIndex(rpc, asInference.metadata);
    expect(index).toEqual(await restIndex(app, KEY));
    expect(index.find((r) => r.name === 'iv')).toEqual({
      name: 'iv',
      version: '',
      state: 'UNAVAILABLE',
      reason: expect.any(String),
    });
    expect((await inferBoth('iris')).grpcAnswer.response!.model_version).toBe('1');

    // Loaded again, it serves again.
    expect(await ok(rpc, 'RepositoryModelLoad', { model_name: 'iv' }, asAdmin.metadata)).toEqual({});
    expect((await inferBoth('iv')).grpcAnswer.response!.model_version).toBe('2');
  });
});

describe('gRPC: model control refused in MODEL_CONTROL_MODE=poll', () => {
  it('answers FAILED_PRECONDITION with the REST message naming the mode', async () => {
    const dir = await makeRepository({ iris: bundled('iris') });
    const { app, clients } = await grpcApp({
      MODEL_REPOSITORY: dir,
      MODEL_CONTROL_MODE: 'poll',
      INFERENCE_WORKERS: '1',
    });
    try {
      for (const [method, route] of [
        ['RepositoryModelLoad', 'load'],
        ['RepositoryModelUnload', 'unload'],
      ]) {
        const rest = await request(app.getHttpServer()).post(`/v2/repository/models/iris/${route}`);
        expect(rest.status).toBe(400);
        expect(rest.body.error).toMatch(/needs MODEL_CONTROL_MODE=explicit; .*=poll/);
        expectStatus(
          await call(clients.inference, method, { model_name: 'iris' }),
          grpc.status.FAILED_PRECONDITION,
          rest.body.error,
        );
      }
      expect(await grpcIndex(clients.inference)).toEqual(await restIndex(app));
    } finally {
      clients.close();
      await app.close();
    }
  });
});

describe('gRPC: shutdown', () => {
  it('answers the calls in flight before the server closes, and takes none after', async () => {
    const dir = await makeRepository({ slow: fixture('slow') });
    const { app, clients } = await grpcApp({ MODEL_REPOSITORY: dir, INFERENCE_WORKERS: '1', CACHE_ENABLED: 'false' });
    const batcher = app.get(ModelRegistry).servingVersion('slow').batcher;
    const width = 2400;
    const body = {
      model_name: 'slow',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, width] }],
      raw_input_contents: [f32(new Array(width).fill(1))],
    };
    const calls = [call(clients.inference, 'ModelInfer', body), call(clients.inference, 'ModelInfer', body)];
    await waitFor(() => batcher.stats.inFlight > 0, 20000, 'the slow call to run');
    const closed = app.close();
    const outcomes = await Promise.all(calls);
    expect(outcomes.map((o) => o.error?.details)).toEqual([undefined, undefined]);
    const [s] = outcomes.map((o) => readF32((o.response as unknown as InferResponse).raw_output_contents[0])[0]);
    expect(Math.abs(s / width ** 3 - 1)).toBeLessThan(0.02);
    await closed;
    const after = await call(clients.inference, 'ServerLive', {}, { deadlineMs: 2000 });
    expect(after.error).toBeDefined();
    clients.close();
  });
});
