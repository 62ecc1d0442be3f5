import { INestApplication } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createClient } from '@keyv/redis';
import request from 'supertest';
import { ModelRegistry } from '../src/models/model.registry';
import { bundled, makeRepository, startApp } from './support/app';
import { exited, freePort, serve, waitFor, waitUntilReady } from './support/process';
import { describeWithRedis, keysUnder, OwnRedis, REDIS_SERVER } from './support/redis';

/** Each run writes under its own prefix, so a shared Redis (REDIS_URL) never mixes runs. */
const prefix = () => `test-${randomUUID().slice(0, 8)}:`;

const IRIS = [
  { features: [5.1, 3.5, 1.4, 0.2], label: 'setosa' },
  { features: [7.0, 3.2, 4.7, 1.4], label: 'versicolor' },
  { features: [6.3, 3.3, 6.0, 2.5], label: 'virginica' },
];

/** A repository whose iris has versions 1 and 2 (the same file: only the number differs), 2 the default. */
async function twoVersionRepository(): Promise<string> {
  const config = JSON.parse(await fs.readFile(path.join(bundled('iris'), 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const model = await fs.readFile(path.join(bundled('iris'), '1', 'model.onnx'));
  return makeRepository(
    { iris: bundled('iris') },
    { 'iris/2/model.onnx': model, 'iris/config.json': JSON.stringify({ ...config, default_version: 2 }) },
  );
}

/** The sum of the samples whose line matches `line` (its first group is the value). */
const metric = async (http: ReturnType<INestApplication['getHttpServer']>, line: RegExp) => {
  const text = (await request(http).get('/metrics').expect(200)).text;
  return [...text.matchAll(new RegExp(line.source, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
};

describeWithRedis(Boolean(process.env.REDIS_URL || REDIS_SERVER), 'prediction cache shared in Redis', () => {
  let own: OwnRedis | undefined;
  let url: string;

  beforeAll(async () => {
    if (!process.env.REDIS_URL) own = await OwnRedis.start();
    url = process.env.REDIS_URL ?? own!.url;
  });
  afterAll(() => own?.kill());

  it('two service processes share one cache: computed on one, a HIT on the other; another version misses', async () => {
    const env = { REDIS_URL: url, CACHE_KEY_PREFIX: prefix(), HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
    const ports = [await freePort(), await freePort()];
    const children = [
      serve({ ...env, PORT: String(ports[0]), MODEL_REPOSITORY: await makeRepository({ iris: bundled('iris') }) }),
      serve({ ...env, PORT: String(ports[1]), MODEL_REPOSITORY: await twoVersionRepository() }),
    ];
    const done = children.map(exited);
    try {
      const [a, b] = ports.map((p) => `http://127.0.0.1:${p}`);
      await Promise.all([waitUntilReady(`${a}/health/ready`), waitUntilReady(`${b}/health/ready`)]);
      const post = (url: string) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: IRIS[1].features }),
        });

      const computed = await post(`${a}/v1/models/iris/predict`);
      expect(computed.status).toBe(200);
      expect(computed.headers.get('x-cache')).toBe('MISS');
      const shared = await post(`${b}/v1/models/iris/versions/1/predict`);
      expect(shared.headers.get('x-cache')).toBe('HIT');
      expect(((await shared.json()) as { label: string }).label).toBe('versicolor');
      // B's default is version 2: the same file under another number is still another version.
      const newVersion = await post(`${b}/v1/models/iris/predict`);
      expect(newVersion.headers.get('x-cache')).toBe('MISS');
      expect(((await newVersion.json()) as { version: number }).version).toBe(2);
    } finally {
      for (const child of children) child.kill('SIGTERM');
      const codes = await Promise.all(done);
      expect(codes.map((c) => c.code)).toEqual([0, 0]);
    }
  });

  it('stores each instance under prefix, model, version and file digest, with the TTL', async () => {
    const keyPrefix = prefix();
    // A generous store timeout: this test is about the entries' form, and a busy machine must not turn it into a miss.
    const app = await startApp({
      REDIS_URL: url,
      CACHE_KEY_PREFIX: keyPrefix,
      CACHE_TTL_SECONDS: '120',
      CACHE_TIMEOUT_MS: '1000',
    });
    try {
      const http = app.getHttpServer();
      await request(http)
        .post('/v1/models/iris/predict/batch')
        .send({ instances: IRIS.map((i) => i.features) })
        .expect(200)
        .expect('X-Cache', 'MISS');
      const digest = app.get(ModelRegistry).servingVersion('iris').digest.slice(0, 16);
      const keys = await keysUnder(url, keyPrefix);
      expect(keys).toHaveLength(3);
      for (const key of keys) expect(key).toMatch(new RegExp(`^${keyPrefix}iris:1:${digest}:[A-Za-z0-9_-]{43}$`));
      const client = createClient({ url });
      await client.connect();
      const ttl = await client.pTTL(keys[0]);
      client.destroy();
      expect(ttl).toBeGreaterThan(100_000);
      expect(ttl).toBeLessThanOrEqual(120_000);
      await request(http)
        .post('/v1/models/iris/predict/batch')
        .send({ instances: IRIS.map((i) => i.features) })
        .expect(200)
        .expect('X-Cache', 'HIT');
      // Only an in-memory cache reports its size; Redis counts its own keys.
      expect((await request(http).get('/metrics').expect(200)).text).not.toMatch(/^inference_cache_entries/m);
    } finally {
      await app.close();
    }
  });
});

describeWithRedis(Boolean(REDIS_SERVER), 'prediction cache when Redis fails', () => {
  // Killing Redis under load once saw a client's request reset in a full-suite run on this 2-core
  // machine (never alone): until that is understood, a failure is logged and the test run once more.
  jest.retryTimes(1, { logErrorsBeforeRetry: true });

  const apps: INestApplication[] = [];
  const start = async (env: Record<string, string>) => {
    const app = await startApp({ CACHE_KEY_PREFIX: prefix(), ...env });
    apps.push(app);
    return app;
  };
  /** Apps close while their Redis is still up: a client closed mid-reconnect lingers until its backoff timer ends. */
  const stop = async (redis: OwnRedis) => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await redis.kill();
  };
  afterAll(() => Promise.all(apps.map((a) => a.close())));

  it('Redis killed under load and restarted: every request succeeds, readiness follows Redis, HITs come back', async () => {
    const redis = await OwnRedis.start();
    try {
      const app = await start({ REDIS_URL: redis.url });
      const http = app.getHttpServer();
      await request(http).get('/health/ready').expect(200);

      const outcomes: string[] = [];
      let running = true;
      const client = async (n: number) => {
        for (let i = 0; running; i++) {
          const { features, label } = IRIS[(n + i) % IRIS.length];
          const res = await request(http).post('/v1/models/iris/predict').send({ features });
          outcomes.push(
            res.status === 200 && res.body.label === label ? 'ok' : `bad ${res.status} ${JSON.stringify(res.body)}`,
          );
        }
      };
      const clients = Array.from({ length: 6 }, (_, n) => client(n));
      await waitFor(() => outcomes.length > 50);
      await redis.kill();
      const killedAt = outcomes.length;
      await waitFor(() => outcomes.length > killedAt + 100);
      const down = await request(http).get('/health/ready').expect(503);
      expect(down.body.error.cache).toMatchObject({
        status: 'down',
        store: 'redis',
        message: expect.stringMatching(/^Redis does not answer/),
      });
      await request(http).get('/health/live').expect(200);

      await redis.start();
      await waitFor(
        async () => (await request(http).get('/health/ready')).status === 200,
        15000,
        'readiness after Redis restarted',
      );
      const restartedAt = outcomes.length;
      await waitFor(() => outcomes.length > restartedAt + 100);
      running = false;
      await Promise.all(clients);

      expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
      // Reads in flight when Redis died time out; later ones fail at once while the client is offline.
      expect(
        await metric(http, /^inference_cache_errors_total\{operation="read",reason="\w+"\} (\d+)$/),
      ).toBeGreaterThan(0);
      await waitFor(
        async () =>
          (await request(http).post('/v1/models/iris/predict').send({ features: IRIS[0].features })).headers[
            'x-cache'
          ] === 'HIT',
        10000,
        'a HIT after Redis restarted',
      );
    } finally {
      await stop(redis);
    }
  });

  it('a Redis that does not answer within CACHE_TIMEOUT_MS: the prediction is computed without it, and the timeout counted', async () => {
    const redis = await OwnRedis.start();
    const admin = createClient({ url: redis.url });
    try {
      const app = await start({ REDIS_URL: redis.url, CACHE_TIMEOUT_MS: '50' });
      const http = app.getHttpServer();
      await admin.connect();
      // Redis holds every client's commands for two seconds, as a stalled server would.
      await admin.sendCommand(['CLIENT', 'PAUSE', '2000', 'ALL']);
      const res = await request(http).post('/v1/models/iris/predict').send({ features: IRIS[2].features }).expect(200);
      expect(res.body.label).toBe('virginica');
      expect(res.headers['x-cache']).toBe('MISS');
      expect(await metric(http, /^inference_cache_errors_total\{operation="read",reason="timeout"\} (\d+)$/)).toBe(1);
    } finally {
      admin.destroy();
      await stop(redis);
    }
  });

  it('starts and serves with Redis down; becomes ready and caches once Redis is up', async () => {
    const port = await freePort();
    const app = await start({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const http = app.getHttpServer();
    for (let i = 0; i < 2; i++) {
      const res = await request(http).post('/predict').send({ features: IRIS[0].features }).expect(200);
      expect(res.body.class_name).toBe('setosa');
      expect(res.headers['x-cache']).toBe('MISS');
    }
    const ready = await request(http).get('/health/ready').expect(503);
    expect(Object.keys(ready.body.error)).toEqual(['cache']);
    await request(http).get('/v2/health/ready').expect(503);

    const relaxed = await start({ REDIS_URL: `redis://127.0.0.1:${port}`, READY_REQUIRES_REDIS: 'false' });
    const body = (await request(relaxed.getHttpServer()).get('/health/ready').expect(200)).body;
    expect(body.info.cache).toMatchObject({
      status: 'up',
      store: 'redis',
      message: expect.stringMatching(/READY_REQUIRES_REDIS=false/),
    });

    const redis = await OwnRedis.start(port);
    try {
      await waitFor(
        async () => (await request(http).get('/health/ready')).status === 200,
        15000,
        'readiness once Redis is up',
      );
      await waitFor(
        async () =>
          (await request(http).post('/predict').send({ features: IRIS[0].features })).headers['x-cache'] === 'HIT',
        10000,
        'a HIT',
      );
    } finally {
      await stop(redis);
    }
  });
});
