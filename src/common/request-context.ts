import { AsyncLocalStorage } from 'node:async_hooks';

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
}

export const requestContext = new AsyncLocalStorage<RequestContext>();
