import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/**
 * Facts about the request in flight: what it asks of inference (deadline, cancellation) and what
 * the latency log line reports. The HTTP layer opens the context and hands it to the
 * protocol-agnostic PredictionService, which fills in what it resolved without knowing HTTP.
 * It is passed explicitly rather than through AsyncLocalStorage, whose promise hooks measurably
 * slow every request.
 */
export interface RequestContext {
  readonly requestId: string;
  /** Epoch ms by which the request's inference must have started. */
  readonly deadline?: number;
  /** Aborted when the client goes away before the answer is sent. */
  readonly signal?: AbortSignal;
  model?: string;
  version?: number;
  batchSize?: number;
  /** How this request may use the prediction cache (its Cache-Control); set on POST requests by the cache middleware. */
  cache?: { readonly read: boolean; readonly write: boolean };
  /** Instances answered from the cache and computed, once the cache was consulted. */
  cacheHits?: number;
  cacheMisses?: number;
  /** Who is calling, for rate limits: `key:<digest>` once an API key is accepted. */
  client?: string;
  /** The matched route pattern, once routing has found one. */
  route?: string;
}

/** The raw Node request under either adapter's request object (Fastify wraps it as `.raw`). */
export type AnyRequest = IncomingMessage | { readonly raw: IncomingMessage };
const rawOf = (req: AnyRequest): IncomingMessage => ('raw' in req ? req.raw : req);

const CONTEXTS = new WeakMap<IncomingMessage, RequestContext>();

/** Ties a context to its request, for code that runs outside the async scope (response events, filters). */
export function attachContext(req: AnyRequest, context: RequestContext): void {
  CONTEXTS.set(rawOf(req), context);
}

export function contextOf(req: AnyRequest): RequestContext | undefined {
  return CONTEXTS.get(rawOf(req));
}

/** The current request's context, as a handler parameter. */
export const ReqContext = createParamDecorator((_: unknown, ctx: ExecutionContext) =>
  contextOf(ctx.switchToHttp().getRequest<AnyRequest>()),
);
