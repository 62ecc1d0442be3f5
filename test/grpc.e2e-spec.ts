import { INestApplication } from '@nestjs/common';
import { loadSync } from '@grpc/proto-loader';
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
      await call(rpc, 'ModelReady', { name: 'iris', version: '-1' }),
      grpc.status.INVALID_ARGUMENT,
      /positive integer or a version label/,
    );
    // A name is read as a label (config.json version_labels), which iris does not have.
    expectStatus(
      await call(rpc, 'ModelReady', { name: 'iris', version: 'x' }),
      grpc.status.NOT_FOUND,
      "Model 'iris' has no version label 'x'; labels: none (config.json version_labels)",
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
  });

  it('answers UNIMPLEMENTED with a message for model control and for RPCs it does not serve', async () => {
    expectStatus(
      await call(rpc, 'RepositoryModelLoad', { model_name: 'iris' }),
      grpc.status.UNIMPLEMENTED,
      /not implemented/,
    );
    expectStatus(
      await call(rpc, 'RepositoryModelUnload', { model_name: 'iris' }),
      grpc.status.UNIMPLEMENTED,
      /not implemented/,
    );
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
