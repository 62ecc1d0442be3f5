import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/app.config';
import { LifecycleService } from '../src/health/lifecycle.service';
import { ModelRegistry } from '../src/models/model.registry';
import { bundled, HTTP_ADAPTER, makeRepository, startApp } from './support/app';

describe('probes tell the truth', () => {
  const apps: INestApplication[] = [];
  afterAll(() => Promise.all(apps.map((a) => a.close())));
  const start = async (env: Record<string, string>) => {
    const app = await startApp(env);
    apps.push(app);
    return request(app.getHttpServer());
  };

  it('ready: 200 naming every model when all are loaded, warmed and self-tested', async () => {
    const http = await start({});
    const res = await http.get('/health/ready').expect(200);
    expect(res.body).toEqual({
      status: 'ok',
      info: {
        shutdown: { status: 'up' },
        models: { status: 'up', ready: ['digits', 'iris'] },
        cache: { status: 'up', store: 'memory' },
      },
      error: {},
      details: {
        shutdown: { status: 'up' },
        models: { status: 'up', ready: ['digits', 'iris'] },
        cache: { status: 'up', store: 'memory' },
      },
    });
    await http.get('/health/startup').expect(200);
    await http.get('/v2/health/ready').expect(200);
  });

  it('ready: 503 with an empty repository; live stays 200', async () => {
    const http = await start({ MODEL_REPOSITORY: await makeRepository({}) });
    const res = await http.get('/health/ready').expect(503);
    expect(res.body.error.models).toEqual({ status: 'down', message: 'the model repository holds no models' });
    await http.get('/health/live').expect(200);
    await http.get('/v2/health/ready').expect(503);
  });

  it('ready: 503 naming the model that failed its self-test, and why; live and startup 200', async () => {
    const config = JSON.parse(await fs.readFile(path.join(bundled('iris'), 'config.json'), 'utf8'));
    const broken = { ...config, samples: [{ ...config.samples[0], expected: { output_label: 2 } }] };
    const http = await start({
      MODEL_REPOSITORY: await makeRepository(
        { iris: bundled('iris'), wrong: bundled('iris') },
        { 'wrong/config.json': JSON.stringify(broken) },
      ),
    });
    const res = await http.get('/health/ready').expect(503);
    expect(res.body.error.models).toEqual({
      status: 'down',
      ready: ['iris'],
      failing: {
        wrong: expect.stringMatching(/^FAILED: version 1: self-test sample 0: output_label expected 2, got 0/),
      },
    });
    await http.get('/health/live').expect(200);
    await http.get('/health/startup').expect(200);
  });

  it('ready and startup: 503 while models load, 200 once they have', async () => {
    // Several copies of the 26 MB digits model take long enough to load to be seen loading.
    const copies = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`digits${i}`, bundled('digits')]));
    const repository = await makeRepository(copies);
    // gRPC on a free port, as startApp has it: suites run side by side.
    const config = loadConfig({ MODEL_REPOSITORY: repository, LOG_LEVEL: 'error', HTTP_ADAPTER, GRPC_PORT: '0' });
    const app = await createApp(config);
    apps.push(app);
    await app.init();
    if (HTTP_ADAPTER === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
    const http = request(app.getHttpServer());
    const [ready, startup, live] = await Promise.all([
      http.get('/health/ready'),
      http.get('/health/startup'),
      http.get('/health/live'),
    ]);
    expect(ready.status).toBe(503);
    expect(Object.values(ready.body.error.models.failing as Record<string, string>)).toContain('LOADING');
    expect(startup.status).toBe(503);
    expect(startup.body.error.loading.loading.length).toBeGreaterThan(0);
    expect(live.status).toBe(200);
    await app.get(ModelRegistry).whenLoaded();
    await http.get('/health/ready').expect(200);
    await http.get('/health/startup').expect(200);
  });

  it('ready: 503 from the moment shutdown begins; live stays 200', async () => {
    const app = await startApp({});
    apps.push(app);
    const http = request(app.getHttpServer());
    await http.get('/health/ready').expect(200);
    app.get(LifecycleService).beginShutdown();
    const res = await http.get('/health/ready').expect(503);
    expect(res.body.error).toEqual({ shutdown: { status: 'down', message: 'the service is shutting down' } });
    await http.get('/v2/health/ready').expect(503);
    await http.get('/health/live').expect(200);
    // Requests are still answered during the grace period.
    await http
      .post('/predict')
      .send({ features: [5.1, 3.5, 1.4, 0.2] })
      .expect(200);
  });
});
