import { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import request from 'supertest';
import { BUNDLED_MODELS, fixture, makeRepository, startApp } from './support/app';

interface Reference {
  model: string;
  version: number;
  rows: { features: number[]; label: number; probabilities: number[] }[];
}

const reference = (model: string, dir = path.join(BUNDLED_MODELS, model)): Reference =>
  JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;

/**
 * scikit-learn's own predictions, written by models/build.py (for the MLP fixture, a float64 forward
 * pass written by test/fixtures/build_fixtures.py): labels exactly, probabilities to 1e-5.
 */
function expectMatches(predictions: { prediction: number; probabilities: number[] }[], rows: Reference['rows']): void {
  expect(predictions).toHaveLength(rows.length);
  let worst = 0;
  rows.forEach((row, i) => {
    expect(predictions[i].prediction).toBe(row.label);
    row.probabilities.forEach((p, k) => (worst = Math.max(worst, Math.abs(predictions[i].probabilities[k] - p))));
  });
  expect(worst).toBeLessThanOrEqual(1e-5);
}

describe('bundled models reproduce the reference predictions of scikit-learn', () => {
  let app: INestApplication;
  beforeAll(async () => (app = await startApp()));
  afterAll(() => app.close());

  it('iris: all 150 rows in one batch', async () => {
    const { rows } = reference('iris');
    const res = await request(app.getHttpServer())
      .post('/v1/models/iris/predict/batch')
      .send({ instances: rows.map((r) => r.features) })
      .expect(200);
    expectMatches(res.body.predictions, rows);
  });

  it('iris: all 150 rows one request each, named features', async () => {
    const { rows } = reference('iris');
    const names = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
    const answers = [];
    for (const row of rows) {
      const features = Object.fromEntries(names.map((n, i) => [n, row.features[i]]));
      const res = await request(app.getHttpServer()).post('/v1/models/iris/predict').send({ features }).expect(200);
      answers.push(res.body);
    }
    expectMatches(answers, rows);
    expect(answers[0].label).toBe('setosa');
  });

  it("iris: the lesson's /predict/batch gives the same labels and each predicted class's probability", async () => {
    const { rows } = reference('iris');
    const res = await request(app.getHttpServer())
      .post('/predict/batch')
      .send({ instances: rows.map((r) => r.features) })
      .expect(200);
    expect(res.body.predictions).toEqual(rows.map((r) => r.label));
    res.body.probabilities.forEach((p: number, i: number) =>
      expect(Math.abs(p - Math.max(...rows[i].probabilities))).toBeLessThanOrEqual(1e-5),
    );
  });

  it('digits: all 450 test rows in one batch', async () => {
    const { rows } = reference('digits');
    const res = await request(app.getHttpServer())
      .post('/v1/models/digits/predict/batch')
      .send({ instances: rows.map((r) => r.features) })
      .expect(200);
    expectMatches(res.body.predictions, rows);
  });
});

describe('the MLP fixture reproduces its float64 reference', () => {
  let app: INestApplication;
  let repository: string;
  beforeAll(async () => {
    repository = await makeRepository({ mlp: fixture('mlp') });
    app = await startApp({ MODEL_REPOSITORY: repository });
  });
  afterAll(async () => {
    await app.close();
    await rm(repository, { recursive: true, force: true });
  });

  it('all 32 rows in one batch', async () => {
    const { rows } = reference('mlp', fixture('mlp'));
    const res = await request(app.getHttpServer())
      .post('/v1/models/mlp/predict/batch')
      .send({ instances: rows.map((r) => r.features) })
      .expect(200);
    expectMatches(res.body.predictions, rows);
  });

  it('all 32 rows one request each, at once (coalesced by the batcher), with the class names of config.json', async () => {
    const { rows } = reference('mlp', fixture('mlp'));
    const answers = await Promise.all(
      rows.map((r) =>
        request(app.getHttpServer())
          .post('/v1/models/mlp/predict')
          .send({ features: r.features })
          .expect(200)
          .then((res) => res.body as { prediction: number; probabilities: number[]; label: string }),
      ),
    );
    expectMatches(answers, rows);
    answers.forEach((a, i) => expect(a.label).toBe(`class_${rows[i].label}`));
  });
});

describe('outputs computed as NaN or infinities', () => {
  let app: INestApplication;
  beforeAll(async () => (app = await startApp()));
  afterAll(() => app.close());

  // Within float32's range, yet past what the network's sums can hold: the scores come out NaN.
  const huge = Array(64).fill(3e38);
  const good = Array(64).fill(1);

  it('v1 refuses the instance with 422 NON_FINITE_OUTPUT naming the output and instance, never a prediction', async () => {
    const res = await request(app.getHttpServer())
      .post('/v1/models/digits/predict/batch')
      .send({ instances: [good, huge] })
      .expect(422);
    expect(res.body).toMatchObject({ statusCode: 422, error: 'NON_FINITE_OUTPUT', requestId: expect.any(String) });
    expect(res.body.message).toMatch(/output '\w+' for instances\[1\]/);
    expect(res.body.details).toEqual([{ path: 'instances[1]', message: expect.stringMatching(/^output '\w+'/) }]);
    const single = await request(app.getHttpServer())
      .post('/v1/models/digits/predict')
      .send({ features: huge })
      .expect(422);
    expect(single.body.error).toBe('NON_FINITE_OUTPUT');
    await request(app.getHttpServer()).post('/v1/models/digits/predict').send({ features: good }).expect(200);
  });

  it("the default model's short routes refuse it too", async () => {
    const res = await request(app.getHttpServer())
      .post('/predict')
      .send({ features: [3e38, 3e38, 3e38, 3e38] })
      .expect(422);
    expect(res.body.error).toBe('NON_FINITE_OUTPUT');
  });

  it('V2 carries the values, as the strings "NaN", "Infinity" and "-Infinity" in JSON', async () => {
    const res = await request(app.getHttpServer())
      .post('/v2/models/digits/infer')
      .send({ inputs: [{ name: 'float_input', shape: [1, 64], datatype: 'FP32', data: huge }] })
      .expect(200);
    const values = res.body.outputs.flatMap((o: { datatype: string; data: unknown[] }) =>
      o.datatype === 'FP32' ? o.data : [],
    );
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) expect(typeof v === 'number' || ['NaN', 'Infinity', '-Infinity'].includes(v)).toBe(true);
    expect(values).toContain('NaN');
  });
});
