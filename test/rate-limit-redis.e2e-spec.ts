import { INestApplication } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { startApp } from './support/app';
import { describeWithRedis, keysUnder, OwnRedis, REDIS_SERVER } from './support/redis';

const predict = (app: INestApplication) =>
  request(app.getHttpServer())
    .post('/v1/models/iris/predict')
    .send({ features: [5.1, 3.5, 1.4, 0.2] });

describeWithRedis(Boolean(REDIS_SERVER), 'rate limits shared through Redis', () => {
  let redis: OwnRedis;
  const apps: INestApplication[] = [];
  const start = async (env: Record<string, string>) => {
    const app = await startApp(env);
    apps.push(app);
    return app;
  };

  beforeAll(async () => (redis = await OwnRedis.start()));
  // Apps close while Redis is up: a client closed mid-reconnect lingers until its backoff timer ends.
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await redis.kill();
  });

  it('two replicas on one Redis enforce one budget per caller; a Redis outage loosens it to per replica, never failing a request', async () => {
    const prefix = `test-${randomUUID().slice(0, 8)}:`;
    const env = { REDIS_URL: redis.url, CACHE_KEY_PREFIX: prefix, RATE_LIMIT_RPM: '4' };
    const [a, b] = [await start(env), await start(env)];
    const statuses: number[] = [];
    for (const app of [a, b, a, b]) statuses.push((await predict(app)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    // The fifth request of the minute, whichever replica it reaches.
    for (const app of [a, b]) {
      const limited = await predict(app);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect((await keysUnder(redis.url, prefix)).some((k) => k.startsWith(`${prefix}rate-limit:`))).toBe(true);
    await request(a.getHttpServer()).get('/health/live').expect(200);

    await redis.kill();
    // Without Redis each replica counts on its own: a fresh budget per replica, then 429 again.
    const during: number[] = [];
    for (let i = 0; i < 6; i++) during.push((await predict(a)).status);
    expect(during).toEqual([200, 200, 200, 200, 429, 429]);
    await redis.start();
  });
});
