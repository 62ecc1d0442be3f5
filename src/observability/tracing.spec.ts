import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  extractParent,
  redisSpanAttributes,
  startTracing,
  startSpan,
  traced,
  traceIds,
  tracingOn,
  tracingRequested,
} from './tracing';

describe('tracingRequested', () => {
  it('is on only with an OTLP endpoint, and never when the SDK or the traces exporter is disabled', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(
      false,
    );
  });
});

describe('redisSpanAttributes', () => {
  it('names the server without the credentials, and the batch size only for several keys', () => {
    expect(redisSpanAttributes('redis://user:secret@cache.internal:6380/0', 'MGET', 3)).toEqual({
      'db.system.name': 'redis',
      'db.operation.name': 'MGET',
      'db.operation.batch_size': 3,
      'server.address': 'cache.internal',
      'server.port': 6380,
    });
    expect(redisSpanAttributes('redis://[::1]', 'EVAL', 1)).toMatchObject({
      'server.address': '::1',
      'server.port': 6379,
    });
    expect(JSON.stringify(redisSpanAttributes('redis://user:secret@h:1', 'GET', 1))).not.toContain('secret');
  });
});

describe('tracing off', () => {
  it('registers nothing: no spans, no context manager, no propagator', async () => {
    expect(startTracing({})).toBeUndefined();
    expect(tracingOn()).toBe(false);
    expect(startSpan('x', undefined)).toBeUndefined();
    const parent = extractParent(
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      {
        keys: (c) => Object.keys(c),
        get: (c: Record<string, string>, k) => c[k],
      },
    );
    // The API's no-op propagator reads nothing.
    expect(trace.getSpan(parent)).toBeUndefined();
    // The work runs as it is, and its answer is returned.
    await expect(traced('x', undefined, {}, (span) => Promise.resolve(span))).resolves.toBeUndefined();
  });
});

describe('tracing on', () => {
  const exported: ReadableSpan[] = [];
  // Collects what the batch processor sends; the OTLP/HTTP exporter itself is exercised by test/tracing.e2e-spec.ts.
  const exporter: SpanExporter = {
    export: (spans, done) => {
      exported.push(...spans);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
  };
  const saved = { ...process.env };
  afterAll(() => {
    process.env = saved;
  });

  it('continues a traceparent, makes the work’s span active, records failures, and flushes on shutdown', async () => {
    // The resource detector reads the process's environment itself.
    process.env.OTEL_SERVICE_NAME = 'unit-traced';
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'team=ml';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '600000';
    const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    const tracing = startTracing(env, exporter)!;
    expect(tracing).toBeDefined();
    expect(tracingOn()).toBe(true);
    // A second start is refused: one provider per process.
    expect(startTracing(env, exporter)).toBeUndefined();

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parent = extractParent(
      { traceparent: `00-${traceId}-b7ad6b7169203331-01`, tracestate: 'vendor=opaque' },
      { keys: (c) => Object.keys(c), get: (c: Record<string, string>, k) => c[k] },
    );
    expect(trace.getSpanContext(parent)?.traceState?.get('vendor')).toBe('opaque');

    let active: string | undefined;
    const ids = await traced('outer', parent, { answer: 42 }, async (span) => {
      await new Promise((resolve) => setImmediate(resolve));
      // Active across an await: the context manager follows the async work.
      active = trace.getActiveSpan()?.spanContext().spanId;
      await traced('inner', undefined, {}, () => Promise.resolve());
      return traceIds(trace.setSpan(ROOT_CONTEXT, span!));
    });
    expect(ids?.trace_id).toBe(traceId);
    expect(active).toBe(ids?.span_id);
    await expect(
      traced('failing', parent, {}, () => Promise.reject(Object.assign(new Error('no'), { code: 'QUEUE_FULL' }))),
    ).rejects.toThrow('no');
    // Outside any request's trace, a call is no span of its own (it would be a stray trace).
    await expect(traced('orphan', undefined, {}, (span) => Promise.resolve(span))).resolves.toBeUndefined();
    // Batched: nothing is sent until the delay or shutdown.
    expect(exported).toHaveLength(0);

    await tracing.shutdown();
    expect(tracingOn()).toBe(false);
    // Shutdown unregisters the globals, so a later start (or another test) begins clean.
    expect(context.active()).toBe(ROOT_CONTEXT);
    expect(propagation.fields()).toEqual([]);

    const byName = Object.fromEntries(exported.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['failing', 'inner', 'outer']);
    expect(byName.outer.spanContext().traceId).toBe(traceId);
    expect(byName.outer.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(byName.outer.attributes).toEqual({ answer: 42 });
    expect(byName.outer.resource.attributes).toMatchObject({
      'service.name': 'unit-traced',
      'service.version': expect.any(String),
      team: 'ml',
    });
    expect(byName.inner.parentSpanContext?.spanId).toBe(byName.outer.spanContext().spanId);
    expect(byName.failing.status.code).toBe(SpanStatusCode.ERROR);
    expect(byName.failing.attributes['error.type']).toBe('QUEUE_FULL');
  });
});
