import {
  Attributes,
  context,
  Context,
  propagation,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  TextMapGetter,
  trace,
  Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { APP_INFO } from '../app.info';

/**
 * OpenTelemetry tracing, configured by the standard OTEL_* environment, which the SDK reads itself:
 * the OTLP/HTTP exporter its endpoint, headers and timeout, the tracer provider its sampler
 * (OTEL_TRACES_SAMPLER, _ARG) and span limits, the env detector OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES. Off unless an OTLP endpoint is set: then nothing is registered, no
 * context manager runs, and every helper below returns after one check of `tracer`, so the hot path
 * pays nothing for a feature it does not use.
 */

/** Set while tracing runs; everything below tests it first. */
let tracer: Tracer | undefined;

/** Whether the environment asks for traces: an OTLP endpoint, and no OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((e) => e.trim().toLowerCase());
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

export interface Tracing {
  /** Ends tracing: spans still buffered are sent (bounded by the exporter's own timeout). */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when the environment asks for it (see tracingRequested), before the application is
 * made, so that the context manager sees every request. Registers the global tracer provider, the
 * W3C trace-context and baggage propagators and the AsyncLocalStorage context manager. The exporter
 * is OTLP/HTTP unless one is given (the unit spec's, where Jest cannot load the OTLP transport).
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env, exporter?: SpanExporter): Tracing | undefined {
  if (!tracingRequested(env) || tracer) return undefined;
  // The package's name and version unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: APP_INFO.name, [ATTR_SERVICE_VERSION]: APP_INFO.version }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(exporter ?? new OTLPTraceExporter())],
  });
  provider.register();
  tracer = trace.getTracer(APP_INFO.name, APP_INFO.version);
  return {
    shutdown: async () => {
      tracer = undefined;
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Whether spans are being made. */
export function tracingOn(): boolean {
  return tracer !== undefined;
}

/** A span, child of `parent` (else of the active context), or undefined when tracing is off. */
export function startSpan(
  name: string,
  parent: Context | undefined,
  attributes?: Attributes,
  kind: SpanKind = SpanKind.INTERNAL,
): Span | undefined {
  return tracer?.startSpan(name, { kind, attributes }, parent ?? context.active());
}

/** Marks a span failed with the error's type and message. */
export function recordFailure(span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  const code = (err as { code?: unknown })?.code;
  span.recordException(error);
  span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

/**
 * Runs `work` inside a span (child of `parent`, else of the active context), active while it runs,
 * ended when it settles and marked failed if it throws. Without tracing, just runs `work`.
 */
export function traced<T>(
  name: string,
  parent: Context | undefined,
  attributes: Attributes | (() => Attributes),
  work: (span?: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!tracer) return work();
  const base = parent ?? context.active();
  // A call outside any request's trace (or in a request sampled out) is no span: it would start a trace
  // of its own. A caller's remote span, read from a traceparent, is a parent like any other.
  const under = trace.getSpan(base);
  if (!under || (!under.isRecording() && !under.spanContext().isRemote)) return work();
  const span = tracer.startSpan(
    name,
    { kind, attributes: typeof attributes === 'function' ? attributes() : attributes },
    base,
  );
  return context
    .with(trace.setSpan(base, span), () => work(span))
    .then(
      (result) => {
        span.end();
        return result;
      },
      (err: unknown) => {
        recordFailure(span, err);
        span.end();
        throw err;
      },
    );
}

/** A span's context to parent others with, or undefined without tracing. */
export const contextWith = (span: Span | undefined, parent?: Context): Context | undefined =>
  span && trace.setSpan(parent ?? context.active(), span);

/** The trace and span ids of a context's span, for log lines; undefined without one. */
export function traceIds(of: Context | undefined): { trace_id: string; span_id: string } | undefined {
  const span = of && trace.getSpan(of);
  if (!span) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** A W3C traceparent and tracestate (and baggage) from whatever carries them, read by the registered propagator. */
export function extractParent<C>(carrier: C, getter: TextMapGetter<C>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, getter);
}

/** A Redis call's client-span attributes, after the database conventions; the URL's credentials are never read. */
export function redisSpanAttributes(url: string | undefined, operation: string, keys: number): Attributes {
  let address: string | undefined;
  let port: number | undefined;
  try {
    const parsed = new URL(url ?? '');
    address = parsed.hostname.replace(/^\[|\]$/g, '') || undefined;
    port = Number(parsed.port || 6379);
  } catch {
    // Not a URL: the span goes without the server's address.
  }
  return {
    'db.system.name': 'redis',
    'db.operation.name': operation,
    ...(keys > 1 ? { 'db.operation.batch_size': keys } : {}),
    'server.address': address,
    'server.port': port,
  };
}
