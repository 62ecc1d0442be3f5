import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorBody, errorBody } from '../common/http-exception.filter';
import { AppConfig } from '../config/app.config';

/**
 * Node's HTTP server options both adapters are given, so Express and Fastify hold the same limits:
 * header size (431 beyond), and a connection check every second so that request timeouts are
 * enforced close to their setting instead of at Node's default 30 s granularity.
 */
export function serverOptions(config: AppConfig): {
  maxHeaderSize: number;
  connectionsCheckingInterval: number;
  requireHostHeader: boolean;
} {
  // Node answers a request without Host with a bare, empty 400 that nothing logs or counts; the
  // request context middleware refuses it instead, in the service's shape.
  return { maxHeaderSize: config.MAX_HEADER_SIZE, connectionsCheckingInterval: 1000, requireHostHeader: false };
}

/**
 * Timeouts set on the server itself (Fastify would otherwise have no request timeout and a 72 s
 * keep-alive, Express Node's 300 s and 5 s): a client that trickles its headers or body is cut off
 * with 408, and idle keep-alive connections are closed after KEEP_ALIVE_TIMEOUT_MS.
 */
export function applyServerTimeouts(server: Server, config: AppConfig): void {
  server.requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  server.headersTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = config.KEEP_ALIVE_TIMEOUT_MS;
}

const CLIENT_ERRORS: Record<string, ErrorBody> = {
  HPE_HEADER_OVERFLOW: errorBody(
    'HEADERS_TOO_LARGE',
    'The request line and headers are larger than the limit (MAX_HEADER_SIZE)',
  ),
  ERR_HTTP_REQUEST_TIMEOUT: errorBody(
    'REQUEST_TIMEOUT',
    'The request was not received whole within HTTP_REQUEST_TIMEOUT_MS',
  ),
  // The client closed its side before its body was whole: valid HTTP cut short, not bytes that are not HTTP.
  HPE_INVALID_EOF_STATE: errorBody(
    'INVALID_INPUT',
    'The connection ended before the request did (a body shorter than its Content-Length, or a chunk cut short)',
  ),
};
const NOT_HTTP = errorBody('INVALID_INPUT', 'The request is not valid HTTP');

/**
 * Where the server's own refusals are reported (logged and counted), for answers given before any
 * middleware runs: Node's parser (below) and Fastify's router. Kept per server, since the handler is
 * made before the application whose logger and metrics it reports to.
 */
export interface Rejection {
  status: number;
  code: string;
  route: string;
  requestId: string;
  /** The client's address, when the socket still has one. */
  client?: string;
}
export type RejectionSink = (rejection: Rejection) => void;
const SINKS = new WeakMap<object, RejectionSink>();

export function reportRejectionsTo(server: Server, sink: RejectionSink): void {
  SINKS.set(server, sink);
}

/** Reports a refusal made on this socket's server, if the application has said where to. */
export function reportRejection(socket: Duplex, rejection: Omit<Rejection, 'client'>): void {
  const server = (socket as { server?: object }).server;
  const sink = server ? SINKS.get(server) : undefined;
  sink?.({ ...rejection, client: (socket as { remoteAddress?: string }).remoteAddress });
}

/**
 * Answers what Node's HTTP parser refuses before any framework sees a request (headers over the
 * limit, a request that timed out, bytes that are not HTTP) with the service's structured error
 * body, where Node would send a bare status line and Fastify a body of its own shape.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  // Nothing can be answered on a connection that is gone, or whose response has begun.
  if (
    err.code === 'ECONNRESET' ||
    !socket.writable ||
    (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  ) {
    socket.destroy();
    return;
  }
  const known = CLIENT_ERRORS[err.code ?? ''] ?? NOT_HTTP;
  // No request was made of these bytes, so no middleware opened a context: the id is made here.
  const requestId = randomUUID();
  const body = JSON.stringify({ ...known, requestId });
  reportRejection(socket, { status: known.statusCode, code: known.error, route: 'unparsed', requestId });
  socket.end(
    `HTTP/1.1 ${known.statusCode} ${STATUS_CODES[known.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}
