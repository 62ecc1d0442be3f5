import { ChildProcess } from 'node:child_process';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { bundled, makeRepository } from './support/app';
import { call, connect } from './support/grpc';
import { exited, freePort, onOutputLines, serve, waitFor } from './support/process';
import { OwnRedis, REDIS_SERVER } from './support/redis';

/**
 * Traces from the real process, received by an OTLP/HTTP collector of the test's own: the exporter
 * (@opentelemetry/exporter-trace-otlp-http) posts OTLP's JSON encoding to /v1/traces, which this
 * collector decodes as any collector would, with nothing of src/ to read it.
 */

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number };
}
/** A received span, attributes as a plain object, with its resource's attributes. */
interface Received {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly status: number;
  readonly attributes: Record<string, unknown>;
  readonly resource: Record<string, unknown>;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

const valueOf = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue));
const attributesOf = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));

class Collector {
  readonly spans: Received[] = [];
  readonly posts: { path: string; contentType: string }[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Collector> {
    const server = createServer();
    const collector = new Collector(server);
    server.on('request', (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        collector.posts.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '' });
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        collector.receive(JSON.parse(body.toString('utf8')) as never);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return collector;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private receive(body: {
    resourceSpans: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
  }): void {
    for (const rs of body.resourceSpans) {
      const resource = attributesOf(rs.resource?.attributes);
      for (const ss of rs.scopeSpans)
        for (const s of ss.spans)
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            status: s.status?.code ?? 0,
            attributes: attributesOf(s.attributes),
            resource,
          });
    }
  }

  inTrace(traceId: string): Received[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The JSON lines a process writes, parsed as they come. */
function linesOf(child: ChildProcess): string[] {
  const lines: string[] = [];
  onOutputLines(child, (line) => lines.push(line));
  return lines;
}

/** The request log line of one request id, whatever shape the logger gives it. */
function requestLine(lines: string[], requestId: string): Record<string, unknown> | undefined {
  for (const line of lines) {
    if (!line.includes(`"${requestId}"`)) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    const fields = (typeof parsed.message === 'object' ? parsed.message : parsed) as Record<string, unknown>;
    if (fields.request_id === requestId && fields.status !== undefined) return fields;
  }
  return undefined;
}

const hex = (bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

const IRIS = [5.1, 3.5, 1.4, 0.2];

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function start(env: Record<string, string>) {
  const port = await freePort();
  const grpcPort = await freePort();
  const repository = await makeRepository({ iris: bundled('iris') });
  const child = serve({
    PORT: String(port),
    GRPC_PORT: String(grpcPort),
    HOST: '127.0.0.1',
    MODEL_REPOSITORY: repository,
    ...env,
  });
  const lines = linesOf(child);
  const done = exited(child);
  const base = `http://127.0.0.1:${port}`;
  const ready = () =>
    fetch(`${base}/health/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
  try {
    await waitFor(ready, 45000, 'the models');
  } catch (err) {
    // A process that never became ready would otherwise outlive the suite.
    child.kill('SIGKILL');
    throw err;
  }
  return { base, grpcPort, child, lines, done };
}

describe('OpenTelemetry tracing through the real process', () => {
  let collector: Collector;
  beforeAll(async () => {
    collector = await Collector.start();
  });
  afterAll(() => collector.close());

  it('continues the caller’s traceparent, with spans for the request, cache lookup, queue wait, run, Redis and gRPC calls', async () => {
    const redis = REDIS_SERVER ? await OwnRedis.start() : undefined;
    if (!redis) console.warn('redis-server not on PATH: the Redis spans are not checked');
    const service = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'traced-inference',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
      // Nothing is sent before shutdown: the spans that arrive show that shutdown flushes them.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      ...(redis ? { REDIS_URL: redis.url, RATE_LIMIT_RPM: '1000' } : {}),
    });
    const traceId = hex(16);
    const callerSpan = hex(8);
    try {
      const answered = await post(
        service.base,
        '/v1/models/iris/predict',
        { features: IRIS },
        { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=opaque', 'x-request-id': 'traced-1' },
      );
      expect(answered.status).toBe(200);
      const grpcTrace = hex(16);
      const grpcCaller = hex(8);
      const clients = connect(service.grpcPort);
      const infer = await call(
        clients.inference,
        'ModelInfer',
        {
          model_name: 'iris',
          inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: IRIS } }],
        },
        { metadata: { traceparent: `00-${grpcTrace}-${grpcCaller}-01` } },
      );
      clients.close();
      expect(infer.error).toBeUndefined();
      const missing = await fetch(`${service.base}/nowhere`, {
        headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` },
      });
      expect(missing.status).toBe(404);
      // An untraced caller starts a trace of its own.
      expect((await post(service.base, '/v1/models/iris/predict', { features: [6.3, 3.3, 6.0, 2.5] })).status).toBe(
        200,
      );
      await waitFor(() => requestLine(service.lines, 'traced-1') !== undefined, 10000, 'the log line');

      service.child.kill('SIGTERM');
      expect((await service.done).code).toBe(0);
      expect(collector.posts.every((p) => p.path === '/v1/traces' && p.contentType === 'application/json')).toBe(true);

      // The request: a server span under the caller's, named by its route pattern.
      const spans = collector.inTrace(traceId);
      const server = spans.find((s) => s.kind === SPAN_KIND_SERVER)!;
      expect(server).toMatchObject({
        name: 'POST /v1/models/:model/predict',
        parentSpanId: callerSpan,
        attributes: expect.objectContaining({
          'http.request.method': 'POST',
          'http.route': '/v1/models/:model/predict',
          'http.response.status_code': 200,
          'url.path': '/v1/models/iris/predict',
          'url.scheme': 'http',
          'server.address': '127.0.0.1',
          'network.protocol.version': '1.1',
        }),
        resource: expect.objectContaining({
          'service.name': 'traced-inference',
          'service.version': expect.any(String),
          'deployment.environment.name': 'test',
        }),
      });
      expect(server.status).not.toBe(STATUS_ERROR);
      // The request's log line carries the ids of its span.
      expect(requestLine(service.lines, 'traced-1')).toMatchObject({ trace_id: traceId, span_id: server.spanId });

      const child = (name: string, parent = server) =>
        spans.find((s) => s.name === name && s.parentSpanId === parent.spanId);
      const lookup = child('cache lookup');
      expect(lookup?.attributes).toMatchObject({
        'inference.model.name': 'iris',
        'inference.model.version': 1,
        'cache.store': redis ? 'redis' : 'memory',
        'cache.rows': 1,
        'cache.hits': 0,
        'cache.misses': 1,
      });
      expect(child('queue wait')?.attributes).toMatchObject({ 'inference.model.name': 'iris', 'inference.rows': 1 });
      const run = child('inference run');
      expect(run?.attributes).toMatchObject({
        'inference.model.name': 'iris',
        'inference.model.version': 1,
        'inference.rows': 1,
        // iris is placed by its measured cost: on the event loop, or on a worker if its runs measured slow.
        'inference.placement': expect.stringMatching(/^cpu\/(inline|worker-\d+)$/),
      });
      expect(run!.attributes['inference.batch.size']).toBeGreaterThanOrEqual(1);
      expect(run!.attributes['inference.batch.requests']).toBeGreaterThanOrEqual(1);

      if (redis) {
        // The cache's read under the lookup, its write and the rate limiter's count under the request.
        const redisSpan = {
          kind: SPAN_KIND_CLIENT,
          attributes: expect.objectContaining({ 'db.system.name': 'redis' }),
        };
        expect(child('MGET', lookup)).toMatchObject(redisSpan);
        expect(child('MSET')).toMatchObject(redisSpan);
        expect(child('EVAL')).toMatchObject({
          ...redisSpan,
          attributes: expect.objectContaining({ 'server.address': '127.0.0.1', 'server.port': redis.port }),
        });
      }

      // The gRPC call: its own server span under the metadata's traceparent, with the run under it.
      const grpcSpans = collector.inTrace(grpcTrace);
      const rpc = grpcSpans.find((s) => s.kind === SPAN_KIND_SERVER)!;
      expect(rpc).toMatchObject({
        name: 'inference.GRPCInferenceService/ModelInfer',
        parentSpanId: grpcCaller,
        attributes: expect.objectContaining({
          'rpc.system.name': 'grpc',
          'rpc.method': 'inference.GRPCInferenceService/ModelInfer',
          'rpc.status_code': 'OK',
        }),
      });
      // Looked up under the call's span; run under it unless the first request's entry answered it (a
      // write that missed CACHE_TIMEOUT_MS on a loaded machine leaves it uncached, which is no failure).
      const grpcLookup = grpcSpans.find((s) => s.name === 'cache lookup' && s.parentSpanId === rpc.spanId)!;
      expect(grpcLookup.attributes).toMatchObject({ 'cache.rows': 1, 'inference.model.name': 'iris' });
      const grpcRuns = grpcSpans.filter((s) => s.name === 'inference run');
      expect(grpcRuns.length).toBe(grpcLookup.attributes['cache.misses']);
      expect(grpcRuns.every((s) => s.parentSpanId === rpc.spanId)).toBe(true);

      // An unmatched route: the method alone names the span, never the raw path.
      const unmatched = collector.spans.find((s) => s.attributes['url.path'] === '/nowhere')!;
      expect(unmatched).toMatchObject({
        name: 'GET',
        attributes: expect.objectContaining({ 'http.response.status_code': 404 }),
      });
      expect(unmatched.attributes['http.route']).toBeUndefined();

      // Without a traceparent the request is a root of a new trace.
      const untraced = collector.spans.find(
        (s) => s.kind === SPAN_KIND_SERVER && s.traceId !== traceId && s.name === 'POST /v1/models/:model/predict',
      )!;
      expect(untraced.parentSpanId).toBe('');
    } finally {
      service.child.kill('SIGKILL');
      await redis?.kill();
    }
  });

  it('sends nothing and logs no trace ids when tracing is off', async () => {
    const before = collector.posts.length;
    // An endpoint is set, but the SDK is disabled: nothing may be registered or sent.
    const service = await start({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SDK_DISABLED: 'true' });
    try {
      const traceId = hex(16);
      const answered = await post(
        service.base,
        '/v1/models/iris/predict',
        { features: IRIS },
        { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': 'untraced-1' },
      );
      expect(answered.status).toBe(200);
      await waitFor(() => requestLine(service.lines, 'untraced-1') !== undefined, 10000, 'the log line');
      service.child.kill('SIGTERM');
      expect((await service.done).code).toBe(0);
      expect(collector.posts.length).toBe(before);
      const line = requestLine(service.lines, 'untraced-1')!;
      expect(line.trace_id).toBeUndefined();
      expect(line.span_id).toBeUndefined();
    } finally {
      service.child.kill('SIGKILL');
    }
  });
});
