import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';

/**
 * Facts about the request in flight that the latency log line reports. The HTTP layer opens the
 * context; the protocol-agnostic PredictionService fills in what it resolved, without knowing HTTP.
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
  /** The matched route pattern, once routing has found one. */
  route?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

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
