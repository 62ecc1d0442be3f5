import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { ModelRegistry } from '../src/models/model.registry';
import { bundled, fixture, makeRepository, startApp } from './support/app';

type Http = ReturnType<INestApplication['getHttpServer']>;

/** Rows the model version has really run so far: what the cache saves. */
const rowsRun = (app: INestApplication, model: string, version?: number) =>
  app.get(ModelRegistry).servingVersion(model, version).batcher.stats.rows;

/** A fresh iris input, so that tests sharing an app never see each other's entries. */
let seed = 0;
const fresh = () => [4 + (++seed % 40) / 10, 3 + seed / 1000, 1.4, 0.2];

const predict = (http: Http, features: unknown, headers: Record<string, string> = {}) =>
  request(http).post('/v1/models/iris/predict').set(headers).send({ features }).expect(200);

/** An answer without the fields that are rightly different every time. */
const stable = (body: Record<string, unknown>) => ({ ...body, latency_ms: undefined });

describe('prediction cache (in memory)', () => {
  let app: INestApplication;
  let http: Http;

  beforeAll(async () => {
    const dir = await makeRepository({
      iris: bundled('iris'),
      versions: fixture('iris_versions'),
      gather: fixture('gather'),
    });
    app = await startApp({ MODEL_REPOSITORY: dir });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('computes an input once: the first answer is a MISS, the same input again a HIT with the same prediction and a fresh latency and request id', async () => {
    const features = fresh();
    const before = rowsRun(app, 'iris');
    const first = await predict(http, features, { 'X-Request-Id': 'first' });
    const second = await predict(http, features, { 'X-Request-Id': 'second' });
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['x-cache-hits']).toBe('1/1');
    expect(rowsRun(app, 'iris') - before).toBe(1);
    expect(stable(second.body)).toEqual(stable(first.body));
    expect(second.body.latency_ms).toEqual(expect.any(Number));
    expect(second.headers['x-request-id']).toBe('second');
  });

  it('keys the input the model sees: key order, number spelling and the request form do not split it', async () => {
    const [a, b, c, d] = fresh();
    await predict(http, [a, b, c, d]).expect('X-Cache', 'MISS');
    const before = rowsRun(app, 'iris');
    const spellings = [
      { features: { petal_width: d, sepal_length: a, petal_length: c, sepal_width: b } },
      // As the client wrote it: a trailing zero and an exponent are the same float.
      `{"features": [${a}0, ${b}e0, ${c * 10}e-1, ${d}]}`,
      { inputs: { float_input: [a, b, c, d] } },
    ];
    for (const body of spellings) {
      await request(http)
        .post('/v1/models/iris/predict')
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(200)
        .expect('X-Cache', 'HIT');
    }
    // The lesson's route and a batch of one share the entry too.
    await request(http)
      .post('/predict')
      .send({ features: [a, b, c, d] })
      .expect(200)
      .expect('X-Cache', 'HIT');
    await request(http)
      .post('/v1/models/iris/predict/batch')
      .send({ instances: [[a, b, c, d]] })
      .expect(200)
      .expect('X-Cache', 'HIT');
    // So does the Open Inference Protocol, whose tensors carry the batch dimension.
    const v2 = await request(http)
      .post('/v2/models/iris/infer')
      .send({ inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: [a, b, c, d] }] })
      .expect(200);
    expect(v2.headers['x-cache']).toBe('HIT');
    expect(rowsRun(app, 'iris')).toBe(before);
  });

  it("serves a batch's cached rows from the cache and runs only the others, in one run, answering in order", async () => {
    const known = [fresh(), fresh()];
    for (const features of known) await predict(http, features);
    const unknown = [fresh(), fresh(), fresh()];
    const batcher = app.get(ModelRegistry).servingVersion('iris').batcher;
    const before = { ...batcher.stats };
    const instances = [unknown[0], known[0], unknown[1], known[1], unknown[2]];
    const res = await request(http).post('/v1/models/iris/predict/batch').send({ instances }).expect(200);
    expect(res.headers['x-cache']).toBe('MISS');
    expect(res.headers['x-cache-hits']).toBe('2/5');
    expect(batcher.stats.runs - before.runs).toBe(1);
    expect(batcher.stats.rows - before.rows).toBe(3);
    // The same predictions as each instance alone, uncached.
    const alone = await Promise.all(
      instances.map((features) => predict(http, features, { 'Cache-Control': 'no-cache' })),
    );
    const prediction = (body: Record<string, unknown>) => ({
      prediction: body.prediction,
      label: body.label,
      probability: body.probability,
      probabilities: body.probabilities,
      outputs: body.outputs,
    });
    expect(res.body.predictions).toEqual(alone.map((r) => prediction(r.body)));
    await request(http)
      .post('/v1/models/iris/predict/batch')
      .send({ instances })
      .expect(200)
      .expect('X-Cache', 'HIT')
      .expect('X-Cache-Hits', '5/5');
  });

  it('computes concurrent identical requests once', async () => {
    const features = fresh();
    const before = rowsRun(app, 'iris');
    const answers = await Promise.all(Array.from({ length: 20 }, () => predict(http, features)));
    expect(rowsRun(app, 'iris') - before).toBe(1);
    expect(answers.filter((r) => r.headers['x-cache'] === 'MISS')).toHaveLength(1);
    expect(new Set(answers.map((r) => JSON.stringify(stable(r.body))))).toEqual(
      new Set([JSON.stringify(stable(answers[0].body))]),
    );
  });

  it('Cache-Control: no-cache computes afresh and refreshes the entry; no-store keeps the answer out of the cache', async () => {
    const features = fresh();
    await predict(http, features).expect('X-Cache', 'MISS');
    let before = rowsRun(app, 'iris');
    await predict(http, features, { 'Cache-Control': 'no-cache' }).expect('X-Cache', 'MISS');
    await predict(http, features, { Pragma: 'no-cache' }).expect('X-Cache', 'MISS');
    await predict(http, features, { 'Cache-Control': 'max-age=0' }).expect('X-Cache', 'MISS');
    expect(rowsRun(app, 'iris') - before).toBe(3);
    await predict(http, features).expect('X-Cache', 'HIT');

    const other = fresh();
    before = rowsRun(app, 'iris');
    await predict(http, other, { 'Cache-Control': 'no-store' }).expect('X-Cache', 'MISS');
    await predict(http, other).expect('X-Cache', 'MISS');
    expect(rowsRun(app, 'iris') - before).toBe(2);
  });

  it('lets a browser on another origin send Cache-Control and read X-Cache', async () => {
    const preflight = await request(http)
      .options('/v1/models/iris/predict')
      .set({
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,cache-control',
      })
      .expect(204);
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('cache-control');
    const res = await predict(http, fresh(), { Origin: 'https://app.example', 'Cache-Control': 'no-cache' });
    expect(String(res.headers['access-control-expose-headers']).toLowerCase()).toEqual(
      expect.stringContaining('x-cache'),
    );
  });

  it('never shares entries between versions of a model', async () => {
    const features = fresh();
    const v1 = await request(http).post('/v1/models/versions/versions/1/predict').send({ features }).expect(200);
    expect(v1.headers['x-cache']).toBe('MISS');
    const v2 = await request(http).post('/v1/models/versions/versions/2/predict').send({ features }).expect(200);
    expect(v2.headers['x-cache']).toBe('MISS');
    expect(v2.body.version).toBe(2);
    await request(http)
      .post('/v1/models/versions/versions/1/predict')
      .send({ features })
      .expect(200)
      .expect('X-Cache', 'HIT');
  });

  it('caches only successful predictions', async () => {
    await request(http)
      .post('/v1/models/iris/predict')
      .send({ features: [1, 2] })
      .expect(400);
    const before = rowsRun(app, 'gather');
    // An index outside the gather fixture's table fails inside onnxruntime, each time it runs.
    for (let i = 0; i < 2; i++) {
      const res = await request(http)
        .post('/v1/models/gather/predict')
        .send({ inputs: { idx: [7] } })
        .expect(500);
      expect(res.headers['x-cache']).toBeUndefined();
    }
    expect(rowsRun(app, 'gather') - before).toBe(2);
  });
});

describe('prediction cache settings', () => {
  const apps: INestApplication[] = [];
  afterAll(() => Promise.all(apps.map((a) => a.close())));
  const start = async (env: Record<string, string>) => {
    const app = await startApp(env);
    apps.push(app);
    return app;
  };

  it('holds at most CACHE_MAX_ENTRIES entries, dropping the least recently used', async () => {
    const app = await start({ CACHE_MAX_ENTRIES: '5' });
    const http = app.getHttpServer();
    const inputs = Array.from({ length: 20 }, fresh);
    for (const features of inputs) {
      await predict(http, features);
      const metrics = await request(http).get('/metrics').expect(200);
      const entries = Number(/^inference_cache_entries (\d+)$/m.exec(metrics.text)![1]);
      expect(entries).toBeLessThanOrEqual(5);
    }
    await predict(http, inputs[0]).expect('X-Cache', 'MISS');
    await predict(http, inputs[19]).expect('X-Cache', 'HIT');
  });

  it('expires entries after CACHE_TTL_SECONDS', async () => {
    const app = await start({ CACHE_TTL_SECONDS: '1' });
    const http = app.getHttpServer();
    const features = fresh();
    await predict(http, features).expect('X-Cache', 'MISS');
    await predict(http, features).expect('X-Cache', 'HIT');
    await new Promise((r) => setTimeout(r, 1100));
    await predict(http, features).expect('X-Cache', 'MISS');
  });

  it('is off for a model whose config.json says so, and everywhere with CACHE_ENABLED=false', async () => {
    const config = JSON.parse(await fs.readFile(path.join(bundled('iris'), 'config.json'), 'utf8'));
    const dir = await makeRepository(
      { iris: bundled('iris') },
      { 'iris/config.json': JSON.stringify({ ...config, cache: { enabled: false } }) },
    );
    for (const app of [await start({ MODEL_REPOSITORY: dir }), await start({ CACHE_ENABLED: 'false' })]) {
      const http = app.getHttpServer();
      const features = fresh();
      const before = rowsRun(app, 'iris');
      for (let i = 0; i < 2; i++) expect((await predict(http, features)).headers['x-cache']).toBeUndefined();
      expect(rowsRun(app, 'iris') - before).toBe(2);
    }
  });

  it('refuses a bad cache section in config.json, naming the field', async () => {
    const dir = await makeRepository(
      { iris: bundled('iris') },
      { 'iris/config.json': JSON.stringify({ cache: { enabled: 'yes', ttl_seconds: 0 } }) },
    );
    const app = await start({ MODEL_REPOSITORY: dir });
    const res = await request(app.getHttpServer()).get('/v1/models/iris').expect(200);
    expect(res.body.state).toBe('FAILED');
    expect(res.body.reason).toMatch(/cache\.enabled/);
    expect(res.body.reason).toMatch(/cache\.ttl_seconds/);
  });
});
