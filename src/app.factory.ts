import { ConsoleLogger, INestApplication, LogLevel } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { ExpressAdapter, NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { AppModule } from './app.module';
import { DomainError } from './common/domain.errors';
import { contextOf } from './common/request-context';
import { ErrorBody, HttpExceptionFilter, isV2, v2Body } from './common/http-exception.filter';
import { RequestValidationPipe } from './common/request-validation.pipe';
import { AppConfig, LogLevelName } from './config/app.config';
import { LifecycleService } from './health/lifecycle.service';
import { predictionCacheMiddleware } from './cache/prediction-cache.middleware';
import { latencyMiddleware } from './observability/latency.middleware';
import { MetricsService } from './observability/metrics.service';
import { requestContextMiddleware } from './observability/request-context.middleware';
import { setupOpenApi } from './openapi';
import { apiKeyMiddleware } from './security/api-key.middleware';
import { ApiKeyStore } from './security/api-key.store';
import { securityHeadersMiddleware } from './security/security-headers';
import { applyServerTimeouts, clientErrorHandler, serverOptions } from './security/server-limits';

const LEVELS: Record<LogLevelName, LogLevel[]> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

export function createLogger(config: AppConfig): ConsoleLogger {
  const json = config.LOG_FORMAT === 'json';
  return new ConsoleLogger({ json, colors: !json && process.stdout.isTTY, logLevels: LEVELS[config.LOG_LEVEL] });
}

const malformedJson = (message: string) => new DomainError('MALFORMED_JSON', `The body is not valid JSON: ${message}`);

/** Express's body parser raises http-errors objects with a `type`; they become domain errors here. */
function bodyParserErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  const e = err as { type?: string; message?: string; limit?: number; status?: number };
  switch (e?.type) {
    case 'entity.parse.failed':
      return next(malformedJson(e.message ?? ''));
    case 'entity.too.large':
      return next(
        new DomainError(
          'PAYLOAD_TOO_LARGE',
          `The body is larger than the limit of ${e.limit} bytes (BODY_LIMIT); send fewer instances per request`,
        ),
      );
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return next(new DomainError('UNSUPPORTED_MEDIA_TYPE', `${e.message}; send UTF-8 JSON`));
    case 'request.aborted':
    case 'request.size.invalid':
      return next(new DomainError('INVALID_INPUT', `The body was not received whole: ${e.message}`));
    default:
      // Any other client fault the parser found (a bad Content-Encoding, say) is still the client's.
      if (e?.status !== undefined && e.status >= 400 && e.status < 500) {
        return next(new DomainError('INVALID_INPUT', `The body could not be read: ${e.message}`));
      }
      return next(err);
  }
}

const isJson = (contentType: string | undefined) => /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? '');

/**
 * What a body must be before either adapter parses it: JSON, in UTF-8, not compressed. Checked
 * here, once, so Express and Fastify refuse the same requests with the same 415.
 */
function requireJson(req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void {
  if (!['POST', 'PUT', 'PATCH'].includes(req.method ?? '')) return next();
  const contentType = req.headers['content-type'];
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1].toLowerCase();
  const encoding = req.headers['content-encoding']?.toLowerCase();
  if (!isJson(contentType)) {
    return next(
      new DomainError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Send the body as JSON with Content-Type: application/json (got ${contentType ?? 'none'})`,
      ),
    );
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return next(new DomainError('UNSUPPORTED_MEDIA_TYPE', `The body must be UTF-8 JSON (got charset ${charset})`));
  }
  if (encoding !== undefined && encoding !== 'identity') {
    return next(
      new DomainError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Compressed bodies are not accepted (got Content-Encoding ${encoding}); send plain JSON`,
      ),
    );
  }
  next();
}

/** Parses like Express's strict JSON parser: an object or an array, and an empty body as {}. */
function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new SyntaxError('the body must be a JSON object');
  return value;
}

/** Express's adapter on a Node server made with the service's limits (Nest's own takes no options). */
class LimitedExpressAdapter extends ExpressAdapter {
  constructor(private readonly limits: ServerOptions) {
    super();
  }

  override initHttpServer(): void {
    const server = createServer(this.limits, this.getInstance());
    server.on('clientError', clientErrorHandler);
    this.setHttpServer(server);
  }
}

async function createExpressApp(config: AppConfig, logger: ConsoleLogger): Promise<NestExpressApplication> {
  const adapter = new LimitedExpressAdapter(serverOptions(config));
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), adapter, {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  return app;
}

async function createFastifyApp(config: AppConfig, logger: ConsoleLogger): Promise<NestFastifyApplication> {
  // Prototype keys are let through the parser so the validation pipe can refuse them with a path.
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes(),
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    http: serverOptions(config),
    clientErrorHandler,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    // A path that is not valid percent-encoded UTF-8 fails in Fastify's router, before Nest and the
    // middleware: answered here in the service's shape, as Express's router failure reaches the filter.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      const requestId = randomUUID();
      const body: ErrorBody = {
        statusCode: 400,
        error: 'INVALID_INPUT',
        message: `The path cannot be decoded: ${error.message}`,
        details: [],
        requestId,
      };
      void reply
        .code(400)
        .header('X-Request-Id', requestId)
        .send(isV2(request.url) ? v2Body(body) : body);
    },
  });
  const fastify = adapter.getInstance();
  // The matched route pattern, for the request's log line (Express keeps it on the request itself).
  fastify.addHook('preHandler', (request, _reply, done) => {
    const context = contextOf(request.raw);
    if (context) context.route = request.routeOptions.url;
    done();
  });
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser(/^application\/([\w.+-]+\+)?json/i, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(malformedJson((err as Error).message), undefined);
    }
  });
  // bodyParser: false keeps Nest from replacing the JSON parser above with its own.
  return NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
}

/**
 * Builds the application with everything but listening, for main.ts and the end-to-end tests
 * alike, on the HTTP adapter HTTP_ADAPTER names. Everything past the adapter is shared.
 */
export async function createApp(config: AppConfig): Promise<INestApplication> {
  const logger = createLogger(config);
  const app =
    config.HTTP_ADAPTER === 'fastify' ? await createFastifyApp(config, logger) : await createExpressApp(config, logger);
  // Order matters: timing and context must cover every request, including those the parser rejects.
  app.use(latencyMiddleware(logger, app.get(MetricsService)));
  const lifecycle = app.get(LifecycleService);
  app.use(requestContextMiddleware(config.REQUEST_TIMEOUT_MS, () => lifecycle.shuttingDown));
  app.use(predictionCacheMiddleware());
  applyServerTimeouts(app.getHttpServer(), config);
  app.use(securityHeadersMiddleware());
  const origins = config.corsOrigins();
  if (origins !== false) {
    app.enableCors({
      origin: origins,
      methods: ['GET', 'HEAD', 'POST'],
      allowedHeaders: [
        'Content-Type',
        'Authorization',
        'X-API-Key',
        'X-Request-Id',
        'X-Request-Timeout-Ms',
        'Cache-Control',
        'Pragma',
      ],
      exposedHeaders: [
        'X-Request-Id',
        'X-Process-Time',
        'Retry-After',
        'X-Cache',
        'X-Cache-Hits',
        ...(config.RATE_LIMIT_RPM ? ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'] : []),
      ],
      maxAge: 600,
      // Fastify's CORS plugin would answer an OPTIONS without Access-Control-Request-Method with a
      // plain-text 400; Express's answers every OPTIONS as a preflight. The same on both:
      strictPreflight: false,
    } as Parameters<INestApplication['enableCors']>[0]);
  }
  // Before any body is read: a request without a valid key costs no parsing. Absent without keys.
  if (config.apiKeysEnabled()) {
    const keys = app.get(ApiKeyStore);
    app.use(apiKeyMiddleware((key) => keys.lookup(key), config.openPaths()));
  }
  app.use(requireJson);
  if (config.HTTP_ADAPTER === 'express') {
    const express = app as NestExpressApplication;
    express.useBodyParser('json', {
      limit: config.bodyLimitBytes(),
      type: (req: IncomingMessage) => isJson(req.headers['content-type']),
    });
    express.use(bodyParserErrors);
  }
  app.useGlobalFilters(new HttpExceptionFilter(app.get(HttpAdapterHost)));
  app.useGlobalPipes(
    new RequestValidationPipe({ maxArrayLength: config.MAX_ARRAY_LENGTH, maxStringLength: config.MAX_STRING_LENGTH }),
  );
  setupOpenApi(app);
  return app;
}
