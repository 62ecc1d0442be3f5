import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { predictionCacheMiddleware } from '../cache/prediction-cache.middleware';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { AppConfig } from '../config/app.config';
import { LifecycleService } from '../health/lifecycle.service';
import { ModelRegistry } from '../models/model.registry';
import { AppLogger } from '../observability/app.logger';
import { latencyMiddleware, RouteOf } from '../observability/latency.middleware';
import { MetricsService } from '../observability/metrics.service';
import { requestContextMiddleware } from '../observability/request-context.middleware';
import { tracingOn } from '../observability/tracing';
import { tracingMiddleware } from '../observability/tracing.middleware';
import { setupOpenApi } from '../openapi';
import { apiKeyMiddleware } from '../security/api-key.middleware';
import { ApiKeyStore } from '../security/api-key.store';
import { RateLimiter, rateLimitMiddleware } from '../security/rate-limit.middleware';
import { securityHeadersMiddleware } from '../security/security-headers';
import { applyServerTimeouts, reportRejectionsTo } from '../security/server-limits';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { jsonBodyMiddleware, jsonCostLimits, requireJson } from './body-policy';
import { elementBudget } from './element-budget';
import { RefusalPacer } from './refusal-pacer';
import { v2BodyMiddleware } from './v2-body';

export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/** What one HTTP adapter does differently (src/http/express.ts, src/http/fastify.ts); the rest is shared. */
export interface HttpAdapterSetup {
  /** The application on this adapter, with the server limits and what the adapter needs before Nest builds it. */
  create(module: DynamicModule, config: AppConfig, logger: LoggerService): Promise<INestApplication>;
  /** The route pattern a request matched, for its log line and metrics, including requests refused before routing. */
  routeOf(app: INestApplication): RouteOf;
  /** Runs a middleware on every request, ahead of routing, in the order given. */
  use(app: INestApplication, middleware: Middleware): void;
}

function enableCors(app: INestApplication, config: AppConfig): void {
  const origins = config.corsOrigins();
  if (origins === false) return;
  app.enableCors({
    origin: origins,
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: [
      'Content-Type',
      'Authorization',
      'X-API-Key',
      'X-Request-Id',
      'X-Request-Timeout-Ms',
      'X-Routing-Key',
      'Cache-Control',
      'Pragma',
      // The Open Inference Protocol's binary and compressed bodies.
      'Content-Encoding',
      'Inference-Header-Content-Length',
    ],
    exposedHeaders: [
      'X-Request-Id',
      'X-Process-Time',
      'Retry-After',
      'X-Cache',
      'X-Cache-Hits',
      'X-Model-Version',
      'Inference-Header-Content-Length',
      ...(config.RATE_LIMIT_RPM ? ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'] : []),
    ],
    maxAge: 600,
    // Fastify's CORS plugin would answer an OPTIONS without Access-Control-Request-Method with a
    // plain-text 400; Express's answers every OPTIONS as a preflight. The same on both:
    strictPreflight: false,
  } as Parameters<INestApplication['enableCors']>[0]);
}

/** Every connection past MAX_CONNECTIONS is dropped by Node at once; say so at most this often. */
const DROP_LOG_INTERVAL_MS = 10000;

/**
 * What the server refuses before any middleware (its parser, Fastify's router, connections past
 * MAX_CONNECTIONS) gets its log line and its sample, with bounded route labels, like every request.
 */
function reportServerRejections(server: Server, config: AppConfig, logger: AppLogger, metrics: MetricsService): void {
  reportRejectionsTo(server, ({ status, code, route, requestId, client }) => {
    metrics.observeHttp('UNKNOWN', route, status, 0);
    // The request line of a request no middleware saw, with the fields it has.
    logger.pino.info({ route, status, request_id: requestId, error: code, client_address: client }, 'request');
  });
  server.maxConnections = config.MAX_CONNECTIONS;
  let dropped = 0;
  let lastLog = 0;
  server.on('drop', () => {
    metrics.observeDroppedConnection();
    dropped++;
    const now = Date.now();
    if (now - lastLog >= DROP_LOG_INTERVAL_MS) {
      logger.warn(
        `${dropped} connection(s) closed on arrival: MAX_CONNECTIONS (${config.MAX_CONNECTIONS}) are open`,
        'HTTP',
      );
      lastLog = now;
      dropped = 0;
    }
  });
}

/**
 * Middleware functions as one, in order. Each adapter pays for every function it holds on every request
 * (an Express router layer, a Fastify hook), and these all apply to every path. Like those runners, the
 * chain stops once an answer has been sent.
 */
export function chain(...fns: (Middleware | undefined)[]): Middleware {
  const list = fns.filter((f): f is Middleware => f !== undefined);
  return (req, res, next) => {
    let i = 0;
    const step = (error?: unknown): void => {
      if (res.writableEnded) return;
      if (error != null || i === list.length) return next(error ?? undefined);
      list[i++](req, res, step);
    };
    step();
  };
}

/** Everything past the adapter, the same on both, in the order a request meets it. */
export function applyPipeline(
  app: INestApplication,
  config: AppConfig,
  logger: AppLogger,
  adapter: HttpAdapterSetup,
): void {
  // Order matters: timing and context must cover every request, including those the parser rejects.
  // The request's span comes first, so that it is active for everything after it; absent unless tracing is on.
  const routeOf = adapter.routeOf(app);
  const lifecycle = app.get(LifecycleService);
  const metrics = app.get(MetricsService);
  applyServerTimeouts(app.getHttpServer(), config);
  reportServerRejections(app.getHttpServer(), config, logger, metrics);
  adapter.use(
    app,
    chain(
      tracingOn() ? tracingMiddleware(routeOf) : undefined,
      latencyMiddleware(logger.pino, metrics, routeOf),
      requestContextMiddleware(config.REQUEST_TIMEOUT_MS, lifecycle),
      predictionCacheMiddleware(),
      securityHeadersMiddleware(),
    ),
  );
  enableCors(app, config);
  const keys = config.apiKeysEnabled() ? app.get(ApiKeyStore) : undefined;
  const registry = app.get(ModelRegistry);
  const costLimits = jsonCostLimits(
    config,
    elementBudget((name) => registry.findModel(name), config.DEFAULT_MODEL, config.MAX_BATCH_SIZE),
  );
  adapter.use(
    app,
    chain(
      // Before any body is read: a request without a valid key costs no parsing. Absent without keys.
      keys && apiKeyMiddleware((key) => keys.lookup(key), config.openPaths()),
      // After the key middleware, which names the caller it counts; still before any body is read.
      config.RATE_LIMIT_RPM !== undefined ? rateLimitMiddleware(app.get(RateLimiter)) : undefined,
      v2BodyMiddleware(config.bodyLimitBytes(), costLimits),
      requireJson(config.bodyLimitBytes()),
      jsonBodyMiddleware(config.bodyLimitBytes(), costLimits),
    ),
  );
  const pacer = new RefusalPacer(
    config.REFUSED_BODIES_PER_SECOND,
    () => metrics.observeDelayedRefusal(),
    (err) => logger.pino.error({ err }, 'a refusal answered in its turn failed'),
  );
  app.useGlobalFilters(new HttpExceptionFilter(app.get(HttpAdapterHost), pacer));
  setupOpenApi(app);
}
