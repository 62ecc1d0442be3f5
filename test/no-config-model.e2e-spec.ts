import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import request from 'supertest';
import { fixture, makeRepository, startApp } from './support/app';

/**
 * Models without a config.json: the service learns everything from the graph itself. The expected
 * values are computed here from the formulas in test/fixtures/README.md, not copied from responses.
 */

// The formulas of test/fixtures/README.md.
/** linear: y = x · [[0.5], [-1], [2]] + 0.25 */
const linear = (x: readonly number[]): number => 0.5 * x[0] - x[1] + 2 * x[2] + 0.25;
/** multi_input: total = a0 + a1 + b0 + b1 + b2 in float32; b_max = max(b) in int64. */
const multiTotal = (a: readonly number[], b: readonly bigint[]): number => {
  const f = Math.fround;
  const sumA = f(f(a[0]) + f(a[1]));
  const sumB = b.map((v) => f(Number(v))).reduce((s, v) => f(s + v), 0);
  return f(sumA + sumB);
};
const multiMax = (b: readonly bigint[]): bigint => b.reduce((m, v) => (v > m ? v : m));
/** int64 as the service writes it in JSON: a number when exact, a decimal string beyond 2^53. */
const int64Json = (v: bigint): number | string =>
  v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
/** fixed_shape: y = [x0 + x2, x1 + x3] for its one [1, 4] row. */
const fixedShape = (x: readonly number[]): number[][] => [[x[0] + x[2], x[1] + x[3]]];

/**
 * Deterministic pseudo-random values (a 32-bit LCG). They are multiples of 1/1024 within ±8, so they
 * and every sum the fixture models compute are exact in float32: the comparison checks the model,
 * not float rounding.
 */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return {
    value: () => Math.round((next() * 16 - 8) * 1024) / 1024,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
  };
}

const NOT_A_CLASSIFIER = { prediction: null, label: null, probability: null, probabilities: null };

describe('models without config.json', () => {
  let app: INestApplication;
  let dir: string;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    dir = await makeRepository({
      linear: fixture('linear'),
      multi_input: fixture('multi_input'),
      fixed_shape: fixture('fixed_shape'),
    });
    app = await startApp({ MODEL_REPOSITORY: dir, DEFAULT_MODEL: '' });
  });
  afterAll(async () => {
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  describe('metadata', () => {
    it('lists the three models as READY with default version 1', async () => {
      const res = await http().get('/v1/models').expect(200);
      const models = (
        res.body.models as { name: string; state: string; default_version: number; versions: unknown[] }[]
      )
        .map(({ name, state, default_version, versions }) => ({ name, state, default_version, versions }))
        .sort((a, b) => a.name.localeCompare(b.name));
      expect(models).toEqual([
        { name: 'fixed_shape', state: 'READY', default_version: 1, versions: [{ version: 1, state: 'READY' }] },
        { name: 'linear', state: 'READY', default_version: 1, versions: [{ version: 1, state: 'READY' }] },
        { name: 'multi_input', state: 'READY', default_version: 1, versions: [{ version: 1, state: 'READY' }] },
      ]);
    });

    it('describes linear from its graph alone', async () => {
      const res = await http().get('/v1/models/linear').expect(200);
      expect(res.body).toMatchObject({
        name: 'linear',
        version: 1,
        version_state: 'READY',
        state: 'READY',
        default_version: 1,
        inputs: [{ name: 'x', type: 'float32', shape: [-1, 3] }],
        outputs: [{ name: 'y', type: 'float32', shape: [-1, 1] }],
        batchable: true,
        labels: null,
        features: null,
        label_output: null,
        probability_output: null,
      });
      expect(res.body.description).toBeUndefined();
      const version = await http().get('/v1/models/linear/versions/1').expect(200);
      expect(version.body.inputs).toEqual(res.body.inputs);
      expect(version.body.outputs).toEqual(res.body.outputs);
    });

    it('describes both inputs and outputs of multi_input', async () => {
      const res = await http().get('/v1/models/multi_input').expect(200);
      expect(res.body.inputs).toEqual([
        { name: 'a', type: 'float32', shape: [-1, 2] },
        { name: 'b', type: 'int64', shape: [-1, 3] },
      ]);
      expect(res.body.outputs).toEqual([
        { name: 'total', type: 'float32', shape: [-1, 1] },
        { name: 'b_max', type: 'int64', shape: [-1] },
      ]);
      expect(res.body).toMatchObject({
        batchable: true,
        labels: null,
        features: null,
        label_output: null,
        probability_output: null,
      });
    });

    it('describes fixed_shape as not batchable', async () => {
      const res = await http().get('/v1/models/fixed_shape').expect(200);
      expect(res.body.inputs).toEqual([{ name: 'x', type: 'float32', shape: [1, 4] }]);
      expect(res.body.outputs).toEqual([{ name: 'y', type: 'float32', shape: [1, 2] }]);
      expect(res.body).toMatchObject({
        batchable: false,
        labels: null,
        features: null,
        label_output: null,
        probability_output: null,
      });
    });
  });

  describe('linear', () => {
    it('the formula reproduces the README examples', () => {
      expect(linear([1, 2, 3])).toBe(4.75);
      expect(linear([0, 0, 0])).toBe(0.25);
      expect(linear([-1, 0.5, 4])).toBe(7.25);
    });

    it('predicts from features', async () => {
      const res = await http()
        .post('/v1/models/linear/predict')
        .send({ features: [1, 2, 3] })
        .expect(200);
      expect(res.body).toMatchObject({ model: 'linear', version: 1, ...NOT_A_CLASSIFIER });
      expect(Object.keys(res.body.outputs)).toEqual(['y']);
      expect(res.body.outputs.y).toHaveLength(1);
      expect(res.body.outputs.y[0]).toBeCloseTo(linear([1, 2, 3]), 5);
      expect(res.body.outputs.y[0]).toBeCloseTo(4.75, 5);
    });

    it('predicts from inputs, and from a given version', async () => {
      const x = [-1, 0.5, 4];
      const res = await http().post('/v1/models/linear/predict').send({ inputs: { x } }).expect(200);
      expect(res.body).toMatchObject(NOT_A_CLASSIFIER);
      expect(res.body.outputs.y[0]).toBeCloseTo(linear(x), 5);
      const v1 = await http()
        .post('/v1/models/linear/versions/1/predict')
        .send({ features: [0, 0, 0] })
        .expect(200);
      expect(v1.body.version).toBe(1);
      expect(v1.body.outputs.y[0]).toBeCloseTo(linear([0, 0, 0]), 5);
    });

    it('predicts a batch of 20 generated rows in every instance form, in order', async () => {
      const g = generator(20240601);
      const rows = Array.from({ length: 20 }, () => [g.value(), g.value(), g.value()]);
      const instances = rows.map((x, i) => (i % 3 === 0 ? x : i % 3 === 1 ? { features: x } : { inputs: { x } }));
      const res = await http().post('/v1/models/linear/predict/batch').send({ instances }).expect(200);
      expect(res.body).toMatchObject({ model: 'linear', version: 1 });
      expect(res.body.predictions).toHaveLength(rows.length);
      rows.forEach((x, i) => {
        const p = res.body.predictions[i];
        expect(p).toMatchObject(NOT_A_CLASSIFIER);
        expect(p.outputs.y).toHaveLength(1);
        expect(p.outputs.y[0]).toBeCloseTo(linear(x), 5);
      });
      // Not all the same answer: the rows really differ.
      expect(
        new Set(res.body.predictions.map((p: { outputs: { y: number[] } }) => p.outputs.y[0])).size,
      ).toBeGreaterThan(15);
    });

    it('rejects named features, which it has no names for', async () => {
      const res = await http()
        .post('/v1/models/linear/predict')
        .send({ features: { a: 1, b: 2, c: 3 } })
        .expect(400);
      expect(res.body.error).toBe('INVALID_INPUT');
      expect(res.body.details[0].path).toBe('features');
      expect(res.body.details[0].message).toMatch(/no feature names/);
    });

    it('rejects a wrong count with the expected shape', async () => {
      const res = await http()
        .post('/v1/models/linear/predict')
        .send({ inputs: { x: [1, 2, 3, 4] } })
        .expect(400);
      expect(res.body.details[0]).toEqual({ path: 'inputs.x', message: expect.stringMatching(/\[3\]/) });
    });
  });

  describe('multi_input', () => {
    it('predicts one instance from inputs, with b_max as a JSON number', async () => {
      const a = [1.5, 2];
      const b = [1n, 5n, 3n];
      const res = await http()
        .post('/v1/models/multi_input/predict')
        .send({ inputs: { a, b: b.map(Number) } })
        .expect(200);
      expect(res.body).toMatchObject({ model: 'multi_input', version: 1, ...NOT_A_CLASSIFIER });
      expect(Object.keys(res.body.outputs).sort()).toEqual(['b_max', 'total']);
      expect(res.body.outputs.total).toHaveLength(1);
      expect(res.body.outputs.total[0]).toBeCloseTo(multiTotal(a, b), 5);
      expect(res.body.outputs.total[0]).toBeCloseTo(12.5, 5);
      expect(typeof res.body.outputs.b_max).toBe('number');
      expect(res.body.outputs.b_max).toBe(int64Json(multiMax(b)));
      expect(res.body.outputs.b_max).toBe(5);
    });

    it('predicts a batch, including negative int64 values', async () => {
      const g = generator(7);
      const rows = [
        { a: [1.5, 2], b: [1n, 5n, 3n] },
        { a: [0, -1], b: [-7n, -2n, -9n] },
        ...Array.from({ length: 10 }, () => ({
          a: [g.value(), g.value()],
          b: [BigInt(g.int(-1000, 1000)), BigInt(g.int(-1000, 1000)), BigInt(g.int(-1000, 1000))],
        })),
      ];
      const instances = rows.map(({ a, b }) => ({ inputs: { a, b: b.map(Number) } }));
      const res = await http().post('/v1/models/multi_input/predict/batch').send({ instances }).expect(200);
      expect(res.body.predictions).toHaveLength(rows.length);
      rows.forEach(({ a, b }, i) => {
        const p = res.body.predictions[i];
        expect(p).toMatchObject(NOT_A_CLASSIFIER);
        expect(p.outputs.total[0]).toBeCloseTo(multiTotal(a, b), 5);
        expect(typeof p.outputs.b_max).toBe('number');
        expect(p.outputs.b_max).toBe(int64Json(multiMax(b)));
      });
      expect(res.body.predictions[1].outputs).toEqual({ total: [-19], b_max: -2 });
    });

    it('takes int64 beyond 2^53 as decimal strings and answers them as strings', async () => {
      const a = [0, 0];
      const b = [9007199254740993n, 1n, 2n];
      const res = await http()
        .post('/v1/models/multi_input/predict')
        .send({ inputs: { a, b: b.map(String) } })
        .expect(200);
      expect(res.body.outputs.b_max).toBe('9007199254740993');
      expect(res.body.outputs.b_max).toBe(int64Json(multiMax(b)));
      // float32 cannot hold 2^53 + 3: the sum rounds to 2^53.
      expect(res.body.outputs.total[0]).toBe(multiTotal(a, b));
      expect(res.body.outputs.total[0]).toBe(2 ** 53);
    });

    it('keeps the int64 extremes exact, as strings, and mixes strings with numbers', async () => {
      const cases: bigint[][] = [
        [9223372036854775807n, 1n, 2n],
        [-9223372036854775808n, -9223372036854775807n, -9007199254740993n],
        [-5n, -9007199254740992n, -9007199254740991n],
      ];
      const instances = cases.map((b) => ({
        inputs: { a: [0, 0], b: b.map((v) => (int64Json(v) === Number(v) ? Number(v) : v.toString())) },
      }));
      const res = await http().post('/v1/models/multi_input/predict/batch').send({ instances }).expect(200);
      expect(res.body.predictions.map((p: { outputs: { b_max: unknown } }) => p.outputs.b_max)).toEqual(
        cases.map((b) => int64Json(multiMax(b))),
      );
      expect(res.body.predictions.map((p: { outputs: { b_max: unknown } }) => p.outputs.b_max)).toEqual([
        '9223372036854775807',
        '-9007199254740993',
        -5,
      ]);
    });

    // b as JSON text: 9007199254740993 cannot be written as a number literal without losing precision.
    it.each([
      ['a non-integer number', '[1.5, 1, 2]', 'inputs.b[0]'],
      ['a word', '["abc", 1, 2]', 'inputs.b[0]'],
      ['a float as a string', '[1, "2.5", 2]', 'inputs.b[1]'],
      ['an integer beyond 2^53 as a JSON number', '[1, 2, 9007199254740993]', 'inputs.b[2]'],
      ['an integer beyond int64 as a string', '["9223372036854775808", 1, 2]', 'inputs.b[0]'],
      ['a boolean', '[true, 1, 2]', 'inputs.b[0]'],
      ['too few values', '[1, 2]', 'inputs.b'],
    ])('rejects b with %s (400 naming the offending field)', async (_what, b, path) => {
      const res = await http()
        .post('/v1/models/multi_input/predict')
        .set('Content-Type', 'application/json')
        .send(`{"inputs":{"a":[0,0],"b":${b}}}`)
        .expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'INVALID_INPUT' });
      expect(res.body.details[0].path).toBe(path);
      expect(res.body.requestId).toBe(res.headers['x-request-id']);
    });

    it('rejects features, explaining that it has several inputs', async () => {
      const res = await http()
        .post('/v1/models/multi_input/predict')
        .send({ features: [1, 2, 3, 4, 5] })
        .expect(400);
      expect(res.body.error).toBe('INVALID_INPUT');
      expect(res.body.details[0].path).toBe('features');
      expect(res.body.details[0].message).toMatch(/several inputs/);
      expect(res.body.details[0].message).toMatch(/\ba\b.*\bb\b/);
      const batch = await http()
        .post('/v1/models/multi_input/predict/batch')
        .send({ instances: [[1, 2, 3, 4, 5]] })
        .expect(400);
      expect(batch.body.details[0].path).toBe('instances[0]');
      expect(batch.body.details[0].message).toMatch(/several inputs/);
    });

    it('rejects a missing input, naming it', async () => {
      const res = await http()
        .post('/v1/models/multi_input/predict')
        .send({ inputs: { a: [1, 2] } })
        .expect(400);
      expect(res.body.details).toEqual([{ path: 'inputs.b', message: expect.stringMatching(/missing input/) }]);
    });
  });

  describe('fixed_shape', () => {
    it('the formula reproduces the README example', () => {
      expect(fixedShape([1, 2, 3, 4])).toEqual([[4, 6]]);
    });

    it('takes flat features and the whole [1, 4] tensor alike', async () => {
      const x = [1, 2, 3, 4];
      const flat = await http().post('/v1/models/fixed_shape/predict').send({ features: x }).expect(200);
      const whole = await http()
        .post('/v1/models/fixed_shape/predict')
        .send({ inputs: { x: [x] } })
        .expect(200);
      for (const res of [flat, whole]) {
        expect(res.body).toMatchObject({ model: 'fixed_shape', version: 1, ...NOT_A_CLASSIFIER });
        expect(res.body.outputs).toEqual({ y: fixedShape(x) });
        expect(res.body.outputs.y).toEqual([[4, 6]]);
      }
    });

    it('answers a batch of 3 instances one run each, each correct', async () => {
      const g = generator(99);
      const rows = [
        [1, 2, 3, 4],
        [g.value(), g.value(), g.value(), g.value()],
        [-1, 0.5, 2, 3],
      ];
      const instances = [rows[0], { inputs: { x: [rows[1]] } }, { features: rows[2] }];
      const res = await http().post('/v1/models/fixed_shape/predict/batch').send({ instances }).expect(200);
      expect(res.body.predictions).toHaveLength(3);
      rows.forEach((x, i) => {
        const p = res.body.predictions[i];
        expect(p).toMatchObject(NOT_A_CLASSIFIER);
        expect(p.outputs.y).toHaveLength(1);
        expect(p.outputs.y[0]).toHaveLength(2);
        p.outputs.y[0].forEach((v: number, k: number) => expect(v).toBeCloseTo(fixedShape(x)[0][k], 5));
      });
    });

    it('rejects two rows in one instance rather than letting the runtime fail', async () => {
      const res = await http()
        .post('/v1/models/fixed_shape/predict')
        .send({
          inputs: {
            x: [
              [1, 2, 3, 4],
              [5, 6, 7, 8],
            ],
          },
        })
        .expect(400);
      expect(res.body.error).toBe('INVALID_INPUT');
      expect(res.body.details[0].path).toBe('inputs.x');
    });
  });

  describe("the lesson's routes", () => {
    it.each([
      ['/predict', { features: [1, 2, 3, 4] }],
      ['/predict/batch', { instances: [[1, 2, 3, 4]] }],
    ])('%s answers 404 MODEL_NOT_FOUND naming DEFAULT_MODEL', async (url, body) => {
      const res = await http().post(url).send(body).expect(404);
      expect(res.body).toMatchObject({ statusCode: 404, error: 'MODEL_NOT_FOUND', details: [] });
      expect(res.body.message).toMatch(/DEFAULT_MODEL/);
      expect(res.body.message).toMatch(/fixed_shape, linear, multi_input/);
      expect(res.body.requestId).toBe(res.headers['x-request-id']);
    });
  });
});
