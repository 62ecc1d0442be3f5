import { DynamicModule, INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { errorBody, isV2, v2Body } from '../common/http-exception.filter';
import { AppConfig } from '../config/app.config';
import { clientErrorHandler, reportRejection, serverOptions } from '../security/server-limits';
import { Readable } from 'node:stream';
import { DomainError } from '../common/domain.errors';
import { jsonCostLimits, parseJsonBytes } from './body-policy';
import { bodyTaken, takenBody } from './v2-body';
import type { HttpAdapterSetup } from './pipeline';

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

const ROUTES = new WeakMap<IncomingMessage, string>();

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
    if (route !== undefined) ROUTES.set(request.raw, route);
    done();
  });
  // A /v2 body is read by its middleware (http/v2-body.ts) before Fastify parses: the drained
  // stream is replaced by an empty one that still accounts for the bytes, as Fastify's own
  // decompression examples do, and the parsers hand on what the middleware read.
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    if (!bodyTaken(request.raw)) return done(null, payload);
    const empty = Readable.from([]) as Readable & { receivedEncodedLength?: number };
    empty.receivedEncodedLength = Number(request.headers['content-length']) || 0;
    done(null, empty);
  });
  fastify.addContentTypeParser('*', (request, _payload, done) => {
    if (bodyTaken(request.raw)) return done(null, takenBody(request.raw));
    // The body policy refuses every other media type first; this is only a backstop.
    done(new DomainError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON'), undefined);
  });
  fastify.removeContentTypeParser('application/json');
  // As bytes: the cost bound reads them before any decoding, and a body that is not UTF-8 is not
  // mistaken for one whose length does not match its Content-Length.
  const limits = jsonCostLimits(config);
  fastify.addContentTypeParser(/^application\/([\w.+-]+\+)?json/i, { parseAs: 'buffer' }, (request, body, done) => {
    if (bodyTaken(request.raw)) return done(null, takenBody(request.raw));
    try {
      done(null, parseJsonBytes(body as Buffer, limits));
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

  // Fastify parses a body after every middleware has run, with the content-type parser it was made with.
  parseBodies(): void {},

  routeOf: () => (req) => ROUTES.get(req),
};
