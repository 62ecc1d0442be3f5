import { context, Context, SpanKind, SpanStatusCode, TextMapGetter, trace } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { RouteOf } from './latency.middleware';
import { extractParent, startSpan } from './tracing';

const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

const headers: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** Each traced request's context (its server span), for the request context and the log line. */
const TRACES = new WeakMap<IncomingMessage, Context>();

/** The request's trace context, when it is traced. */
export const traceOf = (req: IncomingMessage): Context | undefined => TRACES.get(req);

/** server.address and server.port from the Host header, as the client addressed the service. */
function hostOf(host: string | undefined): { address?: string; port?: number } {
  const match = host === undefined ? null : /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  if (!match) return {};
  return { address: match[1] || undefined, port: match[2] === undefined ? undefined : Number(match[2]) };
}

/**
 * The request's HTTP server span, first in the pipeline and installed only when tracing is on: it
 * continues the caller's W3C traceparent and tracestate, follows the semantic conventions for HTTP
 * servers (named `METHOD route` once routing has matched a pattern, never the raw path), and is
 * active for everything the request's handling does: the rest of the chain runs inside it, and the
 * request's and response's event listeners are bound to it, so that body parsing, the handler and
 * the response's own events (the log line among them) see it as the active span.
 */
export function tracingMiddleware(routeOf: RouteOf) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const parent = extractParent(req.headers, headers);
    const method = req.method ?? '';
    const known = KNOWN_METHODS.has(method);
    const host = hostOf(req.headers.host);
    const span = startSpan(
      known ? method : 'HTTP',
      parent,
      {
        [ATTR_HTTP_REQUEST_METHOD]: known ? method : '_OTHER',
        ...(known ? {} : { [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: method }),
        [ATTR_URL_PATH]: (req.url ?? '').split('?')[0],
        [ATTR_URL_SCHEME]: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
        [ATTR_SERVER_ADDRESS]: host.address,
        [ATTR_SERVER_PORT]: host.port,
        [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
        [ATTR_CLIENT_ADDRESS]: req.socket.remoteAddress,
        [ATTR_USER_AGENT_ORIGINAL]: req.headers['user-agent'],
      },
      SpanKind.SERVER,
    );
    if (!span) return next();
    const traced = trace.setSpan(parent, span);
    TRACES.set(req, traced);
    // Sampled out: nothing under it will be recorded either, so it need not be the active span (the
    // listeners' binding is most of what tracing costs a request), and it has nothing to report.
    if (!span.isRecording()) return next();
    res.once('close', () => {
      // The matched pattern, as the latency log line reads it from the adapter.
      const route = routeOf(req);
      if (route) {
        span.setAttribute(ATTR_HTTP_ROUTE, route);
        span.updateName(`${known ? method : 'HTTP'} ${route}`);
      }
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (!res.writableFinished) {
        // The client left before the whole answer was sent.
        span.setAttribute(ATTR_ERROR_TYPE, 'CLIENT_CLOSED');
      } else if (res.statusCode >= 500) {
        // Only a 5xx is the server's failure; a 4xx is the client's, and leaves the status unset.
        span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
    context.bind(traced, req);
    context.bind(traced, res);
    context.with(traced, next);
  };
}
