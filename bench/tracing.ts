/**
 * What tracing costs: the service (`node dist/main.js`, Fastify, batching on, the prediction cache off
 * so that every request runs) on iris single predictions at c=32, with tracing off (no OTLP endpoint),
 * on but sampled out (OTEL_TRACES_SAMPLER=always_off: the provider, context manager and propagator
 * registered, no span recorded) and on (every request traced: its server span, queue wait and run,
 * exported to an OTLP/HTTP receiver in this process that accepts and drops them). The three run in
 * turn, ROUNDS times, so that a machine's changing load falls on each alike; the figure is the
 * service's CPU per request (user + system from /proc), and the ratios are against "off" in the same run.
 *
 *   npm run build && node -r ts-node/register/transpile-only bench/tracing.ts
 *
 * Environment: BENCH_DURATION_S (seconds per cell, default 5), BENCH_ROUNDS (default 3). Prints a
 * table and the ratios; writes nothing.
 */
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { LoadSpec, measureCpuCell } from './load';
import { freePort, startChild, stopChild, waitUntil } from './processes';
import { samples } from './workload';

const ROOT = path.resolve(__dirname, '..');
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5) || 5;
const ROUNDS = Math.max(1, Math.round(Number(process.env.BENCH_ROUNDS ?? 3) || 3));
const CONCURRENCY = 32;

type Variant = 'off' | 'sampled out' | 'on';
const VARIANTS: readonly Variant[] = ['off', 'sampled out', 'on'];

function tracingEnv(variant: Variant, endpoint: string): Record<string, string> {
  if (variant === 'off') return {};
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    ...(variant === 'sampled out' ? { OTEL_TRACES_SAMPLER: 'always_off' } : { OTEL_TRACES_SAMPLER: 'always_on' }),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function main(): Promise<void> {
  // The receiver: accepts every export (OTLP/HTTP JSON) and counts the spans it was sent.
  let exportedSpans = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      exportedSpans += (body.match(/"spanId"/g) ?? []).length;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const bodies = samples(ROOT, 'iris', 'single');
  const results: Record<Variant, { cpuUs: number[]; rps: number[] }> = {
    off: { cpuUs: [], rps: [] },
    'sampled out': { cpuUs: [], rps: [] },
    on: { cpuUs: [], rps: [] },
  };

  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of VARIANTS) {
      const port = await freePort();
      const child = startChild(`service (tracing ${variant})`, process.execPath, ['dist/main.js'], {
        cwd: ROOT,
        env: {
          ...process.env,
          ENV_FILE: '',
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          GRPC_ENABLED: 'false',
          HTTP_ADAPTER: 'fastify',
          CACHE_ENABLED: 'false',
          ...tracingEnv(variant, endpoint),
        },
      });
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitUntil(child, 'ready', 60_000, async () => (await fetch(`${url}/health/ready`)).ok);
        const spec: LoadSpec = {
          url,
          connections: CONCURRENCY,
          requests: bodies.map((s) => ({
            method: 'POST',
            path: '/v1/models/iris/predict',
            headers: { 'content-type': 'application/json' },
            body: s.body,
          })),
        };
        const stats = await measureCpuCell(spec, DURATION_S, 1, child.pid);
        if (stats.errors > 0) throw new Error(`${stats.errors} errors: ${JSON.stringify(stats.error_detail)}`);
        if (stats.cpu_ms_per_request === null) throw new Error('no CPU figure (this needs /proc)');
        results[variant].cpuUs.push(stats.cpu_ms_per_request * 1000);
        results[variant].rps.push(stats.req_per_s);
        process.stderr.write(
          `round ${round} tracing ${variant.padEnd(11)} ${stats.req_per_s.toFixed(0).padStart(6)} req/s  ` +
            `${(stats.cpu_ms_per_request * 1000).toFixed(1)} µs CPU/request\n`,
        );
      } finally {
        await stopChild(child);
      }
    }
  }
  receiver.close();

  const off = median(results.off.cpuUs);
  console.log(`tracing cost, iris single at c=${CONCURRENCY}, median of ${ROUNDS} round(s) of ${DURATION_S} s`);
  console.log('tracing       req/s   µs CPU/request   of off');
  for (const variant of VARIANTS) {
    const cpu = median(results[variant].cpuUs);
    console.log(
      `${variant.padEnd(12)} ${median(results[variant].rps).toFixed(0).padStart(6)}   ${cpu.toFixed(1).padStart(14)}   ${(cpu / off).toFixed(2)}x`,
    );
  }
  console.log(`spans received by the OTLP receiver: ${exportedSpans}`);
  console.log(`tracing on costs ${(median(results.on.cpuUs) - off).toFixed(1)} µs CPU per request over off`);
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
