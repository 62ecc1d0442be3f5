import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { fixture, makeRepository, startApp, bundled } from './support/app';

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];

describe('REST API v1 and the lesson routes', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    // The bundled iris and digits, plus a two-version iris under another name.
    const dir = await makeRepository({
      iris: bundled('iris'),
      digits: bundled('digits'),
      iris_versions: fixture('iris_versions'),
    });
    app = await startApp({ MODEL_REPOSITORY: dir });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('GET / names the service, its version, its models and the docs', async () => {
    const res = await request(http).get('/').expect(200);
    expect(res.body).toMatchObject({
      name: 'onnx-inference-service',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      docs: '/docs',
      openapi: '/docs-json',
    });
    expect(res.body.models.map((m: { name: string }) => m.name)).toEqual(['digits', 'iris', 'iris_versions']);
  });

  it('GET /v1/models lists every model with versions, default version and state', async () => {
    const res = await request(http).get('/v1/models').expect(200);
    const versions = res.body.models.find((m: { name: string }) => m.name === 'iris_versions');
    expect(versions).toEqual({
      name: 'iris_versions',
      description: expect.any(String),
      default_version: 1,
      state: 'READY',
      versions: [
        { version: 1, state: 'READY' },
        { version: 2, state: 'READY' },
      ],
    });
  });

  it('GET /v1/models/iris describes inputs, outputs, labels and features', async () => {
    const res = await request(http).get('/v1/models/iris').expect(200);
    expect(res.body).toMatchObject({
      name: 'iris',
      version: 1,
      version_state: 'READY',
      platform: 'onnxruntime',
      batchable: true,
      inputs: [{ name: 'float_input', type: 'float32', shape: [-1, 4] }],
      outputs: [
        { name: 'output_label', type: 'int64', shape: [-1] },
        { name: 'output_probability', type: 'float32', shape: [-1, 3] },
      ],
      labels: ['setosa', 'versicolor', 'virginica'],
      features: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
      label_output: 'output_label',
      probability_output: 'output_probability',
    });
    expect(res.body.description).toMatch(/Iris/);
  });

  it('GET /v1/models/{model}/versions/{version} describes that version', async () => {
    const res = await request(http).get('/v1/models/iris_versions/versions/2').expect(200);
    expect(res.body).toMatchObject({ name: 'iris_versions', version: 2, default_version: 1 });
    await request(http).get('/v1/models/iris_versions/versions/3').expect(404);
    await request(http).get('/v1/models/nope').expect(404);
  });

  it('POST /v1/models/iris/predict answers a classifier with its fields and the raw outputs', async () => {
    const res = await request(http).post('/v1/models/iris/predict').send({ features: SETOSA }).expect(200);
    expect(res.body).toEqual({
      model: 'iris',
      version: 1,
      prediction: 0,
      label: 'setosa',
      probability: expect.closeTo(0.984695, 5),
      probabilities: [expect.closeTo(0.984695, 5), expect.closeTo(0.015305, 5), expect.closeTo(0, 5)],
      outputs: { output_label: 0, output_probability: res.body.probabilities },
      latency_ms: expect.any(Number),
    });
    expect(res.body.latency_ms).toBeGreaterThan(0);
  });

  it('accepts the same instance as named features and as inputs, with the same answer', async () => {
    const named = { sepal_length: 6.3, sepal_width: 3.3, petal_length: 6.0, petal_width: 2.5 };
    const a = await request(http).post('/v1/models/iris/predict').send({ features: named }).expect(200);
    const b = await request(http)
      .post('/v1/models/iris/predict')
      .send({ inputs: { float_input: VIRGINICA } })
      .expect(200);
    expect(a.body.label).toBe('virginica');
    expect(b.body.probabilities).toEqual(a.body.probabilities);
  });

  it('a specific version answers with its own model', async () => {
    const v1 = await request(http)
      .post('/v1/models/iris_versions/versions/1/predict')
      .send({ features: SETOSA })
      .expect(200);
    const v2 = await request(http)
      .post('/v1/models/iris_versions/versions/2/predict')
      .send({ features: SETOSA })
      .expect(200);
    const byDefault = await request(http)
      .post('/v1/models/iris_versions/predict')
      .send({ features: SETOSA })
      .expect(200);
    // Values from test/fixtures/README.md: version 2 is a more regularised model.
    expect(v1.body).toMatchObject({
      version: 1,
      probabilities: [expect.closeTo(0.984695, 5), expect.closeTo(0.015305, 5), expect.closeTo(0, 5)],
    });
    expect(v2.body).toMatchObject({
      version: 2,
      probabilities: [expect.closeTo(0.92037, 5), expect.closeTo(0.077343, 5), expect.closeTo(0.002287, 5)],
    });
    expect(byDefault.body.version).toBe(1);
  });

  it('POST .../predict/batch answers one result per instance, in order, in any form', async () => {
    const res = await request(http)
      .post('/v1/models/iris/versions/1/predict/batch')
      .send({ instances: [VIRGINICA, { features: SETOSA }, { inputs: { float_input: [7.0, 3.2, 4.7, 1.4] } }] })
      .expect(200);
    expect(res.body.model).toBe('iris');
    expect(res.body.version).toBe(1);
    expect(res.body.predictions.map((p: { label: string }) => p.label)).toEqual(['virginica', 'setosa', 'versicolor']);
  });

  it('serves the heavier digits model', async () => {
    const res = await request(http).get('/v1/models/digits').expect(200);
    expect(res.body.inputs).toEqual([{ name: 'float_input', type: 'float32', shape: [-1, 64] }]);
    const blank = await request(http)
      .post('/v1/models/digits/predict')
      .send({ features: new Array(64).fill(0) })
      .expect(200);
    expect(blank.body.probabilities).toHaveLength(10);
    expect(blank.body.probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
  });

  describe("the lesson's routes, answered by DEFAULT_MODEL (iris)", () => {
    it('POST /predict keeps the lesson field names', async () => {
      const res = await request(http).post('/predict').send({ features: SETOSA }).expect(200);
      expect(res.body).toEqual({
        prediction: 0,
        probability: expect.closeTo(0.984695, 5),
        class_name: 'setosa',
        model_version: '1',
        latency_ms: expect.any(Number),
      });
    });

    it('POST /predict/batch keeps the lesson field names', async () => {
      const res = await request(http)
        .post('/predict/batch')
        .send({ instances: [SETOSA, VIRGINICA] })
        .expect(200);
      expect(res.body).toMatchObject({
        predictions: [0, 2],
        probabilities: [expect.closeTo(0.984695, 5), expect.closeTo(0.99376, 5)],
        class_names: ['setosa', 'virginica'],
        model_version: '1',
      });
    });

    it('GET /health keeps the lesson field names', async () => {
      const res = await request(http).get('/health').expect(200);
      expect(res.body).toEqual({ status: 'healthy', models_loaded: ['digits', 'iris', 'iris_versions'] });
    });
  });

  describe('request ids and timing', () => {
    it('echoes a client X-Request-Id and times the request', async () => {
      const res = await request(http)
        .post('/predict')
        .set('X-Request-Id', 'client-42')
        .send({ features: SETOSA })
        .expect(200);
      expect(res.headers['x-request-id']).toBe('client-42');
      expect(Number(res.headers['x-process-time'])).toBeGreaterThan(0);
    });

    it('makes an id when the client sends none, or one unfit for logs', async () => {
      const none = await request(http).get('/v1/models').expect(200);
      const unfit = await request(http).get('/v1/models').set('X-Request-Id', 'a b\tc').expect(200);
      for (const res of [none, unfit]) expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('puts the request id in error bodies too, including errors raised before routing', async () => {
      const res = await request(http)
        .post('/predict')
        .set('X-Request-Id', 'bad-json-1')
        .set('Content-Type', 'application/json')
        .send('{"features": [')
        .expect(400);
      expect(res.body).toMatchObject({ error: 'MALFORMED_JSON', requestId: 'bad-json-1' });
      expect(res.headers['x-process-time']).toBeDefined();
    });
  });

  it('answers CORS preflights for the configured origins (all by default, as the lesson did)', async () => {
    const res = await request(http)
      .options('/predict')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .expect(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
  });
});

describe('CORS_ORIGINS restricts cross-origin callers', () => {
  let app: INestApplication;
  beforeAll(async () => (app = await startApp({ CORS_ORIGINS: 'https://allowed.example' })));
  afterAll(() => app.close());

  it('allows only the listed origin', async () => {
    const ok = await request(app.getHttpServer())
      .get('/v1/models')
      .set('Origin', 'https://allowed.example')
      .expect(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://allowed.example');
    const other = await request(app.getHttpServer())
      .get('/v1/models')
      .set('Origin', 'https://other.example')
      .expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('models that are loading or failed', () => {
  let app: INestApplication;
  beforeAll(async () => {
    const dir = await makeRepository({ iris: bundled('iris') }, { 'broken/1/model.onnx': 'not a model' });
    app = await startApp({ MODEL_REPOSITORY: dir });
  });
  afterAll(() => app.close());

  it('a FAILED model answers 503 with its reason and Retry-After; the others serve', async () => {
    const res = await request(app.getHttpServer())
      .post('/v1/models/broken/predict')
      .send({ features: [1] })
      .expect(503);
    expect(res.body).toMatchObject({
      statusCode: 503,
      error: 'MODEL_NOT_READY',
      message: expect.stringMatching(/version 1 failed to load/),
    });
    expect(res.headers['retry-after']).toBe('5');
    const list = await request(app.getHttpServer()).get('/v1/models').expect(200);
    expect(list.body.models.find((m: { name: string }) => m.name === 'broken')).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(/^version 1: /),
    });
    await request(app.getHttpServer()).post('/predict').send({ features: SETOSA }).expect(200);
  });

  it('GET /health says degraded while one model is down', async () => {
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'degraded', models_loaded: ['iris'] });
  });
});
