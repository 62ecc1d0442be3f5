import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Context } from '@opentelemetry/api';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { objectSlot } from './object-slot';

/**
 * Facts about the request in flight: what it asks of inference (deadline, cancellation) and what
 * the latency log line reports. The HTTP layer opens the context and hands it to the
 * protocol-agnostic PredictionService. Each concern writes only its own field, named below.
 * It is passed explicitly rather than through AsyncLocalStorage, whose promise hooks measurably
 * slow every request.
 */
export interface RequestContext {
  /** Opened by the request-context middleware, with the deadline and the signal. */
  readonly requestId: string;
  /** Epoch ms by which the request's inference must have started. */
  readonly deadline?: number;
  /** Aborted when the client goes away before the answer is sent. */
  readonly signal?: Cancellation;
  /**
   * Opened with the context: the caller's X-Routing-Key (gRPC: x-routing-key), which keeps it on
   * one version when config.json splits traffic.
   */
  readonly routingKey?: string;
  /** Written by PredictionService: the model version that answers, and how many instances or rows it was sent. */
  served?: { readonly model: string; readonly version: number; readonly batchSize: number };
  /** Written by the prediction cache: what the request allows (its middleware) and what the cache answered. */
  cache?: CacheUse;
  /** Written by the API-key middleware: who is calling, for rate limits (`key:<digest>`). */
  client?: string;
  /** Written by the exception filter: the code of the error the request was answered with. */
  error?: string;
  /**
   * Set by the tracing middleware (or the gRPC server) when tracing is on: the request's span as an
   * OpenTelemetry context, the parent of the spans made for the request further in (cache lookup,
   * queue wait, run), which are handed it explicitly as they are handed the deadline.
   */
  readonly trace?: Context;
}

/**
 * The part of AbortSignal that inference uses to drop the request of a client that has gone away. An
 * AbortSignal is one; the HTTP layer has a lighter one of its own (an AbortController is a large share
 * of a small prediction's cost).
 */
export interface Cancellation {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A Cancellation that aborts when its source emits `event` while `gone()` says the client has left (the
 * event may fire for an answer too), or at once if it has left already. It listens from the moment it is
 * made and keeps no reference to the source or to `gone`: the closures of a queued run hold it, and when it
 * held the response, something keeping those closures kept the whole request, which V8 then promoted into
 * the old generation on every prediction (`--trace-gc-nvp`).
 */
export class EventCancellation implements Cancellation {
  private listeners: (() => void)[] | undefined;
  private fired = false;

  constructor(source: EventEmitter, event: string, gone: () => boolean) {
    if (gone()) this.fired = true;
    else source.once(event, () => gone() && this.abort());
  }

  get aborted(): boolean {
    return this.fired;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners?.indexOf(listener) ?? -1;
    if (at >= 0) this.listeners!.splice(at, 1);
  }

  private abort(): void {
    this.fired = true;
    for (const listener of this.listeners?.splice(0) ?? []) listener();
  }
}

/**
 * A request's context as HTTP and gRPC open it. Its signal is a getter of this class, made on first use
 * (a request that never queues never pays for one), rather than a getter in an object literal made per
 * request: under load, that literal made most of each request's objects (the request, its answer and
 * what they hold) survive young-generation collections into the old generation, as `--trace-gc-nvp`
 * shows, and a class getter does not.
 */
export class OpenedContext implements RequestContext {
  served?: RequestContext['served'];
  cache?: CacheUse;
  client?: string;
  error?: string;
  private cancellation?: EventCancellation;

  constructor(
    readonly requestId: string,
    readonly deadline: number,
    readonly routingKey: string | undefined,
    readonly trace: Context | undefined,
    /** Makes the signal: what it listens to, and how it tells a client gone from an answer sent. */
    private readonly cancelledBy: () => EventCancellation,
  ) {}

  get signal(): Cancellation {
    return (this.cancellation ??= this.cancelledBy());
  }
}

/** How one request may use the prediction cache (its Cache-Control), and, once consulted, what it found. */
export interface CacheUse {
  /** `no-cache` skips the read; `no-store` the write too. */
  readonly read: boolean;
  readonly write: boolean;
  /** Instances answered from the cache and computed. */
  hits?: number;
  misses?: number;
}

/** The raw Node request under either adapter's request object (Fastify wraps it as `.raw`). */
export type AnyRequest = IncomingMessage | { readonly raw: IncomingMessage };
/** Node's own request under either adapter's. */
export const rawOf = (req: AnyRequest): IncomingMessage => ('raw' in req ? req.raw : req);

const CONTEXT = objectSlot<RequestContext>('requestContext');

/** Ties a context to its request, for code that runs outside the async scope (response events, filters). */
export function attachContext(req: AnyRequest, context: RequestContext): void {
  CONTEXT.set(rawOf(req), context);
}

export function contextOf(req: AnyRequest): RequestContext | undefined {
  return CONTEXT.get(rawOf(req));
}

/** The current request's context, as a handler parameter. */
export const ReqContext = createParamDecorator((_: unknown, ctx: ExecutionContext) =>
  contextOf(ctx.switchToHttp().getRequest<AnyRequest>()),
);
