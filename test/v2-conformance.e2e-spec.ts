import { INestApplication } from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import request from 'supertest';
import { GrpcServer } from '../src/grpc/grpc.server';
import { bundled, fixture, makeRepository, startApp } from './support/app';
import { call, Clients, connect, grpc, ok } from './support/grpc';
import { Carried, grpcInfer } from './support/grpc-v2';
import { listen } from './support/http';
import { ClientInput, ClientOutput, frameRequest, parseAnswer, send, Values } from './support/triton-client';
import { asJson, TYPE_CASES, TypeCase } from './support/type-cases';

/**
 * The Open Inference Protocol (KServe V2) REST routes, end to end on real models: server and model
 * metadata, health and readiness, and inference for every tensor datatype the service feeds. Every
 * expected output is computed here, independently, from the formulas in test/fixtures/README.md.
 * Each inference case runs in both of the protocol's forms: JSON, and binary tensors as Triton's
 * client frames them (test/support/triton-client.ts), its answer decoded back to the JSON form so
 * that the same expectations hold for both. The same cases run over gRPC too (ModelInfer through a
 * @grpc/grpc-js client made from the .proto files, test/support/grpc-v2.ts), with raw contents as
 * Triton's client sends them and with typed contents, and the metadata and readiness cases ask the
 * matching RPCs; gRPC's own edge cases are in test/grpc.e2e-spec.ts.
 */

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];
const JSON_TYPE = /^application\/json/;
const f32 = Math.fround;

const typesRequest = (cases: readonly TypeCase[] = TYPE_CASES) => ({
  inputs: cases.map((c) => ({ name: `${c.name}_in`, shape: [2, 2], datatype: c.datatype, data: c.data })),
});

interface V2Output {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}
const byName = (outputs: V2Output[]) => Object.fromEntries(outputs.map((o) => [o.name, o]));

type Form = 'json' | 'binary' | 'grpc raw' | 'grpc typed';
const FORMS: readonly Form[] = ['json', 'binary', 'grpc raw', 'grpc typed'];
/** The forms that carry FP16, which has no typed contents in the gRPC protocol. */
const FP16_FORMS = FORMS.filter((f) => f !== 'grpc typed');
/** What each form's answer must come back as: its Content-Type over HTTP, its contents fields over gRPC. */
const CARRIED: Readonly<Record<Form, RegExp | Carried>> = {
  json: /^application\/json/,
  binary: /^application\/octet-stream/,
  'grpc raw': 'raw',
  'grpc typed': 'typed',
};

interface V2Request {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: { name: string; shape: number[]; datatype: string; data: unknown; parameters?: Record<string, unknown> }[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Typed as supertest types an answer's body, so that the cases read both forms' answers alike. */
  body: request.Response['body'];
  /** gRPC: whether the outputs came in raw_output_contents or in typed contents. */
  carried?: Carried | 'mixed';
}

/** One app under test, over both transports. */
interface Target {
  http: ReturnType<INestApplication['getHttpServer']>;
  port: number;
  grpc: Clients;
}

async function serve(env: Record<string, string>): Promise<{ app: INestApplication; at: Target }> {
  const app = await startApp(env);
  const port = await listen(app);
  return { app, at: { http: app.getHttpServer(), port, grpc: connect(app.get(GrpcServer).port!) } };
}

function expectCarried(form: Form, answer: Answer): void {
  const carried = CARRIED[form];
  if (typeof carried === 'string') expect(answer.carried).toBe(carried);
  else expect(answer.headers['content-type']).toMatch(carried);
}

/** The gRPC answers' shapes (int64, so decimal strings from this client) as numbers, as REST writes them. */
const numericShapes = (m: unknown) => JSON.parse(JSON.stringify(m), (k, v) => (k === 'shape' ? v.map(Number) : v));

/** Nested `data` in row-major order: the binary form carries every tensor flat. */
const flat = (data: unknown): unknown[] => (Array.isArray(data) ? data.flatMap(flat) : [data]);

/** A JSON input's elements as the client holds them: 64-bit integers as bigints (from numbers or decimal strings). */
const clientValues = (datatype: string, data: unknown): Values =>
  flat(data).map((v) => (datatype === 'INT64' || datatype === 'UINT64' ? BigInt(v as number | string) : v)) as Values;

/**
 * The request as Triton's client sends it: every input's data as raw bytes, every output asked for
 * in binary (those named, or all of them with binary_data_output). A 200 must come back binary, every
 * output with its binary_data_size; its values are put back as `data`, as the JSON form writes them.
 */
async function postBinary(port: number, path: string, body: V2Request): Promise<Answer> {
  const inputs: ClientInput[] = body.inputs.map((i) => ({
    name: i.name,
    datatype: i.datatype,
    shape: i.shape,
    values: clientValues(i.datatype, i.data),
    parameters: i.parameters,
  }));
  const outputs: ClientOutput[] | undefined = body.outputs?.map(({ name, parameters }) => {
    const { classification, ...others } = parameters ?? {};
    return { name, classification: classification as number | undefined, parameters: others };
  });
  const framed = frameRequest(inputs, { outputs, id: body.id, parameters: body.parameters });
  const res = await send(port, path, framed.body, framed.headers);
  const answer = parseAnswer(res.status, res.headers, res.body);
  if (res.status !== 200) return { status: res.status, headers: res.headers, body: answer.json };
  expect(res.headers['content-type']).toMatch(CARRIED.binary);
  const tensors = answer.json.outputs as { name: string; parameters?: Record<string, unknown> }[];
  const decoded = tensors.map(({ parameters, ...tensor }) => {
    const { binary_data_size, ...others } = parameters ?? {};
    expect(binary_data_size).toEqual(expect.any(Number));
    return {
      ...tensor,
      ...(Object.keys(others).length > 0 ? { parameters: others } : {}),
      data: answer.outputs[tensor.name].values.map((v) => (typeof v === 'bigint' ? asJson(v) : v)),
    };
  });
  return { status: 200, headers: res.headers, body: { ...answer.json, outputs: decoded } };
}

/** POSTs a V2 inference request in one form and fails, with the answer, unless its status is `status`. */
async function postInfer(form: Form, at: Target, path: string, body: V2Request, status = 200): Promise<Answer> {
  let answer: Answer;
  if (form === 'json') {
    const res = await request(at.http).post(path).send(body);
    answer = { status: res.status, headers: res.headers, body: res.body };
  } else if (form === 'binary') answer = await postBinary(at.port, path, body);
  else {
    const res = await grpcInfer(at.grpc, path, body, form === 'grpc raw' ? 'raw' : 'typed');
    if (res.error)
      throw new Error(`ModelInfer ${path} as ${form}: ${grpc.status[res.error.code]} ${res.error.details}`);
    answer = { status: 200, headers: {}, body: res.body, carried: res.carried };
  }
  if (answer.status !== status) {
    throw new Error(`POST ${path} as ${form} answered ${answer.status}, not ${status}: ${JSON.stringify(answer.body)}`);
  }
  return answer;
}

describe('Open Inference Protocol (V2) REST and gRPC: conformance', () => {
  let app: INestApplication;
  let at: Target;
  let http: Target['http'];
  let rpc: Clients['inference'];

  beforeAll(async () => {
    const dir = await makeRepository({
      iris: bundled('iris'),
      iris_versions: fixture('iris_versions'),
      linear: fixture('linear'),
      multi_input: fixture('multi_input'),
      fixed_shape: fixture('fixed_shape'),
      slow: fixture('slow'),
      types: fixture('types'),
      spec_example: fixture('spec_example'),
    });
    ({ app, at } = await serve({ MODEL_REPOSITORY: dir }));
    ({ http } = at);
    rpc = at.grpc.inference;
  });
  afterAll(async () => {
    at.grpc.close();
    await app.close();
  });

  describe('server', () => {
    it('GET /v2 answers the server metadata with the classification extension', async () => {
      const res = await request(http).get('/v2').expect(200);
      expect(res.headers['content-type']).toMatch(JSON_TYPE);
      expect(res.body).toEqual({
        name: expect.any(String),
        version: expect.any(String),
        extensions: expect.arrayContaining(['classification']),
      });
      expect(res.body.name.length).toBeGreaterThan(0);
      expect(res.body.extensions.every((e: unknown) => typeof e === 'string')).toBe(true);
      // ServerMetadata over gRPC: the same document.
      expect(await ok(rpc, 'ServerMetadata', {})).toEqual(res.body);
    });

    it('GET /v2/health/live answers {"live": true}', async () => {
      const res = await request(http).get('/v2/health/live').expect(200);
      expect(res.headers['content-type']).toMatch(JSON_TYPE);
      expect(res.body).toEqual({ live: true });
      expect(await ok(rpc, 'ServerLive', {})).toEqual({ live: true });
    });

    it('GET /v2/health/ready answers {"ready": true} when every model is READY', async () => {
      const res = await request(http).get('/v2/health/ready').expect(200);
      expect(res.body).toEqual({ ready: true });
      expect(await ok(rpc, 'ServerReady', {})).toEqual({ ready: true });
    });
  });

  describe('model metadata', () => {
    const io = (name: string, datatype: string, shape: number[]) => ({ name, datatype, shape });
    const META: [string, { inputs: object[]; outputs: object[] }][] = [
      [
        'iris',
        {
          inputs: [io('float_input', 'FP32', [-1, 4])],
          outputs: [io('output_label', 'INT64', [-1]), io('output_probability', 'FP32', [-1, 3])],
        },
      ],
      ['linear', { inputs: [io('x', 'FP32', [-1, 3])], outputs: [io('y', 'FP32', [-1, 1])] }],
      [
        'multi_input',
        {
          inputs: [io('a', 'FP32', [-1, 2]), io('b', 'INT64', [-1, 3])],
          outputs: [io('total', 'FP32', [-1, 1]), io('b_max', 'INT64', [-1])],
        },
      ],
      ['fixed_shape', { inputs: [io('x', 'FP32', [1, 4])], outputs: [io('y', 'FP32', [1, 2])] }],
      ['slow', { inputs: [io('x', 'FP32', [-1, -1])], outputs: [io('s', 'FP32', [])] }],
      [
        'spec_example',
        {
          inputs: [io('input0', 'UINT32', [-1, 2]), io('input1', 'BOOL', [-1])],
          outputs: [io('output0', 'FP32', [-1, 2])],
        },
      ],
      [
        'types',
        {
          inputs: TYPE_CASES.map((c) => io(`${c.name}_in`, c.datatype, [-1, 2])),
          outputs: TYPE_CASES.map((c) => io(`${c.name}_out`, c.datatype, [-1, 2])),
        },
      ],
    ];

    it.each(META)(
      'GET /v2/models/%s names its tensors with V2 datatypes and -1 for dynamic dimensions',
      async (name, tensors) => {
        const res = await request(http).get(`/v2/models/${name}`).expect(200);
        expect(res.headers['content-type']).toMatch(JSON_TYPE);
        expect(res.body).toEqual({ name, versions: ['1'], platform: 'onnx_onnxv1', ...tensors });
        // The same document for the version by number.
        const versioned = await request(http).get(`/v2/models/${name}/versions/1`).expect(200);
        expect(versioned.body).toEqual(res.body);
        // ModelMetadata over gRPC, by name and by version.
        for (const version of ['', '1'])
          expect(numericShapes(await ok(rpc, 'ModelMetadata', { name, version }))).toEqual({
            name,
            versions: ['1'],
            platform: 'onnx_onnxv1',
            ...tensors,
          });
      },
    );

    it('lists every version of a model with several, as strings', async () => {
      const res = await request(http).get('/v2/models/iris_versions').expect(200);
      expect(res.body).toMatchObject({ name: 'iris_versions', versions: ['1', '2'], platform: 'onnx_onnxv1' });
      const v2 = await request(http).get('/v2/models/iris_versions/versions/2').expect(200);
      expect(v2.body).toMatchObject({
        name: 'iris_versions',
        versions: expect.arrayContaining(['2']),
        platform: 'onnx_onnxv1',
      });
      expect(v2.body.inputs).toEqual([{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }]);
      const all = await ok(rpc, 'ModelMetadata', { name: 'iris_versions' });
      expect(all).toMatchObject({ name: 'iris_versions', versions: ['1', '2'], platform: 'onnx_onnxv1' });
      const second = numericShapes(await ok(rpc, 'ModelMetadata', { name: 'iris_versions', version: '2' }));
      expect(second.versions).toEqual(expect.arrayContaining(['2']));
      expect(second.inputs).toEqual([{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }]);
    });

    it('answers 404 {"error"} for an unknown model or version', async () => {
      for (const url of ['/v2/models/nope', '/v2/models/iris/versions/7', '/v2/models/nope/versions/1']) {
        const res = await request(http).get(url).expect(404);
        expect(res.headers['content-type']).toMatch(JSON_TYPE);
        expect(res.body).toEqual({ error: expect.any(String) });
      }
      for (const [name, version] of [
        ['nope', ''],
        ['iris', '7'],
        ['nope', '1'],
      ]) {
        const { error } = await call(rpc, 'ModelMetadata', { name, version });
        expect(error && grpc.status[error.code]).toBe('NOT_FOUND');
        expect(error!.details.length).toBeGreaterThan(0);
      }
    });
  });

  describe('model readiness', () => {
    it('GET /v2/models/{name}/ready and .../versions/{version}/ready answer ready true', async () => {
      expect((await request(http).get('/v2/models/iris/ready').expect(200)).body).toEqual({
        name: 'iris',
        ready: true,
      });
      expect((await request(http).get('/v2/models/iris_versions/versions/2/ready').expect(200)).body).toEqual({
        name: 'iris_versions',
        ready: true,
      });
      expect((await request(http).get('/v2/models/types/versions/1/ready').expect(200)).body).toEqual({
        name: 'types',
        ready: true,
      });
      expect(await ok(rpc, 'ModelReady', { name: 'iris' })).toEqual({ ready: true });
      expect(await ok(rpc, 'ModelReady', { name: 'iris_versions', version: '2' })).toEqual({ ready: true });
      expect(await ok(rpc, 'ModelReady', { name: 'types', version: '1' })).toEqual({ ready: true });
    });

    it('answers 404 {"error"} for the readiness of an unknown model or version', async () => {
      expect((await request(http).get('/v2/models/nope/ready').expect(404)).body).toEqual({
        error: expect.any(String),
      });
      expect((await request(http).get('/v2/models/iris/versions/9/ready').expect(404)).body).toEqual({
        error: expect.any(String),
      });
      for (const [name, version] of [
        ['nope', ''],
        ['iris', '9'],
      ]) {
        const { error } = await call(rpc, 'ModelReady', { name, version });
        expect(error && grpc.status[error.code]).toBe('NOT_FOUND');
      }
    });
  });

  describe.each(FORMS)('inference as %s', (form) => {
    const inferAt = (path: string, body: V2Request) => postInfer(form, at, path, body);
    const infer = (model: string, body: V2Request) => inferAt(`/v2/models/${model}/infer`, body);

    describe('inference for every datatype (the types fixture)', () => {
      let outputs: Record<string, V2Output>;
      beforeAll(async () => {
        outputs = byName((await infer('types', typesRequest())).body.outputs);
      });

      it('answers every output, and only the outputs, with the V2 envelope', async () => {
        const res = await infer('types', typesRequest());
        expectCarried(form, res);
        expect(res.body).toMatchObject({ model_name: 'types', model_version: '1' });
        expect(res.body.outputs.map((o: V2Output) => o.name).sort()).toEqual(
          TYPE_CASES.map((c) => `${c.name}_out`).sort(),
        );
      });

      it.each(TYPE_CASES.map((c) => [c.datatype, c] as const))(
        '%s: the output is the fixture formula of the input, same datatype, shape [2, 2]',
        (_, c) => {
          expect(outputs[`${c.name}_out`]).toEqual({
            name: `${c.name}_out`,
            datatype: c.datatype,
            shape: [2, 2],
            data: c.expected,
          });
        },
      );

      it('carries INT64 2^62 and UINT64 beyond 2^53 as decimal strings, and smaller values as numbers', () => {
        // Spelled out, not computed: 2^62 + 1 and 2^53 + 1 are not exact JavaScript numbers.
        expect(outputs.i64_out.data).toEqual([1, 0, '4611686018427387905', '-9223372036854775807']);
        expect(outputs.u64_out.data).toEqual([8, '9007199254740993', '18446744073709551615', 0]);
      });

      it('round-trips an INT64 2^62 and a UINT64 2^53 + 1 through one-element tensors', async () => {
        const cases = TYPE_CASES.map((c) => {
          if (c.name === 'i64')
            return { ...c, data: ['4611686018427387904', '-4611686018427387904', '9007199254740991', 5] };
          if (c.name === 'u64')
            return { ...c, data: ['9007199254740993', '4611686018427387904', '9007199254740990', '0'] };
          return c;
        });
        const res = await infer('types', {
          ...typesRequest(cases),
          outputs: [{ name: 'i64_out' }, { name: 'u64_out' }],
        });
        const out = byName(res.body.outputs);
        expect(Object.keys(out).sort()).toEqual(['i64_out', 'u64_out']);
        expect(out.i64_out.data).toEqual(['4611686018427387905', '-4611686018427387903', '9007199254740992', 6]);
        expect(out.u64_out.data).toEqual(['9007199254740994', '4611686018427387905', 9007199254740991, 1]);
      });

      // Nesting is a spelling of JSON data; binary data is flat bytes whatever the shape.
      if (form === 'json') {
        it('takes nested data for every datatype too', async () => {
          const nested = TYPE_CASES.map((c) => ({
            name: `${c.name}_in`,
            shape: [2, 2],
            datatype: c.datatype,
            data: [c.data.slice(0, 2), c.data.slice(2)],
          }));
          const res = await infer('types', { inputs: nested });
          const out = byName(res.body.outputs);
          for (const c of TYPE_CASES) expect(out[`${c.name}_out`].data).toEqual(c.expected);
        });
      }

      it('runs a batch of 3 rows ([3, 2] per input)', async () => {
        const rows3 = TYPE_CASES.map((c) => ({
          ...c,
          data: [...c.data, c.data[0], c.data[1]],
          expected: [...c.expected, c.expected[0], c.expected[1]],
        }));
        const body = {
          inputs: rows3.map((c) => ({ name: `${c.name}_in`, shape: [3, 2], datatype: c.datatype, data: c.data })),
        };
        const out = byName((await infer('types', body)).body.outputs);
        for (const c of rows3)
          expect(out[`${c.name}_out`]).toEqual({
            name: `${c.name}_out`,
            datatype: c.datatype,
            shape: [3, 2],
            data: c.expected,
          });
      });
    });

    describe('inference on the other fixtures', () => {
      it('multi_input: FP32 and INT64 in, total (FP32 [N, 1]) and b_max (INT64 [N]) out', async () => {
        const res = await infer('multi_input', {
          inputs: [
            { name: 'a', shape: [2, 2], datatype: 'FP32', data: [1.5, 2, 0, -1] },
            { name: 'b', shape: [2, 3], datatype: 'INT64', data: [1, 5, 3, -7, -2, -9] },
          ],
        });
        expect(res.body).toMatchObject({ model_name: 'multi_input', model_version: '1' });
        const out = byName(res.body.outputs);
        expect(out.total).toEqual({
          name: 'total',
          datatype: 'FP32',
          shape: [2, 1],
          data: [1.5 + 2 + 1 + 5 + 3, 0 - 1 - 7 - 2 - 9],
        });
        expect(out.b_max).toEqual({ name: 'b_max', datatype: 'INT64', shape: [2], data: [5, -2] });
      });

      it('fixed_shape: [1, 4] → [1, 2]', async () => {
        const res = await infer('fixed_shape', {
          inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
        });
        expect(res.body.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [1 + 3, 2 + 4] }]);
      });

      it('slow: a [1, D] input answers a scalar, shape [] and data [D^3]', async () => {
        const D = 8;
        const res = await infer('slow', {
          inputs: [{ name: 'x', shape: [1, D], datatype: 'FP32', data: new Array(D).fill(1) }],
        });
        expect(res.body.outputs).toEqual([{ name: 's', datatype: 'FP32', shape: [], data: [D ** 3] }]);
      });

      const LINEAR_ROWS = [
        [1, 2, 3],
        [0, 0, 0],
        [-1, 0.5, 4],
      ];
      const linear = (x: number[]) => f32(0.5 * x[0] - x[1] + 2 * x[2] + 0.25);

      it(`linear: a batch of 3 rows as shape [3, 3]${form === 'json' ? ', flat and nested data alike' : ''}`, async () => {
        const expected = [{ name: 'y', datatype: 'FP32', shape: [3, 1], data: LINEAR_ROWS.map(linear) }];
        const rows = await infer('linear', {
          inputs: [{ name: 'x', shape: [3, 3], datatype: 'FP32', data: LINEAR_ROWS.flat() }],
        });
        expect(rows.body.outputs).toEqual(expected);
        if (form === 'json') {
          const nested = await infer('linear', {
            inputs: [{ name: 'x', shape: [3, 3], datatype: 'FP32', data: LINEAR_ROWS }],
          });
          expect(nested.body.outputs).toEqual(expected);
        }
        expect(expected[0].data).toEqual([4.75, 0.25, 7.25]);
      });

      it('a specific version answers with its own model and names it', async () => {
        const body = {
          inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: SETOSA }],
          outputs: [{ name: 'output_probability' }],
        };
        const v1 = await inferAt('/v2/models/iris_versions/versions/1/infer', body);
        const v2 = await inferAt('/v2/models/iris_versions/versions/2/infer', body);
        const byDefault = await inferAt('/v2/models/iris_versions/infer', body);
        expect(v1.body).toMatchObject({ model_name: 'iris_versions', model_version: '1' });
        expect(v2.body).toMatchObject({ model_name: 'iris_versions', model_version: '2' });
        expect(byDefault.body.model_version).toBe('1');
        // Probabilities from test/fixtures/README.md.
        expect(v1.body.outputs[0].data).toEqual([
          expect.closeTo(0.984695, 5),
          expect.closeTo(0.015305, 5),
          expect.closeTo(0, 5),
        ]);
        expect(v2.body.outputs[0].data).toEqual([
          expect.closeTo(0.92037, 5),
          expect.closeTo(0.077343, 5),
          expect.closeTo(0.002287, 5),
        ]);
      });
    });

    describe('request and response fields', () => {
      const IRIS_2 = { name: 'float_input', shape: [2, 4], datatype: 'FP32', data: [...SETOSA, ...VIRGINICA] };

      it('answers every output of iris for two rows', async () => {
        const res = await infer('iris', { inputs: [IRIS_2] });
        expect(res.body).toMatchObject({ model_name: 'iris', model_version: '1' });
        const out = byName(res.body.outputs);
        expect(Object.keys(out).sort()).toEqual(['output_label', 'output_probability']);
        expect(out.output_label).toEqual({ name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] });
        expect(out.output_probability).toMatchObject({ name: 'output_probability', datatype: 'FP32', shape: [2, 3] });
        expect(out.output_probability.data).toEqual(
          [0.984695, 0.015305, 0, 1.5e-5, 0.006225, 0.99376].map((p) => expect.closeTo(p, 5)),
        );
      });

      it('answers only the outputs the request names', async () => {
        const res = await infer('iris', { inputs: [IRIS_2], outputs: [{ name: 'output_label' }] });
        expect(res.body.outputs).toEqual([{ name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] }]);
        const multi = await infer('multi_input', {
          inputs: [
            { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] },
            { name: 'b', shape: [1, 3], datatype: 'INT64', data: [4, 9, 6] },
          ],
          outputs: [{ name: 'b_max' }],
        });
        expect(multi.body.outputs).toEqual([{ name: 'b_max', datatype: 'INT64', shape: [1], data: [9] }]);
      });

      it('echoes the request id', async () => {
        const res = await infer('iris', {
          id: 'req-7f3a',
          inputs: [IRIS_2],
          outputs: [{ name: 'output_label' }],
        });
        expect(res.body).toEqual({
          model_name: 'iris',
          model_version: '1',
          id: 'req-7f3a',
          outputs: [expect.objectContaining({ name: 'output_label' })],
        });
      });

      it('accepts parameters on the request, its inputs and its outputs', async () => {
        const res = await infer('iris', {
          id: 'p1',
          parameters: { custom_flag: true, note: 'x', n: 3 },
          inputs: [{ ...IRIS_2, parameters: { tag: 'rows' } }],
          outputs: [{ name: 'output_label', parameters: { note: 'plain' } }],
        });
        expect(res.body).toMatchObject({
          model_name: 'iris',
          id: 'p1',
          outputs: [{ name: 'output_label', data: [0, 2] }],
        });
      });
    });

    describe('the classification extension', () => {
      const IRIS_3 = {
        name: 'float_input',
        shape: [3, 4],
        datatype: 'FP32',
        data: [...SETOSA, [7.0, 3.2, 4.7, 1.4], ...VIRGINICA].flat(),
      };
      const LABELS = ['setosa', 'versicolor', 'virginica'];
      /** `"<score>:<index>[:<label>]"`. */
      const CLASS = /^([-+0-9.eE]+):(\d+)(?::(.+))?$/;
      let probabilities: number[];

      beforeAll(async () => {
        const res = await infer('iris', { inputs: [IRIS_3], outputs: [{ name: 'output_probability' }] });
        probabilities = res.body.outputs[0].data;
      });

      /** Checks one row of classification strings against its probabilities: top n, highest first, with labels. */
      function checkRow(row: string[], r: number, n: number, labels?: string[], probs = probabilities, classes = 3) {
        const scores = probs.slice(r * classes, (r + 1) * classes);
        const order = scores.map((_, k) => k).sort((a, b) => scores[b] - scores[a]);
        expect(row).toHaveLength(n);
        row.forEach((text, i) => {
          const m = CLASS.exec(text);
          expect(m).not.toBeNull();
          const [, score, index, label] = m!;
          expect(Number(index)).toBe(order[i]);
          expect(Math.abs(parseFloat(score) - scores[order[i]])).toBeLessThan(1e-5);
          expect(label).toBe(labels?.[order[i]]);
        });
      }

      it('classification 2 on iris probabilities: BYTES [rows, 2], "<score>:<index>:<label>", highest first', async () => {
        const res = await infer('iris', {
          inputs: [IRIS_3],
          outputs: [{ name: 'output_probability', parameters: { classification: 2 } }],
        });
        expect(res.body.outputs).toHaveLength(1);
        const out = res.body.outputs[0];
        expect(out).toMatchObject({ name: 'output_probability', datatype: 'BYTES', shape: [3, 2] });
        expect(out.data).toHaveLength(6);
        for (let r = 0; r < 3; r++) checkRow(out.data.slice(r * 2, r * 2 + 2), r, 2, LABELS);
        expect(out.data.map((t: string) => t.split(':')[2])).toEqual([
          'setosa',
          'versicolor',
          'versicolor',
          'virginica',
          'virginica',
          'versicolor',
        ]);
        // The README's iris example, loosely.
        expect(parseFloat(out.data[0])).toBeCloseTo(0.984695, 5);
        expect(parseFloat(out.data[1])).toBeCloseTo(0.015305, 5);
      });

      it('classification 1 next to a plain output', async () => {
        const res = await infer('iris', {
          inputs: [IRIS_3],
          outputs: [{ name: 'output_label' }, { name: 'output_probability', parameters: { classification: 1 } }],
        });
        const out = byName(res.body.outputs);
        expect(out.output_label).toEqual({ name: 'output_label', datatype: 'INT64', shape: [3], data: [0, 1, 2] });
        expect(out.output_probability).toMatchObject({ datatype: 'BYTES', shape: [3, 1] });
        for (let r = 0; r < 3; r++) checkRow([out.output_probability.data[r] as string], r, 1, LABELS);
      });

      it('without labels (no config.json), "<score>:<index>"', async () => {
        const res = await infer('linear', {
          inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, -1, 0.5, 4] }],
          outputs: [{ name: 'y', parameters: { classification: 1 } }],
        });
        expect(res.body.outputs).toEqual([
          { name: 'y', datatype: 'BYTES', shape: [2, 1], data: [expect.any(String), expect.any(String)] },
        ]);
        checkRow([res.body.outputs[0].data[0]], 0, 1, undefined, [4.75], 1);
        checkRow([res.body.outputs[0].data[1]], 0, 1, undefined, [7.25], 1);
      });
    });

    it("the spec's example (corrected): input0 UINT32 [2, 2] and input1 BOOL [2] → output0 FP32", async () => {
      // The spec sends input1 with shape [3] and one element, which no server can accept; here it has shape [2].
      const res = await infer('spec_example', {
        id: '42',
        inputs: [
          { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
          { name: 'input1', shape: [2], datatype: 'BOOL', data: [true, false] },
        ],
        outputs: [{ name: 'output0' }],
      });
      expectCarried(form, res);
      // output0[i, j] = float(input0[i, j]) + (input1[i] ? 0.5 : 0)
      expect(res.body).toEqual({
        model_name: 'spec_example',
        model_version: '1',
        id: '42',
        outputs: [{ name: 'output0', shape: [2, 2], datatype: 'FP32', data: [1 + 0.5, 2 + 0.5, 3, 4] }],
      });
    });
  });
});

describe('Open Inference Protocol (V2) REST and gRPC: readiness with a model that failed to load', () => {
  let app: INestApplication;
  let at: Target;
  let http: Target['http'];

  beforeAll(async () => {
    const dir = await makeRepository({ iris: bundled('iris') }, { 'broken/1/model.onnx': 'not a model' });
    ({ app, at } = await serve({ MODEL_REPOSITORY: dir }));
    ({ http } = at);
  });
  afterAll(async () => {
    at.grpc.close();
    await app.close();
  });

  it('GET /v2/health/ready answers 503 {"ready": false}; live stays true', async () => {
    const res = await request(http).get('/v2/health/ready').expect(503);
    expect(res.headers['content-type']).toMatch(JSON_TYPE);
    expect(res.body).toEqual({ ready: false });
    expect((await request(http).get('/v2/health/live').expect(200)).body).toEqual({ live: true });
    expect(await ok(at.grpc.inference, 'ServerReady', {})).toEqual({ ready: false });
    expect(await ok(at.grpc.inference, 'ServerLive', {})).toEqual({ live: true });
  });

  it('the failed model answers ready false with 503; the other, ready true', async () => {
    expect((await request(http).get('/v2/models/broken/ready').expect(503)).body).toEqual({
      name: 'broken',
      ready: false,
    });
    expect((await request(http).get('/v2/models/broken/versions/1/ready').expect(503)).body).toEqual({
      name: 'broken',
      ready: false,
    });
    expect((await request(http).get('/v2/models/iris/ready').expect(200)).body).toEqual({ name: 'iris', ready: true });
    expect(await ok(at.grpc.inference, 'ModelReady', { name: 'broken' })).toEqual({ ready: false });
    expect(await ok(at.grpc.inference, 'ModelReady', { name: 'broken', version: '1' })).toEqual({ ready: false });
    expect(await ok(at.grpc.inference, 'ModelReady', { name: 'iris' })).toEqual({ ready: true });
  });

  it.each(FORMS)('the other model still serves inference, as %s', async (form) => {
    const res = await postInfer(form, at, '/v2/models/iris/infer', {
      inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: SETOSA }],
      outputs: [{ name: 'output_label' }],
    });
    expect(res.body.outputs).toEqual([{ name: 'output_label', datatype: 'INT64', shape: [1], data: [0] }]);
  });
});

describe('Open Inference Protocol (V2) REST and gRPC: an FP16 model', () => {
  let app: INestApplication;
  let at: Target;
  let http: Target['http'];

  beforeAll(async () => {
    const dir = await makeRepository({ fp16: fixture('fp16') });
    ({ app, at } = await serve({ MODEL_REPOSITORY: dir }));
    ({ http } = at);
  });
  afterAll(async () => {
    at.grpc.close();
    await app.close();
  });

  it('describes FP16 tensors as FP16', async () => {
    const meta = await request(http).get('/v2/models/fp16').expect(200);
    expect(numericShapes(await ok(at.grpc.inference, 'ModelMetadata', { name: 'fp16' }))).toEqual(meta.body);
    expect(meta.body).toEqual({
      name: 'fp16',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'f16_in', datatype: 'FP16', shape: [-1, 2] }],
      outputs: [{ name: 'f16_out', datatype: 'FP16', shape: [-1, 2] }],
    });
  });

  // f16_out = f16_in * 2 + 1 (test/fixtures/README.md). 0.1 is not a half, so it comes back as the
  // nearest half's value, doubled, plus one: as JSON the service rounds it, in binary the client does.
  it.each(FP16_FORMS)('serves FP16 as %s: values, and 0.1 as its nearest half', async (form) => {
    const res = await postInfer(form, at, '/v2/models/fp16/infer', {
      inputs: [{ name: 'f16_in', shape: [3, 2], datatype: 'FP16', data: [1, 2, -1, 0, 0.1, 1000] }],
    });
    expectCarried(form, res);
    expect(res.body.outputs).toEqual([
      { name: 'f16_out', datatype: 'FP16', shape: [3, 2], data: [3, 5, -1, 1, 1.2001953125, 2001] },
    ]);
  });

  it('refuses FP16 values beyond the half range with 400', async () => {
    const res = await request(http)
      .post('/v2/models/fp16/infer')
      .send({ inputs: [{ name: 'f16_in', shape: [1, 2], datatype: 'FP16', data: [1, 70000] }] })
      .expect(400);
    expect(res.body).toEqual({
      error: expect.stringMatching(/inputs\[0\]\.data\[1\]: 70000 is outside the float16 range/),
    });
  });

  it('serves the same model through the v1 route', async () => {
    const res = await request(http)
      .post('/v1/models/fp16/predict')
      .send({ features: [0.5, -2] })
      .expect(200);
    expect(res.body.outputs).toEqual({ f16_out: [2, -3] });
  });
});
