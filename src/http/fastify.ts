import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { errorBody, isV2, v2Body } from '../common/http-exception.filter';
import { AppConfig } from '../config/app.config';
import { clientErrorHandler, reportRejection, serverOptions } from '../security/server-limits';
import { DomainError } from '../common/domain.errors';
import { objectSlot } from '../common/object-slot';
import { jsonCostLimits, parseJsonBytes } from './body-policy';
import { bodyTaken, takenBody } from './v2-body';
import type { HttpAdapterSetup, Middleware } from './pipeline';

/**
 * A path that is not valid percent-encoded UTF-8 fails in Fastify's router, before Nest and the
 * middleware: answered here in the service's shape, as Express's router failure reaches the filter.
 */
function frameworkMessage(error: Error & { code?: string }): string {
  if (error.code === 'FST_ERR_BAD_URL') return 'The path cannot be decoded as percent-encoded UTF-8';
  return 'The path is not one the router can read (a segment may be too long)';
}

function frameworkErrors(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const requestId = randomUUID();
  // Never the path itself: Fastify's message can carry the whole URL, which the client already has.
  const body = { ...errorBody('INVALID_INPUT', frameworkMessage(error)), requestId };
  reportRejection(request.raw.socket, { status: body.statusCode, code: body.error, route: 'unmatched', requestId });
  void reply
    .code(body.statusCode)
    .header('X-Request-Id', requestId)
    .send(isV2(request.url) ? v2Body(body) : body);
}

const ROUTE = objectSlot<string>('route');

/**
 * The request's headers as Fastify's own handling reads them once the body has been read: layered over
 * the raw headers (which every middleware and the log keep reading unchanged), they announce no body.
 */
const BODY_READ = { 'content-type': undefined, 'content-length': undefined, 'transfer-encoding': undefined };

function fastifyAdapter(config: AppConfig): FastifyAdapter {
  // Prototype keys are let through the parser so the validation pipe can refuse them with a path.
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes(),
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    http: serverOptions(config),
    clientErrorHandler,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    frameworkErrors,
    // Requests that arrive while closing reach the service, which answers them SHUTTING_DOWN in its own shape.
    return503OnClosing: false,
    // The Open Inference Protocol writes server metadata's path as /v2/; Express's router, not
    // strict about a trailing slash, already answers it as /v2.
    rewriteUrl: (req: { url?: string }) => (req.url ?? '/').replace(/^\/v2\/(?=\?|$)/, '/v2'),
  });
  const fastify = adapter.getInstance();
  // The matched route pattern, for the request's log line and metrics (Express keeps it on the request
  // itself). Taken as soon as Fastify has routed, so that requests refused before their handler (a
  // malformed body, say) are reported under their route too.
  fastify.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    if (route !== undefined) ROUTE.set(request.raw, route);
    done();
  });
  // Bodies are read by the service's own middleware (http/body-policy.ts, http/v2-body.ts) on both
  // adapters. Fastify runs a content-type parser for any request whose headers announce a body, at the
  // cost of a stream and an AsyncResource per request (its bind alone is several µs on Node 20); told
  // that the body is gone, it hands the request straight to the route with the body the middleware read.
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    if (bodyTaken(request.raw)) {
      request.body = takenBody(request.raw);
      request.headers = BODY_READ;
    }
    done(null, payload);
  });
  // What still reaches Fastify's parsers: a JSON request that announces no body at all (an empty
  // body, read as {}), and anything the body policy has not refused first, as a backstop.
  fastify.addContentTypeParser('*', (_request, _payload, done) => {
    done(new DomainError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON'), undefined);
  });
  fastify.removeContentTypeParser('application/json');
  const limits = jsonCostLimits(config);
  fastify.addContentTypeParser(/^application\/([\w.+-]+\+)?json/i, { parseAs: 'buffer' }, (request, body, done) => {
    try {
      done(null, parseJsonBytes(body as Buffer, limits(request.raw)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  return adapter;
}

export const fastifySetup: HttpAdapterSetup = {
  create(module: DynamicModule, config: AppConfig, logger: LoggerService): Promise<INestApplication> {
    // bodyParser: false keeps Nest from replacing the adapter's JSON parser with its own.
    return NestFactory.create<NestFastifyApplication>(module, fastifyAdapter(config), {
      logger,
      bodyParser: false,
      abortOnError: false,
    });
  },

  routeOf: () => (req) => ROUTE.get(req),

  // A hook of Fastify's own rather than Nest's app.use, which runs middleware through @fastify/middie:
  // that one matches the path and copies the request's host, address, protocol and parsed query onto
  // Node's request for every middleware, none of which these read.
  use(app: INestApplication, middleware: Middleware): void {
    (app as NestFastifyApplication)
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', (request, reply, done) =>
        middleware(request.raw, reply.raw, (error) => done(error as Error | undefined)),
      );
  },
};
