import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, NestExpressApplication } from '@nestjs/platform-express';
import { createServer, IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { AppConfig } from '../config/app.config';
import { clientErrorHandler, serverOptions } from '../security/server-limits';
import { isJson, jsonCostLimits, parseJsonBytes } from './body-policy';
import type { JsonCostLimits } from '../common/json-scan';
import type { RouteOf } from '../observability/latency.middleware';
import type { HttpAdapterSetup } from './pipeline';
import { bodyTaken, readRaw } from './v2-body';

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

/** Whether a route matches a path; one whose parameters cannot be decoded (`%E0%A4%A`) matches none. */
function matches(layer: RouteLayer, path: string): boolean {
  try {
    return layer.match(path);
  } catch {
    return false;
  }
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
    return express.router.stack.find((layer) => layer.route?._handlesMethod(method) && matches(layer, path))?.route
      ?.path;
  };
}

/** Whether a request carries a body at all, as Express's parser decides it: a length or a transfer coding. */
const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length'] ?? NaN));

/**
 * The JSON body of a request off /v2, read here rather than by Express's body parser, which buffers
 * and decodes the whole body before anything bounds its cost. The body policy (body-policy.ts) has
 * already refused what is not plain UTF-8 JSON within BODY_LIMIT by its headers; the bytes then go
 * through the cost bound and JSON.parse once each, as on Fastify.
 */
function jsonBodyMiddleware(limit: number, costLimits: JsonCostLimits) {
  return (req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void => {
    if (bodyTaken(req) || !hasBody(req) || !isJson(req.headers['content-type'])) return next();
    readRaw(req, limit)
      .then((bytes) => {
        (req as IncomingMessage & { body?: unknown }).body = parseJsonBytes(bytes, costLimits);
        next();
      })
      .catch(next);
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

  // Express parses in middleware: it takes its place in the pipeline, after the body policy.
  parseBodies(app: INestApplication, config: AppConfig): void {
    app.use(jsonBodyMiddleware(config.bodyLimitBytes(), jsonCostLimits(config)));
  },

  routeOf: expressRouteOf,
};
