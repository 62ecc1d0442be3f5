import { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import request from 'supertest';
import { ModelRegistry } from '../src/models/model.registry';
import { BUNDLED_MODELS, startApp, startBackpressureApp } from './support/app';

/** One run of the slow fixture on a row of ones of this width takes a few hundred ms (2·D³ flops). */
const SLOW_WIDTH = 2400;
// The slow model has no batch dimension in its output, so an instance is its whole [1, D] input.
const slowBody = (width = SLOW_WIDTH) => ({ inputs: { x: [new Array(width).fill(1)] } });
const irisRows = (
  JSON.parse(readFileSync(path.join(BUNDLED_MODELS, 'iris', 'reference.json'), 'utf8')) as {
    rows: { features: number[]; label: number }[];
  }
).rows;

describe('inference off the event loop, batching and backpressure', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let registry: ModelRegistry;

  beforeAll(async () => {
    app = await startBackpressureApp();
    // Listening on a real port, so that a raw client can hang up mid-request.
    await app.listen(0, '127.0.0.1');
    http = app.getHttpServer();
    registry = app.get(ModelRegistry);
  });
  afterAll(() => app.close());

  /** Sends a slow request and waits until the only worker has started it, so the next ones queue. */
  async function occupyWorker(): Promise<{ running: Promise<request.Response> }> {
    const batcher = registry.servingVersion('slow').batcher;
    let answered = false;
    const running = request(http)
      .post('/v1/models/slow/predict')
      .send(slowBody())
      .then((r) => ((answered = true), r));
    while (batcher.stats.inFlight === 0 && !answered) await new Promise((r) => setTimeout(r, 1));
    if (answered) throw new Error(`the slow request did not run: ${JSON.stringify((await running).body)}`);
    // Wrapped, because an async function returning a promise would wait for it.
    return { running };
  }

  it('answers concurrent distinct requests each with its own correct answer, in fewer runs than requests', async () => {
    const batcher = registry.servingVersion('iris').batcher;
    const runsBefore = batcher.stats.runs;
    const answers = await Promise.all(
      irisRows.map((row) => request(http).post('/v1/models/iris/predict').send({ features: row.features })),
    );
    expect(answers.map((a) => a.status)).toEqual(irisRows.map(() => 200));
    expect(answers.map((a) => a.body.prediction)).toEqual(irisRows.map((r) => r.label));
    expect(batcher.stats.runs - runsBefore).toBeLessThan(irisRows.length);
  });

  it('mixes single and batch requests in one run and splits the rows back correctly', async () => {
    const [single, batch] = await Promise.all([
      request(http).post('/v1/models/iris/predict').send({ features: irisRows[120].features }),
      request(http)
        .post('/v1/models/iris/predict/batch')
        .send({ instances: irisRows.slice(0, 60).map((r) => r.features) }),
    ]);
    expect(single.body.prediction).toBe(irisRows[120].label);
    expect(batch.body.predictions.map((p: { prediction: number }) => p.prediction)).toEqual(
      irisRows.slice(0, 60).map((r) => r.label),
    );
  });

  it('keeps the event loop answering while a model runs', async () => {
    // What is checked is the order of the answers, never how long one took (the machine is shared).
    const { running } = await occupyWorker();
    let slowAnswered = false;
    void running.then(() => (slowAnswered = true));
    await request(http).get('/health/live').expect(200);
    expect(slowAnswered).toBe(false);
    const slow = await running;
    expect(slow.status).toBe(200);
    // A float32 sum of millions of terms: right to within a percent.
    expect(Math.abs(slow.body.outputs.s / SLOW_WIDTH ** 3 - 1)).toBeLessThan(0.02);
  });

  it('answers 503 QUEUE_FULL with Retry-After once the queue is at its bound', async () => {
    const { running } = await occupyWorker();
    // supertest sends on then(); these two must be on their way before the third.
    const queued = [1, 2].map(() =>
      request(http)
        .post('/v1/models/slow/predict')
        .send(slowBody(10))
        .then((r) => r),
    );
    const batcher = registry.servingVersion('slow').batcher;
    for (let i = 0; batcher.depth < 2 && i < 1000; i++) await new Promise((r) => setTimeout(r, 2));
    const refused = await request(http).post('/v1/models/slow/predict').send(slowBody(10)).expect(503);
    expect(refused.body).toMatchObject({
      statusCode: 503,
      error: 'QUEUE_FULL',
      message: expect.stringMatching(/2 rows queued \(limit 2\)/),
    });
    expect(refused.headers['retry-after']).toBe('1');
    expect((await running).status).toBe(200);
    for (const q of await Promise.all(queued)) expect(q.body.outputs.s).toBe(1000);
    expect(registry.servingVersion('slow').batcher.depth).toBe(0);
  });

  it('answers 504 DEADLINE_EXCEEDED to a request that could not start within X-Request-Timeout-Ms, and drops it', async () => {
    const { running } = await occupyWorker();
    const started = performance.now();
    const late = await request(http)
      .post('/v1/models/slow/predict')
      .set('X-Request-Timeout-Ms', '40')
      .send(slowBody(10))
      .expect(504);
    expect(late.body).toMatchObject({ error: 'DEADLINE_EXCEEDED' });
    expect(performance.now() - started).toBeLessThan(200);
    expect(registry.servingVersion('slow').batcher.depth).toBe(0);
    expect((await running).status).toBe(200);
  });

  it('refuses a malformed X-Request-Timeout-Ms', async () => {
    const res = await request(http)
      .post('/v1/models/iris/predict')
      .set('X-Request-Timeout-Ms', 'soon')
      .send({ features: irisRows[0].features })
      .expect(400);
    expect(res.body.details).toEqual([{ path: 'headers.x-request-timeout-ms', message: 'got "soon"' }]);
  });

  it('drops a queued request whose client disconnected', async () => {
    const { running } = await occupyWorker();
    const batcher = registry.servingVersion('slow').batcher;
    const { port } = http.address() as AddressInfo;
    const body = JSON.stringify(slowBody(10));
    const client = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/v1/models/slow/predict',
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    });
    client.on('error', () => undefined);
    client.end(body);
    for (let i = 0; batcher.depth === 0 && i < 1000; i++) await new Promise((r) => setTimeout(r, 2));
    expect(batcher.depth).toBe(1);
    client.destroy();
    for (let i = 0; batcher.depth > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 2));
    expect(batcher.depth).toBe(0);
    expect(batcher.stats.inFlight).toBe(1);
    expect((await running).status).toBe(200);
  });

  it('a run that fails fails its own request with 500 INFERENCE_FAILED, and the model goes on serving', async () => {
    const [bad, good] = await Promise.all([
      request(http)
        .post('/v1/models/gather/predict')
        .send({ inputs: { idx: [7] } }),
      request(http)
        .post('/v1/models/gather/predict')
        .send({ inputs: { idx: [2] } }),
    ]);
    // Whether or not the two shared a run, the good one is answered: a failed run of several runs each alone.
    expect(bad.status).toBe(500);
    expect(bad.body).toMatchObject({
      error: 'INFERENCE_FAILED',
      message: expect.stringMatching(/failed to run: .*indices/i),
    });
    expect(bad.body.message).not.toMatch(/\n\s+at /);
    expect(good.status).toBe(200);
    expect(good.body.outputs.out).toEqual([30]);
    const after = await request(http)
      .post('/v1/models/gather/predict')
      .send({ inputs: { idx: [-1] } })
      .expect(200);
    expect(after.body.outputs.out).toEqual([50]);
  });
});

describe('batching switched off', () => {
  let app: INestApplication;
  beforeAll(async () => (app = await startApp({ BATCHING_ENABLED: 'false' })));
  afterAll(() => app.close());

  it('runs every request alone and still answers each correctly', async () => {
    const batcher = app.get(ModelRegistry).servingVersion('iris').batcher;
    const before = batcher.stats.runs;
    const answers = await Promise.all(
      irisRows
        .slice(0, 40)
        .map((row) => request(app.getHttpServer()).post('/v1/models/iris/predict').send({ features: row.features })),
    );
    expect(answers.map((a) => a.body.prediction)).toEqual(irisRows.slice(0, 40).map((r) => r.label));
    expect(batcher.stats.runs - before).toBe(40);
  });
});
