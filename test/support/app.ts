import { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from '../../src/app.factory';
import { loadConfig } from '../../src/config/app.config';
import { ModelRegistry } from '../../src/models/model.registry';
import { BUNDLED_MODELS, bundled, fixture, makeRepository } from '../../src/testing/model-repository';

// The model repositories live with the unit specs' support (src/testing), which must not import test/.
export {
  BUNDLED_MODELS,
  bundled,
  fixture,
  FIXTURE_MODELS,
  makeRepository,
  ROOT,
} from '../../src/testing/model-repository';

/**
 * The adapter the end-to-end suites run on: the Jest project's TEST_HTTP_ADAPTER global (see
 * jest.config.js: `npm test` runs the HTTP edge suites once per adapter, the others on Fastify),
 * else the variable, else Express.
 */
export const HTTP_ADAPTER: 'express' | 'fastify' =
  ((globalThis as { TEST_HTTP_ADAPTER?: string }).TEST_HTTP_ADAPTER ?? process.env.TEST_HTTP_ADAPTER) === 'fastify'
    ? 'fastify'
    : 'express';

/**
 * Builds the real application (real onnxruntime sessions) on a model repository, initialised and
 * with every model loaded. Use supertest on `app.getHttpServer()`; close with `app.close()`.
 */
export async function startApp(env: Record<string, string> = {}): Promise<INestApplication> {
  const config = loadConfig({
    MODEL_REPOSITORY: BUNDLED_MODELS,
    LOG_LEVEL: 'error',
    HTTP_ADAPTER: HTTP_ADAPTER,
    // gRPC on a port the system picks, so suites running side by side never collide on 8001.
    GRPC_PORT: '0',
    ...env,
  });
  const app = await createApp(config);
  await app.init();
  // Fastify routes requests only once its plugins are ready; supertest then talks to its server.
  if (config.HTTP_ADAPTER === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  await app.get(ModelRegistry).whenLoaded();
  return app;
}

/**
 * The app on iris, the slow fixture (a run takes as long as its input is wide) and the gather
 * fixture (a run that fails), with one inference worker and a 2-row queue for the slow model, so
 * that queue bounds, deadlines and run failures can be reached on purpose. The prediction cache is
 * off: these tests repeat identical requests to fill the queue, which a cache would answer.
 */
export async function startBackpressureApp(): Promise<INestApplication> {
  const dir = await makeRepository(
    { iris: bundled('iris'), slow: fixture('slow'), gather: fixture('gather') },
    { 'slow/config.json': JSON.stringify({ batching: { max_queue_size: 2 } }) },
  );
  return startApp({ MODEL_REPOSITORY: dir, INFERENCE_WORKERS: '1', CACHE_ENABLED: 'false' });
}
