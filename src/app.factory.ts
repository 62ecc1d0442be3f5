import { ConsoleLogger, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { DomainError } from './common/domain.errors';
import { HttpExceptionFilter } from './common/http-exception.filter';
import { RequestValidationPipe } from './common/request-validation.pipe';
import { AppConfig, LogLevelName } from './config/app.config';
import { latencyMiddleware } from './observability/latency.middleware';
import { requestContextMiddleware } from './observability/request-context.middleware';
import { setupOpenApi } from './openapi';

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

/** Express's body parser raises http-errors objects with a `type`; they become domain errors here. */
function bodyParserErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  const e = err as { type?: string; message?: string; limit?: number; status?: number };
  switch (e?.type) {
    case 'entity.parse.failed':
      return next(new DomainError('MALFORMED_JSON', `The body is not valid JSON: ${e.message}`));
    case 'entity.too.large':
      return next(new DomainError('PAYLOAD_TOO_LARGE', `The body is larger than the limit of ${e.limit} bytes (BODY_LIMIT); send fewer instances per request`));
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

/** Bodies that are not JSON get a 415 that says so, instead of an empty object failing validation. */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is('application/json')) {
    next(new DomainError('UNSUPPORTED_MEDIA_TYPE', `Send the body as JSON with Content-Type: application/json (got ${req.headers['content-type'] ?? 'none'})`));
    return;
  }
  next();
}

/** Builds the application with everything but listening, for main.ts and the end-to-end tests alike. */
export async function createApp(config: AppConfig): Promise<NestExpressApplication> {
  const logger = createLogger(config);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  // Order matters: context and timing must cover every request, including those the parser rejects.
  app.use(latencyMiddleware(logger));
  app.use(requestContextMiddleware(config.REQUEST_TIMEOUT_MS));
  const origins = config.corsOrigins();
  if (origins !== false) app.enableCors({ origin: origins, exposedHeaders: ['X-Request-Id', 'X-Process-Time', 'Retry-After'] });
  app.useBodyParser('json', { limit: config.BODY_LIMIT });
  app.use(bodyParserErrors);
  app.use(requireJson);
  app.useGlobalFilters(new HttpExceptionFilter());
  app.useGlobalPipes(new RequestValidationPipe());
  app.enableShutdownHooks();
  setupOpenApi(app);
  return app;
}
