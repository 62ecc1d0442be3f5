import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { createServer, IncomingMessage, ServerOptions } from 'node:http';
import { DomainError } from '../common/domain.errors';
import { AppConfig } from '../config/app.config';
import { clientErrorHandler, serverOptions } from '../security/server-limits';
import { isJson, jsonCostLimits, malformedJson } from './body-policy';
import { checkJsonCost } from '../common/json-scan';
import type { RouteOf } from '../observability/latency.middleware';
import type { HttpAdapterSetup } from './pipeline';

/** Express's body parser raises http-errors objects with a `type`; they become domain errors here. */
function bodyParserErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  // The cost bound's refusal, raised from the parser's verify hook.
  if (err instanceof DomainError) return next(err);
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

interface RouteLayer {
  route?: { path: string; _handlesMethod(method: string): boolean };
  match(path: string): boolean;
}

/**
 * The route pattern of a request. Express sets `req.route` once its router has matched, which a
 * request refused by the body parser (a middleware ahead of the router) never reaches: that one's
 * route is looked up in the router's table, which costs a scan, paid only by such refusals.
 */
function expressRouteOf(app: INestApplication): RouteOf {
  const express = (app as NestExpressApplication).getHttpAdapter().getInstance() as unknown as {
    router: { stack: RouteLayer[] };
  };
  return (req) => {
    const matched = (req as { route?: { path?: string } }).route?.path;
    if (matched !== undefined) return matched;
    const path = (req.url ?? '/').split('?')[0];
    const method = (req.method ?? 'GET').toLowerCase();
    return express.router.stack.find((layer) => layer.route?._handlesMethod(method) && layer.match(path))?.route?.path;
  };
}

export const expressSetup: HttpAdapterSetup = {
  async create(module: DynamicModule, config: AppConfig, logger: LoggerService): Promise<INestApplication> {
    const adapter = new LimitedExpressAdapter(serverOptions(config));
    const app = await NestFactory.create<NestExpressApplication>(module, adapter, {
      logger,
      bodyParser: false,
      abortOnError: false,
    });
    app.disable('x-powered-by');
    return app;
  },

  // Express's parser is middleware: it takes its place in the pipeline, after the body policy.
  parseBodies(app: INestApplication, config: AppConfig): void {
    const express = app as NestExpressApplication;
    const limits = jsonCostLimits(config);
    express.useBodyParser('json', {
      limit: config.bodyLimitBytes(),
      type: (req: IncomingMessage) => isJson(req.headers['content-type']),
      // Called with the raw bytes before JSON.parse: the cost bound (common/json-scan.ts).
      verify: (_req: IncomingMessage, _res: unknown, bytes: Buffer) => {
        const refused = checkJsonCost(bytes, limits);
        if (refused) throw refused;
      },
    });
    express.use(bodyParserErrors);
  },

  routeOf: expressRouteOf,
};
