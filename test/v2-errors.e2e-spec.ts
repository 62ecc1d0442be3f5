import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ModelRegistry } from '../src/models/model.registry';
import { bundled, fixture, makeRepository, startApp, startBackpressureApp } from './support/app';

/**
 * A sweep of malformed Open Inference Protocol (V2) requests. Each must be answered with the
 * expected status (Triton's: 400 bad request, 404 unknown model or version, 503 unavailable) and a
 * body of exactly `{"error": "<message>"}`, as JSON, without a stack trace, and never a 500.
 */

interface Case {
  readonly name: string;
  readonly method?: 'get' | 'post' | 'put' | 'delete';
  readonly url?: string;
  /** Sent with supertest's JSON serialisation (Content-Type: application/json). */
  readonly json?: unknown;
  /** Sent as is, with `type` as Content-Type (application/json unless told). */
  readonly raw?: string;
  readonly type?: string;
  /** 'small' is the app started with BODY_LIMIT 10kb. */
  readonly app?: 'small';
  /** The expected status, or the statuses that are all acceptable. */
  readonly status: number | readonly number[];
}

const IRIS = '/v2/models/iris/infer';
const MULTI = '/v2/models/multi_input/infer';
const TYPES = '/v2/models/types/infer';
const SETOSA = [5.1, 3.5, 1.4, 0.2];

/** A valid iris input; `with` replaces fields. */
const iris = (fields: Record<string, unknown> = {}) => ({
  name: 'float_input',
  shape: [1, 4],
  datatype: 'FP32',
  data: SETOSA,
  ...fields,
});
const body = (input: unknown, extra: Record<string, unknown> = {}) => ({ inputs: [input], ...extra });

const A = { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] };
const B = { name: 'b', shape: [1, 3], datatype: 'INT64', data: [1, 2, 3] };

/** A valid request for the types fixture (every input [1, 2]), with one input's fields replaced. */
const TYPE_INPUTS: Record<string, { datatype: string; data: unknown[] }> = {
  f32: { datatype: 'FP32', data: [1, 2] },
  f64: { datatype: 'FP64', data: [1, 2] },
  i8: { datatype: 'INT8', data: [1, 2] },
  i16: { datatype: 'INT16', data: [1, 2] },
  i32: { datatype: 'INT32', data: [1, 2] },
  i64: { datatype: 'INT64', data: [1, 2] },
  u8: { datatype: 'UINT8', data: [1, 2] },
  u16: { datatype: 'UINT16', data: [1, 2] },
  u32: { datatype: 'UINT32', data: [1, 2] },
  u64: { datatype: 'UINT64', data: [1, 2] },
  bool: { datatype: 'BOOL', data: [true, false] },
  str: { datatype: 'BYTES', data: ['a', 'b'] },
};
const types = (name: string, fields: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  inputs: Object.entries(TYPE_INPUTS).map(([n, t]) => ({
    name: `${n}_in`,
    shape: [1, 2],
    ...t,
    ...(n === name ? fields : {}),
  })),
  ...extra,
});

const deepArrayText = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

const CASES: Case[] = [
  // The body.
  { name: 'malformed JSON', raw: '{"inputs": [', status: 400 },
  { name: 'JSON with a trailing comma', raw: '{"inputs": [],}', status: 400 },
  { name: 'an empty body', raw: '', status: 400 },
  { name: 'a JSON array body', raw: JSON.stringify([iris()]), status: 400 },
  { name: 'a JSON string body', raw: '"infer"', status: 400 },
  { name: 'a JSON number body', raw: '42', status: 400 },
  { name: 'a JSON null body', raw: 'null', status: 400 },
  { name: 'an empty object', json: {}, status: 400 },
  { name: 'inputs missing, outputs only', json: { outputs: [{ name: 'output_label' }] }, status: 400 },
  { name: 'inputs not an array (an object by name)', json: { inputs: { float_input: iris() } }, status: 400 },
  { name: 'inputs a string', json: { inputs: 'float_input' }, status: 400 },
  { name: 'inputs null', json: { inputs: null }, status: 400 },
  { name: 'inputs empty', json: { inputs: [] }, status: 400 },
  { name: 'an input that is a number', json: { inputs: [42] }, status: 400 },
  { name: 'an input that is null', json: { inputs: [null] }, status: 400 },
  { name: 'an input that is an array', json: { inputs: [[5.1, 3.5, 1.4, 0.2]] }, status: 400 },
  { name: 'id a number', json: body(iris(), { id: 42 }), status: 400 },
  { name: 'parameters a string', json: body(iris(), { parameters: 'fast' }), status: 400 },
  { name: 'parameters an array', json: body(iris(), { parameters: [1] }), status: 400 },
  { name: "an input's parameters a number", json: body(iris({ parameters: 5 })), status: 400 },

  // Names.
  { name: 'an input without a name', json: body({ shape: [1, 4], datatype: 'FP32', data: SETOSA }), status: 400 },
  { name: 'an input name that is a number', json: body(iris({ name: 7 })), status: 400 },
  { name: 'an unknown input', json: body(iris({ name: 'features' })), status: 400 },
  { name: 'an unknown input besides the right one', json: { inputs: [iris(), iris({ name: 'extra' })] }, status: 400 },
  { name: 'the same input twice', json: { inputs: [iris(), iris()] }, status: 400 },
  { name: 'a missing input (multi_input without b)', url: MULTI, json: { inputs: [A] }, status: 400 },
  {
    name: 'a missing input (types without str_in)',
    url: TYPES,
    json: { inputs: types('', {}).inputs.slice(0, -1) },
    status: 400,
  },

  // Datatypes.
  {
    name: 'an input without a datatype',
    json: body({ name: 'float_input', shape: [1, 4], data: SETOSA }),
    status: 400,
  },
  { name: 'an unknown datatype FLOAT32', json: body(iris({ datatype: 'FLOAT32' })), status: 400 },
  { name: 'a lower-case datatype fp32', json: body(iris({ datatype: 'fp32' })), status: 400 },
  { name: 'a datatype that is a number', json: body(iris({ datatype: 1 })), status: 400 },
  { name: 'FP64 for an FP32 input', json: body(iris({ datatype: 'FP64' })), status: 400 },
  { name: 'FP16 for an FP32 input', json: body(iris({ datatype: 'FP16' })), status: 400 },
  {
    name: 'BYTES for an FP32 input',
    json: body(iris({ datatype: 'BYTES', data: ['5.1', '3.5', '1.4', '0.2'] })),
    status: 400,
  },
  { name: 'INT32 for an INT64 input', url: MULTI, json: { inputs: [A, { ...B, datatype: 'INT32' }] }, status: 400 },
  { name: 'UINT64 for an INT64 input', url: TYPES, json: types('i64', { datatype: 'UINT64' }), status: 400 },
  {
    name: 'BOOL for a UINT8 input',
    url: TYPES,
    json: types('u8', { datatype: 'BOOL', data: [true, false] }),
    status: 400,
  },

  // Shapes.
  {
    name: 'an input without a shape',
    json: body({ name: 'float_input', datatype: 'FP32', data: SETOSA }),
    status: 400,
  },
  { name: 'a shape that is a string', json: body(iris({ shape: '1,4' })), status: 400 },
  { name: 'a shape that is a number', json: body(iris({ shape: 4 })), status: 400 },
  { name: 'a shape with -1', json: body(iris({ shape: [-1, 4] })), status: 400 },
  { name: 'a shape with a fraction', json: body(iris({ shape: [0.5, 8] })), status: 400 },
  { name: 'a shape with a string dimension', json: body(iris({ shape: ['1', 4] })), status: 400 },
  { name: 'a shape with null', json: body(iris({ shape: [null, 4] })), status: 400 },
  { name: 'a shape of rank 1 for a rank-2 input', json: body(iris({ shape: [4] })), status: 400 },
  { name: 'a shape of rank 3 for a rank-2 input', json: body(iris({ shape: [1, 4, 1] })), status: 400 },
  { name: 'a scalar shape [] for a rank-2 input', json: body(iris({ shape: [], data: [1] })), status: 400 },
  { name: 'a wrong inner dimension [2, 2] (4 values)', json: body(iris({ shape: [2, 2] })), status: 400 },
  {
    name: 'a batch of 2 for the fixed [1, 4] input',
    url: '/v2/models/fixed_shape/infer',
    json: body({ name: 'x', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }),
    status: 400,
  },
  {
    name: 'inputs that disagree on the batch size',
    url: MULTI,
    json: { inputs: [A, { ...B, shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] },
    status: 400,
  },
  { name: 'a huge shape [1e9, 4]', json: body(iris({ shape: [1e9, 4] })), status: 400 },
  { name: 'a huge shape [2^53, 4]', json: body(iris({ shape: [2 ** 53, 4] })), status: 400 },
  { name: 'a huge shape [1e300, 1e300]', json: body(iris({ shape: [1e300, 1e300] })), status: 400 },
  {
    name: 'a batch over MAX_BATCH_SIZE (1025 rows)',
    json: body(iris({ shape: [1025, 4], data: new Array(1025).fill(SETOSA).flat() })),
    status: 400,
  },

  // Data.
  { name: 'an input without data', json: body({ name: 'float_input', shape: [1, 4], datatype: 'FP32' }), status: 400 },
  { name: 'data a number', json: body(iris({ data: 5.1 })), status: 400 },
  { name: 'data a string', json: body(iris({ data: '5.1,3.5,1.4,0.2' })), status: 400 },
  { name: 'data null', json: body(iris({ data: null })), status: 400 },
  { name: 'data an object', json: body(iris({ data: { 0: 5.1 } })), status: 400 },
  { name: 'too few values for the shape (3 for [1, 4])', json: body(iris({ data: [5.1, 3.5, 1.4] })), status: 400 },
  {
    name: 'too many values for the shape (5 for [1, 4])',
    json: body(iris({ data: [5.1, 3.5, 1.4, 0.2, 9] })),
    status: 400,
  },
  { name: 'one row of data for shape [2, 4]', json: body(iris({ shape: [2, 4] })), status: 400 },
  { name: 'nested data with too few values', json: body(iris({ shape: [2, 4], data: [SETOSA, [1, 2]] })), status: 400 },
  { name: 'empty data for [1, 4]', json: body(iris({ data: [] })), status: 400 },
  {
    name: 'a 10000-level nested data array',
    raw: `{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":${deepArrayText(10_000)}}]}`,
    status: 400,
  },

  // Elements.
  { name: 'a string in FP32 data', json: body(iris({ data: [5.1, 'x', 1.4, 0.2] })), status: 400 },
  { name: 'a numeric string in FP32 data', json: body(iris({ data: [5.1, '3.5', 1.4, 0.2] })), status: 400 },
  {
    name: '"nan" in FP32 data (only "NaN", "Infinity", "-Infinity" spell them)',
    json: body(iris({ data: [5.1, 'nan', 1.4, 0.2] })),
    status: 400,
  },
  { name: '"NaN" in INT64 data', json: body({ name: 'x', shape: [1], datatype: 'INT64', data: ['NaN'] }), status: 400 },
  { name: 'null in FP32 data', json: body(iris({ data: [5.1, null, 1.4, 0.2] })), status: 400 },
  { name: 'a boolean in FP32 data', json: body(iris({ data: [true, 3.5, 1.4, 0.2] })), status: 400 },
  { name: 'an object in FP32 data', json: body(iris({ data: [5.1, { v: 3.5 }, 1.4, 0.2] })), status: 400 },
  {
    name: '1e39 in FP32 data (beyond float32)',
    raw: '{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,1e39,1.4,0.2]}]}',
    status: 400,
  },
  {
    name: '1e400 in FP32 data (parses to Infinity)',
    raw: '{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,1e400,1.4,0.2]}]}',
    status: 400,
  },
  { name: 'a string in FP64 data', url: TYPES, json: types('f64', { data: [1, 'two'] }), status: 400 },
  { name: 'a fraction in INT64 data', url: MULTI, json: { inputs: [A, { ...B, data: [1, 2.5, 3] }] }, status: 400 },
  {
    name: 'a non-decimal string in INT64 data',
    url: MULTI,
    json: { inputs: [A, { ...B, data: [1, '0x10', 3] }] },
    status: 400,
  },
  {
    name: 'an INT64 JSON number beyond 2^53 (not exact)',
    url: TYPES,
    json: types('i64', { data: [1, 2 ** 60] }),
    status: 400,
  },
  {
    name: 'INT64 beyond 2^63 as a string',
    url: TYPES,
    json: types('i64', { data: [1, '9223372036854775808'] }),
    status: 400,
  },
  {
    name: 'UINT64 beyond 2^64 as a string',
    url: TYPES,
    json: types('u64', { data: [1, '18446744073709551616'] }),
    status: 400,
  },
  { name: 'a negative UINT64', url: TYPES, json: types('u64', { data: [1, '-1'] }), status: 400 },
  { name: 'INT8 out of range (128)', url: TYPES, json: types('i8', { data: [1, 128] }), status: 400 },
  { name: 'INT16 out of range (-32769)', url: TYPES, json: types('i16', { data: [-32769, 1] }), status: 400 },
  { name: 'INT32 out of range (2^31)', url: TYPES, json: types('i32', { data: [2 ** 31, 1] }), status: 400 },
  { name: 'a negative UINT8', url: TYPES, json: types('u8', { data: [-1, 1] }), status: 400 },
  { name: 'UINT16 out of range (65536)', url: TYPES, json: types('u16', { data: [65536, 1] }), status: 400 },
  { name: 'UINT32 out of range (2^32)', url: TYPES, json: types('u32', { data: [2 ** 32, 1] }), status: 400 },
  { name: 'a fraction in INT32 data', url: TYPES, json: types('i32', { data: [1.5, 1] }), status: 400 },
  { name: 'a string in INT8 data', url: TYPES, json: types('i8', { data: ['1', 1] }), status: 400 },
  { name: 'a number in BOOL data', url: TYPES, json: types('bool', { data: [1, 0] }), status: 400 },
  { name: 'a string in BOOL data', url: TYPES, json: types('bool', { data: ['true', false] }), status: 400 },
  { name: 'a number in BYTES data', url: TYPES, json: types('str', { data: ['a', 7] }), status: 400 },
  { name: 'null in BYTES data', url: TYPES, json: types('str', { data: [null, 'b'] }), status: 400 },

  // Outputs.
  { name: 'outputs not an array', json: body(iris(), { outputs: { name: 'output_label' } }), status: 400 },
  { name: 'outputs a string', json: body(iris(), { outputs: 'output_label' }), status: 400 },
  { name: 'an output that is a string', json: body(iris(), { outputs: ['output_label'] }), status: 400 },
  {
    name: 'an output without a name',
    json: body(iris(), { outputs: [{ parameters: { classification: 1 } }] }),
    status: 400,
  },
  { name: 'an unknown output', json: body(iris(), { outputs: [{ name: 'output_score' }] }), status: 400 },
  { name: 'an input named as an output', json: body(iris(), { outputs: [{ name: 'float_input' }] }), status: 400 },
  {
    name: "an output's parameters a string",
    json: body(iris(), { outputs: [{ name: 'output_label', parameters: 'x' }] }),
    status: 400,
  },
  {
    name: 'classification 0',
    json: body(iris(), { outputs: [{ name: 'output_probability', parameters: { classification: 0 } }] }),
    status: 400,
  },
  {
    name: 'classification -1',
    json: body(iris(), { outputs: [{ name: 'output_probability', parameters: { classification: -1 } }] }),
    status: 400,
  },
  {
    name: 'classification 1.5',
    json: body(iris(), { outputs: [{ name: 'output_probability', parameters: { classification: 1.5 } }] }),
    status: 400,
  },
  {
    name: 'classification a string',
    json: body(iris(), { outputs: [{ name: 'output_probability', parameters: { classification: 'two' } }] }),
    status: 400,
  },
  {
    name: 'classification of a BYTES output',
    url: TYPES,
    json: types('', {}, { outputs: [{ name: 'str_out', parameters: { classification: 1 } }] }),
    status: 400,
  },

  // Models, versions and routes.
  { name: 'an unknown model', url: '/v2/models/nope/infer', json: body(iris()), status: 404 },
  { name: 'a model named __proto__', url: '/v2/models/__proto__/infer', json: body(iris()), status: 404 },
  { name: 'a model named constructor', url: '/v2/models/constructor/infer', json: body(iris()), status: 404 },
  { name: 'an unknown version', url: '/v2/models/iris/versions/99/infer', json: body(iris()), status: 404 },
  { name: 'an unknown model at a version', url: '/v2/models/nope/versions/1/infer', json: body(iris()), status: 404 },
  { name: "version 'abc'", url: '/v2/models/iris/versions/abc/infer', json: body(iris()), status: [400, 404] },
  { name: "version '0'", url: '/v2/models/iris/versions/0/infer', json: body(iris()), status: [400, 404] },
  { name: "version '1.0'", url: '/v2/models/iris/versions/1.0/infer', json: body(iris()), status: [400, 404] },
  { name: 'GET metadata of an unknown model', method: 'get', url: '/v2/models/nope', status: 404 },
  { name: 'GET metadata of an unknown version', method: 'get', url: '/v2/models/iris/versions/99', status: 404 },
  { name: "GET metadata of version 'abc'", method: 'get', url: '/v2/models/iris/versions/abc', status: [400, 404] },
  { name: 'GET readiness of an unknown model', method: 'get', url: '/v2/models/nope/ready', status: 404 },
  { name: 'GET readiness of an unknown version', method: 'get', url: '/v2/models/iris/versions/99/ready', status: 404 },
  { name: 'GET an unknown V2 route', method: 'get', url: '/v2/nothing/here', status: 404 },
  { name: 'GET on the POST-only infer route', method: 'get', url: IRIS, status: [404, 405] },
  { name: 'PUT on the infer route', method: 'put', url: IRIS, json: body(iris()), status: [404, 405] },

  // Models that cannot serve.
  { name: 'a model that failed to load', url: '/v2/models/broken/infer', json: body(iris()), status: 503 },
  {
    name: 'a model that failed to load, by version',
    url: '/v2/models/broken/versions/1/infer',
    json: body(iris()),
    status: 503,
  },
  // Its inputs are unknown: metadata with no inputs would mislead a client.
  { name: 'GET metadata of a model that failed to load', method: 'get', url: '/v2/models/broken', status: 503 },
  {
    name: 'GET metadata of a model that failed to load, by version',
    method: 'get',
    url: '/v2/models/broken/versions/1',
    status: 503,
  },

  // Transport.
  { name: 'Content-Type text/plain', raw: JSON.stringify(body(iris())), type: 'text/plain', status: [400, 415] },
  {
    name: 'a body over BODY_LIMIT (10kb)',
    app: 'small',
    json: body(iris({ shape: [1000, 4], data: new Array(1000).fill(SETOSA).flat() })),
    status: [400, 413],
  },
];

/** Checks the V2 error shape: JSON, exactly `{"error": "<non-empty message>"}`, no stack trace. */
function expectV2Error(res: request.Response) {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.body).toEqual({ error: expect.any(String) });
  expect(res.body.error.length).toBeGreaterThan(0);
  expect(res.text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/);
}

describe('Open Inference Protocol (V2) REST: malformed requests', () => {
  let app: INestApplication;
  let small: INestApplication;

  beforeAll(async () => {
    const dir = await makeRepository(
      {
        iris: bundled('iris'),
        multi_input: fixture('multi_input'),
        fixed_shape: fixture('fixed_shape'),
        types: fixture('types'),
      },
      { 'broken/1/model.onnx': 'not a model' },
    );
    [app, small] = await Promise.all([
      startApp({ MODEL_REPOSITORY: dir }),
      startApp({ MODEL_REPOSITORY: dir, BODY_LIMIT: '10kb' }),
    ]);
  });
  afterAll(() => Promise.all([app.close(), small.close()]));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const http = (c.app === 'small' ? small : app).getHttpServer();
    const method = c.method ?? 'post';
    let req = request(http)[method](c.url ?? IRIS);
    if (c.raw !== undefined) req = req.set('Content-Type', c.type ?? 'application/json').send(c.raw);
    else if (c.json !== undefined) req = req.send(c.json as object);
    const res = await req;

    const statuses: readonly number[] = typeof c.status === 'number' ? [c.status] : c.status;
    if (!statuses.includes(res.status))
      throw new Error(`expected ${statuses.join(' or ')}, got ${res.status}: ${res.text.slice(0, 500)}`);
    expectV2Error(res);
  });

  it('takes NaN and infinities in FP32 data as the strings "NaN", "Infinity", "-Infinity", and answers them so', async () => {
    const res = await request(app.getHttpServer())
      .post(IRIS)
      .send({
        inputs: [iris({ data: [5.1, 'NaN', 'Infinity', '-Infinity'] })],
        outputs: [{ name: 'output_probability' }],
      })
      .expect(200);
    const [probabilities] = res.body.outputs as { datatype: string; data: unknown[] }[];
    expect(probabilities.datatype).toBe('FP32');
    for (const v of probabilities.data) expect(['NaN', 'Infinity', '-Infinity']).toContain(v);
  });

  it('still answers a valid request after the sweep', async () => {
    const res = await request(app.getHttpServer())
      .post(IRIS)
      .send({ id: 'after', inputs: [iris()], outputs: [{ name: 'output_label' }] })
      .expect(200);
    expect(res.body).toEqual({
      model_name: 'iris',
      model_version: '1',
      id: 'after',
      outputs: [{ name: 'output_label', datatype: 'INT64', shape: [1], data: [0] }],
    });
    await request(app.getHttpServer()).get('/v2/models/iris/ready').expect(200);
  });
});

describe('Open Inference Protocol (V2) REST: failures inside the server', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let registry: ModelRegistry;

  beforeAll(async () => {
    app = await startBackpressureApp();
    http = app.getHttpServer();
    registry = app.get(ModelRegistry);
  });
  afterAll(() => app.close());

  const slow = (width: number) => ({
    inputs: [{ name: 'x', shape: [1, width], datatype: 'FP32', data: new Array(width).fill(1) }],
  });

  it('a run that fails inside onnxruntime answers 500 {"error"} without a stack trace', async () => {
    // The gather fixture's index 10 passes validation (a valid INT64) but fails inside onnxruntime.
    const res = await request(http)
      .post('/v2/models/gather/infer')
      .send({ inputs: [{ name: 'idx', shape: [1, 1], datatype: 'INT64', data: [10] }] })
      .expect(500);
    expectV2Error(res);
    const ok = await request(http)
      .post('/v2/models/gather/infer')
      .send({ inputs: [{ name: 'idx', shape: [2, 1], datatype: 'INT64', data: [1, -1] }] })
      .expect(200);
    expect(ok.body.outputs).toEqual([{ name: 'out', datatype: 'FP32', shape: [2, 1], data: [20, 50] }]);
  });

  it('answers 503 {"error"} once the queue is at its bound, and serves the queued requests', async () => {
    const batcher = registry.servingVersion('slow').batcher;
    let answered = false;
    // A run of a few hundred ms holds the only worker (2·D³ flops).
    const running = request(http)
      .post('/v2/models/slow/infer')
      .send(slow(2400))
      .then((r) => ((answered = true), r));
    while (batcher.stats.inFlight === 0 && !answered) await new Promise((r) => setTimeout(r, 1));
    if (answered) throw new Error(`the slow request did not run: ${JSON.stringify((await running).body)}`);
    const queued = [1, 2].map(() =>
      request(http)
        .post('/v2/models/slow/infer')
        .send(slow(10))
        .then((r) => r),
    );
    for (let i = 0; batcher.depth < 2 && i < 1000; i++) await new Promise((r) => setTimeout(r, 2));
    const refused = await request(http).post('/v2/models/slow/infer').send(slow(10)).expect(503);
    expectV2Error(refused);
    expect((await running).status).toBe(200);
    for (const q of await Promise.all(queued))
      expect(q.body.outputs).toEqual([{ name: 's', datatype: 'FP32', shape: [], data: [1000] }]);
  });
});
