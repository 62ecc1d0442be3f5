import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, NestExpressApplication } from '@nestjs/platform-express';
import { createServer, ServerOptions } from 'node:http';
import { AppConfig } from '../config/app.config';
import { clientErrorHandler, serverOptions } from '../security/server-limits';
import type { RouteOf } from '../observability/latency.middleware';
import type { HttpAdapterSetup, Middleware } from './pipeline';

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

  routeOf: expressRouteOf,

  use(app: INestApplication, middleware: Middleware): void {
    app.use(middleware);
  },
};
