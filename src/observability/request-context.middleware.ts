import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { DomainError, InvalidInputError } from '../common/domain.errors';
import { attachContext, EventCancellation, OpenedContext } from '../common/request-context';
import { tracingOn } from './tracing';
import { traceOf } from './tracing.middleware';

/** Client-sent ids are echoed only when they are short and plain, so they cannot forge log lines. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_TIMEOUT_MS = 600000;

/**
 * Opens the request's context before anything else runs: its id (`X-Request-Id`, echoed when
 * safe), its deadline (`X-Request-Timeout-Ms`, else REQUEST_TIMEOUT_MS) and a signal that fires if
 * the client disconnects, so queued inference for a departed client is dropped; and the caller's
 * `X-Routing-Key`, which keeps it on one version of a model whose config.json splits traffic. Written against
 * Node's own request and response, so it serves under Express and Fastify alike.
 */
export function requestContextMiddleware(
  defaultTimeoutMs: number,
  lifecycle: { readonly shuttingDown: boolean; readonly draining: boolean },
) {
  return (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void => {
    // Once shutdown has begun, keep-alive connections end after their answer, so clients reconnect
    // (to another pod) and the server can close without cutting a request in flight.
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    const sent = req.headers['x-request-id'];
    const requestId = typeof sent === 'string' && SAFE_REQUEST_ID.test(sent) ? sent : randomUUID();
    res.setHeader('X-Request-Id', requestId);

    const timeout = req.headers['x-request-timeout-ms'];
    let timeoutMs = defaultTimeoutMs;
    let error: Error | undefined;
    if (timeout !== undefined) {
      timeoutMs = Number(timeout);
      if (typeof timeout !== 'string' || !/^\d{1,6}$/.test(timeout) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
        error = new InvalidInputError('X-Request-Timeout-Ms must be a whole number of milliseconds from 1 to 600000', [
          { path: 'headers.x-request-timeout-ms', message: `got ${JSON.stringify(String(timeout).slice(0, 40))}` },
        ]);
      }
    }
    // HTTP/1.1 requires Host (RFC 9112, 3.2); the server leaves the refusal to this middleware (server-limits.ts).
    if (error === undefined && req.headers.host === undefined && req.httpVersion !== '1.0') {
      error = new InvalidInputError('The request has no Host header, which HTTP/1.1 requires', [
        { path: 'headers.host', message: 'required' },
      ]);
    }
    const key = req.headers['x-routing-key'];
    const context = new OpenedContext(
      requestId,
      Date.now() + timeoutMs,
      typeof key === 'string' && key !== '' ? key : undefined,
      tracingOn() ? traceOf(req) : undefined,
      // A response closed before it finished: the client went away.
      () => new EventCancellation(res, 'close', () => res.destroyed && !res.writableFinished),
    );
    attachContext(req, context);
    // Draining: refused with an answer rather than a reset connection. The body is read to its end
    // (and dropped) first: closing a socket while the client's bytes are still arriving resets it.
    if (lifecycle.draining) {
      const refuse = () =>
        next(new DomainError('SHUTTING_DOWN', 'The service is shutting down; retry on another replica'));
      if (req.complete) return refuse();
      req
        .on('end', refuse)
        .on('error', () => undefined)
        .resume();
      return;
    }
    next(error);
  };
}
